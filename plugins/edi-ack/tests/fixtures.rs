//! Every golden fixture, run natively: `<case>.edi` with `<case>.control.json` must give the
//! bytes of `<case>.ack`. `BLESS=1 cargo test -p edi-ack` rewrites the `.ack` files (review the
//! diff before committing them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;

use edi_ack::{Inbound, Stamp, acknowledge};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
enum Outcome {
    Mapped(u32),
    Failed(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Control {
    number: u64,
    now: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
enum Expect {
    None,
    Error(String),
    #[serde(untagged)]
    Acknowledgement {
        partner: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    outcome: Outcome,
    control: Control,
    expect: Expect,
}

#[test]
fn every_fixture_gives_its_expected_acknowledgement() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let bless = std::env::var_os("BLESS").is_some();
    let mut cases = 0;
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(case) = name.strip_suffix(".control.json") else {
            continue;
        };
        cases += 1;
        let spec: Case = serde_json::from_slice(&std::fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let raw = std::fs::read(dir.join(format!("{case}.edi"))).unwrap();
        let inbound = match &spec.outcome {
            Outcome::Mapped(n) => Inbound::Mapped(*n),
            Outcome::Failed(reason) => Inbound::Failed(reason),
        };
        let stamp = Stamp::new(spec.control.number, &spec.control.now).unwrap();
        let made = acknowledge(&raw, &inbound, &stamp);
        let ack_file = dir.join(format!("{case}.ack"));
        match (spec.expect, made) {
            (Expect::None, Ok(None)) => {}
            (Expect::Error(wanted), Err(said)) if said.contains(&wanted) => {}
            (Expect::Acknowledgement { partner }, Ok(Some(ack))) => {
                if ack.partner != partner {
                    failures.push(format!(
                        "{case}: partner {:?}, expected {partner:?}",
                        ack.partner
                    ));
                }
                if bless {
                    std::fs::write(&ack_file, &ack.document).unwrap();
                }
                let expected = std::fs::read(&ack_file).unwrap_or_default();
                if expected != ack.document {
                    failures.push(format!(
                        "{case}: expected\n{}\ngot\n{}",
                        String::from_utf8_lossy(&expected),
                        String::from_utf8_lossy(&ack.document)
                    ));
                }
            }
            (_, made) => failures.push(format!("{case}: unexpected {made:?}")),
        }
    }
    assert!(
        cases >= 10,
        "only {cases} fixtures found in {}",
        dir.display()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
