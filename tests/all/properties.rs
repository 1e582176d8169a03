//! Property tests run by `cargo test`: the X12 and EDIFACT readers never panic on arbitrary
//! bytes and read back a generated interchange exactly; the config parser never panics;
//! canonical validation never panics and accepts a decimal exactly when it matches
//! `-?digits(.digits)?` (at most 40 bytes). The cargo-fuzz targets in fuzz/ go deeper.

use std::path::Path;

use millrace::canonical::{EventData, MappedEvent, ProductionCompletion, Quantity};
use millrace::config::Config;
use millrace::rules::validate::{is_decimal, validate};
use millrace_sdk::{edifact, x12};
use proptest::prelude::*;

/// Segments of one transaction set or message: a 3-letter id and its elements.
fn segments(value: &'static str) -> impl Strategy<Value = Vec<(String, Vec<String>)>> {
    prop::collection::vec(
        (
            "[A-Z][A-Z0-9]{2}".prop_filter("not an envelope segment", |id| {
                ![
                    "ISA", "IEA", "GS", "GE", "ST", "SE", "UNA", "UNB", "UNZ", "UNG", "UNE", "UNH",
                    "UNT",
                ]
                .contains(&id.as_str())
                    && id.chars().all(|c| c.is_ascii_uppercase())
            }),
            prop::collection::vec(value, 1..6),
        ),
        1..8,
    )
}

/// A segment: its id and its elements.
type Segment = (String, Vec<String>);

fn x12_interchange(groups: &[Vec<Vec<Segment>>]) -> String {
    let mut out = String::from(
        "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *260302*0615*U*00401*000000042*0*P*>~\n",
    );
    for (g, sets) in groups.iter().enumerate() {
        let group = g + 1;
        out += &format!("GS*SH*SENDER*RECEIVER*20260302*0615*{group}*X*004010~\n");
        for (s, segments) in sets.iter().enumerate() {
            let control = format!("{:04}", s + 1);
            out += &format!("ST*856*{control}~\n");
            for (id, elements) in segments {
                out += &format!("{id}*{}~\n", elements.join("*"));
            }
            out += &format!("SE*{}*{control}~\n", segments.len() + 2);
        }
        out += &format!("GE*{}*{group}~\n", sets.len());
    }
    out += &format!("IEA*{}*000000042~\n", groups.len());
    out
}

/// Escapes the EDIFACT service characters with the release character `?`.
fn escape(value: &str) -> String {
    value
        .chars()
        .flat_map(|c| match c {
            '+' | ':' | '\'' | '?' => vec!['?', c],
            c => vec![c],
        })
        .collect()
}

fn edifact_interchange(una: bool, messages: &[Vec<(String, Vec<String>)>]) -> String {
    let mut out = String::new();
    if una {
        out += "UNA:+.? '";
    }
    out += "UNB+UNOC:3+SENDER:14+RECIPIENT:14+260302:0615+REF42'\n";
    for (m, segments) in messages.iter().enumerate() {
        let reference = m + 1;
        out += &format!("UNH+{reference}+DESADV:D:96A:UN'\n");
        for (tag, elements) in segments {
            let elements: Vec<String> = elements.iter().map(|e| escape(e)).collect();
            out += &format!("{tag}+{}'\n", elements.join("+"));
        }
        out += &format!("UNT+{}+{reference}'\n", segments.len() + 2);
    }
    out += &format!("UNZ+{}+REF42'\n", messages.len());
    out
}

fn completion(amount: String, uom: String, at: String, key: String) -> MappedEvent {
    MappedEvent {
        site: "PLANT1".into(),
        occurred_at: at,
        source_sequence: None,
        source_transaction: None,
        data: EventData::ProductionCompletion(ProductionCompletion {
            work_order: key.clone(),
            operation: None,
            item: key,
            lot: None,
            good_quantity: Quantity { amount, uom },
            scrap_quantity: Quantity {
                amount: "0".into(),
                uom: "EA".into(),
            },
            location: None,
        }),
    }
}

/// The decimal grammar, written independently of `is_decimal`.
fn matches_grammar(s: &str) -> bool {
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    let mut parts = unsigned.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next();
    let digits = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit());
    s.len() <= 40 && digits(int) && frac.is_none_or(digits)
}

/// The host holds a quantity exactly only up to 28 significant digits: the digits from the
/// first non-zero one of the whole part to the last non-zero one of the fraction.
fn fits_an_exact_quantity(s: &str) -> bool {
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    int.trim_start_matches('0').len() + frac.trim_end_matches('0').len() <= 28
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn x12_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = x12::parse(&bytes);
    }

    #[test]
    fn x12_never_panics_past_a_valid_header(tail in "[A-Z0-9*>~^:\n\r ]{0,300}") {
        let header = "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *260302*0615*U*00401*000000042*0*P*>~";
        let _ = x12::parse(format!("{header}{tail}").as_bytes());
    }

    #[test]
    fn x12_reads_back_a_generated_interchange(
        groups in prop::collection::vec(prop::collection::vec(segments("[A-Z0-9 .>-]{0,10}"), 1..4), 1..3)
    ) {
        let text = x12_interchange(&groups);
        let interchange = x12::parse(text.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(interchange.control_number.as_ref(), "000000042");
        prop_assert_eq!(interchange.groups.len(), groups.len());
        for (group, expected) in interchange.groups.iter().zip(&groups) {
            prop_assert_eq!(group.transaction_sets.len(), expected.len());
            for (set, segments) in group.transaction_sets.iter().zip(expected) {
                prop_assert_eq!(set.id.as_ref(), "856");
                let read: Vec<(String, Vec<String>)> = set
                    .segments
                    .iter()
                    .map(|s| (s.id.to_string(), s.elements().map(str::to_owned).collect()))
                    .collect();
                prop_assert_eq!(&read, segments);
            }
        }
    }

    #[test]
    fn edifact_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = edifact::parse(&bytes);
    }

    #[test]
    fn edifact_never_panics_past_a_service_string(una in "[:+.,? '\n*~]{6}", tail in "[A-Z0-9:+.,?' \n]{0,300}") {
        let _ = edifact::parse(format!("UNA{una}UNB+UNOC:3+S+R+260302:0615+1'{tail}").as_bytes());
    }

    #[test]
    fn edifact_reads_back_a_generated_interchange(
        una in any::<bool>(),
        messages in prop::collection::vec(segments("[A-Z0-9 +:'?.,]{1,8}"), 1..4)
    ) {
        let text = edifact_interchange(una, &messages);
        let interchange = edifact::parse(text.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(interchange.control_reference.as_ref(), "REF42");
        prop_assert_eq!(interchange.messages.len(), messages.len());
        for (message, segments) in interchange.messages.iter().zip(&messages) {
            prop_assert_eq!(message.message_type.as_ref(), "DESADV");
            let read: Vec<(String, Vec<String>)> = message
                .segments
                .iter()
                .map(|s| {
                    let elements = (1..=s.element_count()).map(|n| s.element(n).collect::<Vec<_>>().join(":"));
                    (s.tag.to_string(), elements.collect())
                })
                .collect();
            // Each generated element is one component holding escaped `:`: compare unescaped.
            let expected: Vec<(String, Vec<String>)> = segments.clone();
            for ((tag, elements), (expected_tag, expected_elements)) in read.iter().zip(&expected) {
                prop_assert_eq!(tag, expected_tag);
                prop_assert_eq!(elements, expected_elements);
            }
            for (segment, (_, expected_elements)) in message.segments.iter().zip(&expected) {
                for (n, expected) in (1..=segment.element_count()).zip(expected_elements) {
                    let components: Vec<&str> = segment.element(n).collect();
                    prop_assert_eq!(components, vec![expected.as_str()], "one component per element");
                }
            }
        }
    }

    #[test]
    fn config_parse_never_panics(text in "\\PC{0,400}") {
        let _ = Config::parse(&text, Path::new("prop/millrace.toml"));
    }

    #[test]
    fn config_parse_never_panics_on_near_valid_configs(
        url in "\\PC{0,30}",
        workers in any::<i64>(),
        partitions in any::<i64>(),
        subject in "[a-z*>.]{0,20}",
        deadline in "[0-9]{0,25}[a-z]{0,3}",
        memory in any::<i64>(),
        route in "\\PC{0,12}",
    ) {
        let text = format!(
            "[nats]\nurl = {url:?}\n[host]\nworkers = {workers}\npartitions = {partitions}\n\
             [routes.{route:?}]\nsubjects = [{subject:?}]\nplugin = \"p.wasm\"\n\
             limits = {{ deadline = {deadline:?}, memory_mib = {memory} }}\n"
        );
        let _ = Config::parse(&text, Path::new("prop/millrace.toml"));
    }

    #[test]
    fn decimals_are_accepted_iff_they_match_the_grammar(
        s in prop_oneof!["\\PC{0,45}", "-?[0-9]{0,25}(\\.[0-9]{0,20})?", "[-0-9.]{0,45}"]
    ) {
        prop_assert_eq!(is_decimal(&s), matches_grammar(&s), "{:?}", s);
        let event = completion(s.clone(), "EA".into(), "2026-03-02T06:15:00Z".into(), "WO-1".into());
        let accepted = validate(&[event]).is_ok();
        prop_assert_eq!(
            accepted,
            matches_grammar(&s) && !s.starts_with('-') && fits_an_exact_quantity(&s),
            "{:?}",
            s
        );
    }

    #[test]
    fn validation_never_panics(
        amount in "\\PC{0,45}",
        uom in "\\PC{0,5}",
        at in "\\PC{0,40}",
        key in "\\PC{0,300}",
    ) {
        let event = completion(amount, uom, at, key);
        if let Err(errors) = validate(std::slice::from_ref(&event)) {
            prop_assert!(errors.iter().all(|e| e.index == 0 && !e.to_string().is_empty()));
        }
    }
}
