//! The promise of the README, "it never rejects what the mapping accepted", held for a whole
//! class of inputs: every golden fixture of the X12 and EDIFACT mapping plugins that maps into
//! events, as written and as gateways, mainframes and VANs also send it (one space after each
//! segment terminator, records padded to 80 columns, CRLF line ends, Ctrl-Z or NULs after the
//! last trailer), must be acknowledged as accepted: X12 `AK5*A` and `AK9*A`, no TA1 but an
//! accepting one; EDIFACT UCI, UCF and UCM action `7` without an error. And each variant must
//! be answered as the file as written is (line breaks aside).
//!
//! A variant is held to this only when the SDK's reader (the mapping's) reads it, as the
//! mapping would not accept it otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};

use edi_ack::{Inbound, Stamp, acknowledge};

/// The accepted fixtures (`<stem>.expected.json` with events) of the mapping plugins.
fn accepted_fixtures() -> Vec<(PathBuf, u32)> {
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    for plugin in std::fs::read_dir(&plugins).unwrap() {
        let plugin = plugin.unwrap().path();
        let name = plugin.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with("x12-") || name.starts_with("edifact-")) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(plugin.join("fixtures")) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let Some(stem) = file.strip_suffix(".expected.json") else {
                continue;
            };
            let expected: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let Some(events) = expected.get("events").and_then(|e| e.as_array()) else {
                continue;
            };
            if events.is_empty() {
                continue;
            }
            let input = std::fs::read_dir(path.parent().unwrap())
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| {
                    let f = p.file_name().unwrap().to_string_lossy();
                    f.strip_prefix(stem)
                        .is_some_and(|ext| ext.starts_with('.') && !ext.ends_with(".json"))
                });
            if let Some(input) = input {
                found.push((input, u32::try_from(events.len()).unwrap()));
            }
        }
    }
    found.sort();
    found
}

/// The syntax of a payload and its segment terminator and release character (bytes), as far as
/// the variants need them; `None` for a payload they leave alone (UTF-16).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Syntax {
    /// X12 with this terminator; `None` when the lines are the segments.
    X12(Option<u8>),
    Edifact {
        terminator: u8,
        release: Option<u8>,
    },
}

fn syntax(bytes: &[u8]) -> Option<Syntax> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if matches!(
        bytes,
        [0xFF, 0xFE, ..] | [0xFE, 0xFF, ..] | [_, 0, ..] | [0, ..]
    ) {
        return None;
    }
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace())?;
    let text = &bytes[start..];
    if text.starts_with(b"ISA") {
        let element = *text.get(3)?;
        // The separator after `ISA` is the first of the 16.
        let mut seen = 1;
        let mut at = 3;
        while seen < 16 {
            at += 1;
            if *text.get(at)? == element {
                seen += 1;
            }
        }
        // After ISA16 (the component separator, line breaks before it skipped).
        let mut after = text[at + 1..]
            .iter()
            .skip_while(|b| matches!(b, b'\r' | b'\n'));
        after.next()?;
        let terminator = *after.next()?;
        let lines = matches!(terminator, b'\r' | b'\n')
            || (matches!(terminator, b' ' | b'\t')
                && matches!(
                    after.find(|b| !matches!(b, b' ' | b'\t')),
                    Some(b'\r' | b'\n')
                ));
        Some(Syntax::X12((!lines).then_some(terminator)))
    } else if let Some(una) = text.strip_prefix(b"UNA") {
        Some(Syntax::Edifact {
            terminator: *una.get(5)?,
            release: una.get(3).copied().filter(|r| *r != b' '),
        })
    } else if text.starts_with(b"UNB") {
        Some(if text.get(3) == Some(&0x1D) {
            Syntax::Edifact {
                terminator: 0x1C,
                release: None,
            }
        } else {
            Syntax::Edifact {
                terminator: b'\'',
                release: Some(b'?'),
            }
        })
    } else {
        None
    }
}

/// The payload with `after(record)` written after each segment terminator (and the line
/// breaks of the original dropped, as they are wraps or line ends); `record` is the segment as
/// written, terminator included. A newline-delimited X12 file gets `after` at each line end
/// instead of its line break.
fn rewritten(bytes: &[u8], syntax: Syntax, after: impl Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let (terminator, release) = match syntax {
        Syntax::X12(Some(t)) => (t, None),
        Syntax::X12(None) => (b'\n', None),
        Syntax::Edifact {
            terminator,
            release,
        } => (terminator, release),
    };
    let mut out = Vec::with_capacity(bytes.len() * 2);
    let mut record = Vec::new();
    let mut escaped = false;
    for &b in bytes {
        if terminator != b'\n' && matches!(b, b'\r' | b'\n') {
            continue;
        }
        if terminator == b'\n' && b == b'\r' {
            continue;
        }
        if escaped {
            escaped = false;
            record.push(b);
            continue;
        }
        if Some(b) == release {
            escaped = true;
            record.push(b);
            continue;
        }
        if b == terminator {
            if terminator == b'\n' {
                // A line: its padding dropped, then what `after` says in place of the break.
                while record.last().is_some_and(|c| matches!(c, b' ' | b'\t')) {
                    record.pop();
                }
                out.extend_from_slice(&record);
                out.extend(after(&record));
            } else {
                record.push(b);
                out.extend_from_slice(&record);
                out.extend(after(&record));
            }
            record.clear();
        } else {
            record.push(b);
        }
    }
    out.extend_from_slice(&record);
    out
}

/// The variants of a payload, named.
fn variants(bytes: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let mut all = vec![("as written", bytes.to_vec())];
    let Some(syntax) = syntax(bytes) else {
        return all;
    };
    let lines = syntax == Syntax::X12(None);
    let pad = |width: usize| {
        move |record: &[u8]| {
            let mut tail = vec![b' '; width.saturating_sub(record.len())];
            tail.push(b'\n');
            tail
        }
    };
    all.push((
        "one space after each terminator",
        rewritten(bytes, syntax, |_| {
            if lines {
                b" \n".to_vec()
            } else {
                b" ".to_vec()
            }
        }),
    ));
    all.push((
        "records padded to 80 columns",
        rewritten(bytes, syntax, pad(80)),
    ));
    all.push((
        "CRLF line ends",
        rewritten(bytes, syntax, |_| b"\r\n".to_vec()),
    ));
    let mut ctrl_z = bytes.to_vec();
    ctrl_z.push(0x1A);
    all.push(("Ctrl-Z after the last trailer", ctrl_z));
    let mut nul = bytes.to_vec();
    nul.extend([0; 8]);
    all.push(("NULs after the last trailer", nul));
    all
}

/// Whether the SDK's reader (the mapping's) reads the payload, and if not why.
fn sdk_reads(bytes: &[u8]) -> Result<(), String> {
    let text = edi_ack::envelope::text(bytes)?;
    if text.starts_with("ISA") {
        millrace_sdk::x12::parse_all(bytes)
            .map(drop)
            .map_err(|e| e.to_string())
    } else {
        millrace_sdk::edifact::parse_all(bytes)
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// The segments of an acknowledgement, split into elements (releases left in place).
fn segments(ack: &str) -> Vec<Vec<String>> {
    let (element, terminator, release, body) = if let Some(una) = ack.strip_prefix("UNA") {
        let c: Vec<char> = una.chars().take(6).collect();
        let release = (c[3] != ' ').then_some(c[3]);
        (c[1], c[5], release, &una[6..])
    } else if ack.as_bytes().get(3) == Some(&0x1D) {
        ('\u{1d}', '\u{1c}', None, ack)
    } else if ack.starts_with("UNB") {
        ('+', '\'', Some('?'), ack)
    } else {
        let element = ack.chars().nth(3).unwrap();
        let sixteenth = ack.match_indices(element).nth(15).unwrap().0;
        let terminator = ack[sixteenth + element.len_utf8()..]
            .chars()
            .nth(1)
            .unwrap();
        (element, terminator, None, ack)
    };
    let mut out = Vec::new();
    let mut segment = vec![String::new()];
    let mut escaped = false;
    for c in body.chars() {
        if escaped {
            escaped = false;
            segment.last_mut().unwrap().push(c);
        } else if Some(c) == release {
            escaped = true;
            segment.last_mut().unwrap().push(c);
        } else if c == terminator {
            out.push(std::mem::replace(&mut segment, vec![String::new()]));
        } else if c == element {
            segment.push(String::new());
        } else if !matches!(c, '\r' | '\n') {
            segment.last_mut().unwrap().push(c);
        }
    }
    out
}

/// Why the acknowledgement is not an accept, if it is not.
fn refusal(ack: &str) -> Option<String> {
    let segments = segments(ack);
    let at = |s: &Vec<String>, i: usize| s.get(i).cloned().unwrap_or_default();
    let mut accepted = 0;
    for s in &segments {
        let bad = match s[0].as_str() {
            "TA1" => at(s, 4) != "A",
            "AK5" | "AK9" => {
                accepted += 1;
                at(s, 1) != "A"
            }
            "AK3" | "AK4" => true,
            // The action (0083) and nothing after it (no error code).
            "UCI" | "UCF" => {
                accepted += 1;
                at(s, 4) != "7" || s.len() > 5
            }
            "UCM" => {
                accepted += 1;
                at(s, 3) != "7" || s.len() > 4
            }
            _ => false,
        };
        if bad {
            return Some(format!("it says {}", s.join("|")));
        }
    }
    (accepted == 0).then(|| "it acknowledges nothing".to_owned())
}

#[test]
fn every_mapped_fixture_and_its_variants_is_acknowledged_as_accepted() {
    let stamp = Stamp::new(7, "2026-11-30T04:05:00Z").unwrap();
    let fixtures = accepted_fixtures();
    assert!(
        fixtures.len() >= 50,
        "only {} accepted mapping fixtures found",
        fixtures.len()
    );
    let (mut checked, mut failures, mut unread) = (0, Vec::new(), Vec::new());
    for (path, events) in &fixtures {
        let name = path
            .strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
            .unwrap_or(path)
            .display()
            .to_string();
        let raw = std::fs::read(path).unwrap();
        let inbound = Inbound::Mapped(*events);
        let mut as_written: Option<(String, String)> = None;
        for (variant, bytes) in variants(&raw) {
            if let Err(why) = sdk_reads(&bytes) {
                unread.push(format!("{name} ({variant}): {why}"));
                continue;
            }
            checked += 1;
            let ack = match acknowledge(&bytes, &inbound, &stamp) {
                Ok(Some(ack)) => ack,
                // One acknowledgement goes to one partner: a batch from several is refused
                // by design (README), whatever its content.
                Err(why) if why.contains("between different partners") => continue,
                other => {
                    failures.push(format!("{name} ({variant}): {other:?}"));
                    continue;
                }
            };
            let document = String::from_utf8(ack.document).unwrap();
            if let Some(why) = refusal(&document) {
                failures.push(format!(
                    "{name} ({variant}): not accepted, {why}:\n{document}"
                ));
                continue;
            }
            // Line breaks aside, every variant is answered as the file as written.
            let flat: String = document
                .chars()
                .filter(|c| !matches!(c, '\r' | '\n'))
                .collect();
            match &as_written {
                None => as_written = Some((ack.partner, flat)),
                Some((partner, first)) if (partner, first) != (&ack.partner, &flat) => failures
                    .push(format!(
                        "{name} ({variant}): answered otherwise than as written:\n{flat}\nnot\n{first}"
                    )),
                Some(_) => {}
            }
        }
    }
    if !unread.is_empty() {
        eprintln!(
            "variants the SDK's reader refuses (not held to an accept):\n{}",
            unread.join("\n")
        );
    }
    assert!(
        checked >= fixtures.len() * 4,
        "only {checked} payloads checked"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
