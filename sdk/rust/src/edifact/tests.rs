//! Unit tests of the EDIFACT reader with small inline interchanges and the staedi sample.

use super::*;
use crate::canonical::Quantity;

const MSG: &str = "UNH+1+DESADV:D:96A:UN:EAN005'BGM+351+DES1+9'QTY+12:12.5:KGM'UNT+4+1'";

fn doc(body: &str) -> String {
    format!("UNB+UNOC:3+SENDER:14+RECIPIENT:14+260714:1200+REF1'{body}UNZ+1+REF1'")
}

fn err(text: &str) -> String {
    parse(text.as_bytes()).unwrap_err().to_string()
}

#[test]
fn reads_an_interchange_with_default_separators() {
    let text = doc(MSG);
    let interchange = parse(text.as_bytes()).unwrap();
    assert_eq!(interchange.separators, Separators::default());
    assert_eq!(interchange.syntax, "UNOC");
    assert_eq!(interchange.sender, "SENDER");
    assert_eq!(interchange.sender_qualifier, "14");
    assert_eq!(interchange.recipient, "RECIPIENT");
    assert_eq!(interchange.control_reference, "REF1");
    let message = &interchange.messages[0];
    assert_eq!(message.message_type, "DESADV");
    assert_eq!(message.release, "96A");
    assert_eq!(message.association, "EAN005");
    assert_eq!(message.segments.len(), 2);
    let qty = &message.segments[1];
    assert_eq!(qty.value(1, 2), "12.5");
    assert_eq!(qty.value(1, 3), "KGM");
    assert_eq!(qty.value(2, 1), "");
    assert_eq!(interchange.decimal(qty.value(1, 2)).unwrap(), "12.5");
    // Syntax 3 holds to its mark; syntax 4 takes either.
    assert!(interchange.decimal("12,5").is_err());
    let four = text.replace("UNOC:3", "UNOC:4");
    let four = parse(four.as_bytes()).unwrap();
    assert_eq!(four.decimal("12,5").unwrap(), "12.5");
    assert_eq!(four.decimal("12.5").unwrap(), "12.5");
    assert!(four.decimal("1.000,5").is_err());
}

#[test]
fn reads_the_test_indicator() {
    let live = doc(MSG);
    let live = parse(live.as_bytes()).unwrap();
    assert!(!live.is_test());
    // S005, 0026, 0029, 0031 and 0032 empty, then 0035.
    let test = doc(MSG).replace("+REF1'UNH", "+REF1++++++1'UNH");
    let test = parse(test.as_bytes()).unwrap();
    assert_eq!(test.test_indicator, "1");
    assert!(test.is_test());
}

#[test]
fn honours_una_release_character_and_comma_decimal_mark() {
    let text = "UNA|*,# !UNB*UNOC|3*S*R*260714|1200*9!\r\nUNH*7*RECADV|D|01B|UN!\r\nFTX*AAA***A#*B#|C## D#!!\r\nQTY*48|12,5|KGM!\r\nUNT*4*7!\r\nUNZ*1*9!\r\n";
    let interchange = parse(text.as_bytes()).unwrap();
    assert_eq!(
        interchange.separators,
        Separators {
            component: '|',
            element: '*',
            decimal_mark: ',',
            release: Some('#'),
            segment: '!'
        }
    );
    let segments = &interchange.messages[0].segments;
    assert_eq!(segments[0].value(4, 1), "A*B|C# D!");
    assert_eq!(
        interchange.decimal(segments[1].value(1, 2)).unwrap(),
        "12.5"
    );
    assert!(interchange.decimal("12.5").is_err());
    assert_eq!(wit_decimal("0,500", ',').unwrap(), "0.5");
}

#[test]
fn reads_the_level_b_default_separators_without_una() {
    let text = doc(MSG)
        .replace("UNOC", "UNOB")
        .replace('+', "\u{1d}")
        .replace(':', "\u{1f}")
        .replace('\'', "\u{1c}");
    let interchange = parse(text.as_bytes()).unwrap();
    assert_eq!(interchange.separators, Separators::LEVEL_B);
    assert_eq!(interchange.syntax, "UNOB");
    assert_eq!(interchange.sender, "SENDER");
    let qty = &interchange.messages[0].segments[1];
    assert_eq!(qty.value(1, 2), "12.5");
    assert_eq!(qty.value(1, 3), "KGM");
}

#[test]
fn tolerates_bom_and_line_breaks() {
    let text = format!("\u{feff}\n{}", doc(MSG).replace('\'', "'\r\n"));
    let interchange = parse(text.as_bytes()).unwrap();
    assert_eq!(interchange.messages[0].segments[1].line, 5);
}

/// Interchanges back to back, as gateways batch them (EdiFabric's
/// `Edifact_INVOIC_D00A_MultipleInterchange`: the second under a UNA of its own).
#[test]
fn parse_all_reads_interchanges_back_to_back() {
    let first = doc(MSG);
    let second = "UNA:|.? '\nUNB|UNOC:3|SENDER:14|RECIPIENT:14|260714:1300|REF2'\nUNH|7|DESADV:D:96A:UN'BGM|351|DES?|2|9'UNT|3|7'\nUNZ|1|REF2'\n";
    let text = format!("{first}\r\n{second}");
    let all = parse_all(text.as_bytes()).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0], parse(first.as_bytes()).unwrap());
    assert_eq!(all[1].control_reference, "REF2");
    assert_eq!(all[1].separators.element, '|');
    // The release character of the second interchange's own UNA.
    assert_eq!(all[1].messages[0].segments[0].value(2, 1), "DES|2");
    // Positions and lines go on through the batch.
    assert_eq!(all[1].messages[0].segments[0].position, 9);
    assert_eq!(all[1].messages[0].segments[0].line, 4);

    // One interchange only: the reader of one names the reader of many.
    assert_eq!(
        err(&text),
        "segment 7 at line 2: a second interchange follows the UNZ trailer; this reader takes one (edifact::parse_all reads them all)"
    );
    // An error anywhere fails the whole batch, named where it is.
    let broken = text.replace("UNT|3|7", "UNT|4|7");
    assert_eq!(
        parse_all(broken.as_bytes()).unwrap_err().to_string(),
        "segment 10 (UNT) at line 4: UNT counts 4 segments, message 7 has 3 (UNH to UNT)"
    );
    // The same interchange twice is a duplicate, not twice the messages.
    let twice = format!("{first}{first}");
    assert_eq!(
        parse_all(twice.as_bytes()).unwrap_err().to_string(),
        "interchange 2: it repeats interchange 1 (sender SENDER, control reference REF1): a duplicate, whose messages would be mapped twice"
    );
    // What follows a trailer and is no interchange is still refused.
    let stray = format!("{first}BGM+1'");
    assert_eq!(
        parse_all(stray.as_bytes()).unwrap_err().to_string(),
        "segment 7 (BGM) at line 1: segment after the UNZ trailer"
    );
}

/// UTF-16, as Windows tools save "Unicode" text: decoded by its byte-order mark, or by the NUL
/// beside its first letter.
#[test]
fn a_utf16_payload_is_decoded() {
    let text = doc(MSG);
    let utf8 = parse(text.as_bytes()).unwrap();
    let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let be_bom: Vec<u8> = [0xFE, 0xFF]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
        .collect();
    assert_eq!(parse(&le).unwrap(), utf8);
    assert_eq!(parse(&be_bom).unwrap(), utf8);
    // Cut in the middle of a character.
    assert!(err_bytes(&le[..le.len() - 1]).contains("not valid UTF-16LE"));
}

fn err_bytes(bytes: &[u8]) -> String {
    parse(bytes).unwrap_err().to_string()
}

/// The staedi sample as published: its UNT says 21 segments, the message has 18, so the strict
/// reader refuses it; with the count corrected it reads as one ORDERS message in a UNG group.
#[test]
fn reads_the_staedi_orders_sample_with_a_group() {
    let bytes = include_bytes!("../../testdata/edifact/orders-with-group.edi");
    assert_eq!(
        parse(bytes).unwrap_err().to_string(),
        "segment 20 (UNT) at line 20: UNT counts 21 segments, message 1 has 18 (UNH to UNT)"
    );
    let corrected = String::from_utf8_lossy(bytes).replace("UNT+21+1", "UNT+18+1");
    let interchange = parse(corrected.as_bytes()).unwrap();
    assert_eq!(interchange.groups.len(), 1);
    assert_eq!(interchange.groups[0].functional_id, "ORDERS");
    assert_eq!(interchange.groups[0].message_count, 1);
    assert_eq!(interchange.sender, "5400110000009");
    let message = &interchange.messages[0];
    assert_eq!(message.message_type, "ORDERS");
    assert_eq!(message.release, "96B");
    assert_eq!(message.association, "EAN008B");
    assert_eq!(message.group, Some(0));
    assert_eq!(message.segments.len(), 16);
    let pri = message.segments.iter().find(|s| s.tag == "PRI").unwrap();
    assert_eq!(interchange.decimal(pri.value(1, 2)).unwrap(), "12.8");
}

#[test]
fn counts_messages_and_groups() {
    let second = MSG.replace("UNH+1", "UNH+2").replace("UNT+4+1", "UNT+4+2");
    let two = format!("UNB+UNOC:3+S+R+260714:1200+REF1'{MSG}{second}UNZ+2+REF1'");
    assert_eq!(parse(two.as_bytes()).unwrap().messages.len(), 2);
    let grouped = format!(
        "UNB+UNOC:3+S+R+260714:1200+REF1'UNG+DESADV+S+R+260714:1200+G1+UN+D:96A'{MSG}{second}UNE+2+G1'UNG+DESADV+S+R+260714:1200+G2+UN+D:96A'{MSG}UNE+1+G2'UNZ+2+REF1'"
    );
    let interchange = parse(grouped.as_bytes()).unwrap();
    assert_eq!(interchange.groups.len(), 2);
    assert_eq!(interchange.messages.len(), 3);
    assert_eq!(interchange.messages[2].group, Some(1));
    // Message 1 stands in both groups: the group reference tells them apart.
    let ids: Vec<String> = interchange
        .messages
        .iter()
        .map(|m| interchange.source_transaction(m, Some("DES1")))
        .collect();
    assert_eq!(
        ids,
        ["S:REF1:G1:1:DES1", "S:REF1:G1:2:DES1", "S:REF1:G2:1:DES1"]
    );
}

#[test]
fn two_senders_counting_alike_have_distinct_source_transactions() {
    let from = |sender: &str| {
        let text = doc(MSG).replace("SENDER:14", sender);
        let interchange = parse(text.as_bytes()).unwrap().into_owned();
        interchange.source_transaction(&interchange.messages[0], None)
    };
    assert_eq!(from("SENDER:14"), "14/SENDER:REF1:1");
    assert_eq!(from("OTHER:14"), "14/OTHER:REF1:1");
    assert_eq!(from("OTHER"), "OTHER:REF1:1");
}

#[test]
fn rejects_every_envelope_error() {
    let grouped = |une: &str, unz: &str| {
        format!(
            "UNB+UNOC:3+S+R+260714:1200+REF1'UNG+DESADV+S+R+260714:1200+G1+UN+D:96A'{MSG}{une}{unz}"
        )
    };
    let cases = [
        (
            doc(&MSG.replace("UNT+4+1", "UNT+5+1")),
            "segment 5 (UNT) at line 1: UNT counts 5 segments, message 1 has 4 (UNH to UNT)",
        ),
        (
            doc(&MSG.replace("UNT+4+1", "UNT+4+2")),
            "segment 5 (UNT) at line 1: UNT message reference '2' differs from UNH '1' (segment 2 (UNH) at line 1)",
        ),
        (
            doc(MSG).replace("UNZ+1+", "UNZ+2+"),
            "segment 6 (UNZ) at line 1: UNZ counts 2, the interchange has 1 messages",
        ),
        (
            doc(MSG).replace("UNZ+1+REF1", "UNZ+1+REF2"),
            "segment 6 (UNZ) at line 1: UNZ control reference 'REF2' differs from UNB 'REF1'",
        ),
        (
            grouped("UNE+2+G1'", "UNZ+1+REF1'"),
            "segment 7 (UNE) at line 1: UNE counts 2 messages, group G1 has 1",
        ),
        (
            grouped("UNE+1+G9'", "UNZ+1+REF1'"),
            "segment 7 (UNE) at line 1: UNE group reference 'G9' differs from UNG 'G1' (segment 2 (UNG) at line 1)",
        ),
        (
            grouped("UNE+1+G1'", "UNZ+3+REF1'"),
            "segment 8 (UNZ) at line 1: UNZ counts 3, the interchange has 1 groups",
        ),
        (
            grouped("", "UNZ+1+REF1'"),
            "segment 7 (UNZ) at line 1: UNZ before the UNE trailer of group G1 (segment 2 (UNG) at line 1)",
        ),
        (
            doc(&MSG.replace("UNT+4+1'", "")),
            "segment 5 (UNZ) at line 1: UNZ before the UNT trailer of message 1 (segment 2 (UNH) at line 1)",
        ),
        (
            doc(MSG).replace("UNZ+1+REF1'", ""),
            "after segment 5: the interchange ends too early: there is no UNZ trailer",
        ),
        (
            doc(MSG).replace("UNT+4+1'UNZ+1+REF1'", "UNT+4"),
            "segment 5 (UNT) at line 1: the segment has no terminator ''': the interchange is truncated",
        ),
        (
            doc(MSG).replace("BGM", "bgm"),
            "segment 3 at line 1: 'bgm' is not a segment tag (three capital letters)",
        ),
        (
            doc(MSG).replace("UNB+UNOC:3+SENDER:14", "UNB+UNOC:3+"),
            "segment 1 (UNB) at line 1: the sender identification (UNB S002) is missing",
        ),
        (
            format!("{}UNH+2'", doc(MSG)),
            "segment 7 (UNH) at line 1: segment after the UNZ trailer",
        ),
        (
            "UNA:+.? ".to_owned(),
            "UNA: the service string advice is shorter than its 6 characters",
        ),
        (
            "UNA::.? 'UNB".to_owned(),
            "UNA: ':' is both the component separator and the element separator: each must differ",
        ),
        (
            // 12.5 read as 125: the '.' released the next character.
            "UNA:+.. 'UNB".to_owned(),
            "UNA: '.' is both the decimal mark and the release character: each must differ",
        ),
        (
            // 12,5 read as 12 of unit 5.
            "UNA,+,? 'UNB".to_owned(),
            "UNA: ',' is both the component separator and the decimal mark: each must differ",
        ),
        (
            "UNA:+.+ 'UNB".to_owned(),
            "UNA: '+' is both the element separator and the release character: each must differ",
        ),
        (
            "UNA:+.?:'UNB".to_owned(),
            "UNA: ':' is both the component separator and the repetition separator: each must differ",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(err(&text), expected, "{text}");
    }
}

#[test]
fn reads_dtm_formats() {
    let (date, time) = date_time("202607141230", "203").unwrap();
    assert_eq!(crate::timestamp::full_date(date), "2026-07-14");
    assert_eq!(
        time,
        Some(crate::timestamp::Time::from_hms(12, 30, 0).unwrap())
    );
    assert_eq!(date_time("20260714", "102").unwrap().1, None);
    assert_eq!(
        crate::timestamp::full_date(date_time("260714", "101").unwrap().0),
        "2026-07-14"
    );
    assert!(date_time("2026071", "102").is_err());
    assert!(date_time("20260714", "718").is_err());
    assert!(date_time("2026O714", "102").is_err());
}

#[test]
fn honours_dtm_time_zones_before_the_route_offset() {
    let route = crate::timestamp::parse_offset("+02:00").unwrap();
    let segments = line(
        "DTM+137:202607141230?+01:303'DTM+11:20260714123015EST:304'DTM+2:202607141230-0500:205'\
         DTM+17:202607141230UTC:303'DTM+50:202607141230:203'DTM+36:20260714:102'",
    );
    let stamps: Vec<String> = segments
        .iter()
        .map(|dtm| dtm_timestamp(dtm, route).unwrap())
        .collect();
    assert_eq!(
        stamps,
        [
            "2026-07-14T12:30:00+01:00",
            "2026-07-14T12:30:15-05:00",
            "2026-07-14T12:30:00-05:00",
            "2026-07-14T12:30:00Z",
            "2026-07-14T12:30:00+02:00",
            "2026-07-14T00:00:00+02:00",
        ],
        "a zone in the value wins; 203 and 102 carry none, so the route's offset applies"
    );
    let zoned = zoned_date_time("202607141230CET", "303").unwrap();
    assert_eq!(
        zoned.offset,
        crate::timestamp::UtcOffset::from_hms(1, 0, 0).ok()
    );
    assert_eq!(date_time("202607141230CET", "303").unwrap().1, zoned.time);
    for (value, format, why) in [
        (
            "202607141230XYZ",
            "303",
            "the time zone 'XYZ' of format 303",
        ),
        ("202607141230", "303", "the time zone '' of format 303"),
        (
            "2026071412301",
            "304",
            "does not have the length of date/time format 304",
        ),
        ("202607141230+01", "205", "is not a ZHHMM offset"),
        ("2026071412?0UTC", "303", "not a date/time of digits"),
    ] {
        let error = zoned_date_time(value, format).unwrap_err();
        assert!(error.contains(why), "{value} {format}: {error}");
    }
    let bad = &line("DTM+137:202607141230LT:303'")[0];
    assert_eq!(
        dtm_timestamp(bad, route).unwrap_err().message(),
        "segment 3 (DTM) at line 1, DTM 137: '202607141230LT': the time zone 'LT' of format 303 is \
         neither a signed offset (+01, -0500) nor a known zone name (UTC, GMT, CET, EST, ...)"
    );
}

fn line(body: &str) -> Vec<Segment<'static>> {
    let count = body.matches('\'').count() + 2;
    let text = doc(&format!(
        "UNH+1+RECADV:D:96A:UN:EAN003'{body}UNT+{count}+1'"
    ));
    parse(text.as_bytes())
        .unwrap()
        .into_owned()
        .messages
        .remove(0)
        .segments
}

#[test]
fn reads_the_batch_from_every_place_eancom_puts_it() {
    for body in [
        "LIN+1++4012345000108:EN'GIN+BX+B-1'",
        "LIN+1++4012345000108:EN'PCI+36E+B-1'",
        "LIN+1++4012345000108:EN'RFF+BT:B-1'",
        "LIN+1++4012345000108:EN'GIR+3+B-1:BX'",
        "LIN+1++4012345000108:EN'GIR+3+S-9:BN+B-1:BX'",
        "LIN+1++4012345000108:EN'PIA+1+B-1:NB'",
        // The same batch in several places is one batch.
        "LIN+1++4012345000108:EN'PCI+36E'GIN+BX+B-1'RFF+BT:B-1'",
    ] {
        let segments = line(body);
        let refs: Vec<&Segment> = segments.iter().collect();
        assert_eq!(line_batch(&refs).unwrap().as_deref(), Some("B-1"), "{body}");
        assert_eq!(line_item(&refs, None).unwrap(), "4012345000108", "{body}");
    }
    let segments = line("LIN+1++4012345000108:EN'RFF+ON:PO-1'GIR+3+S-9:BN'PCI+36E'");
    let refs: Vec<&Segment> = segments.iter().collect();
    assert_eq!(line_batch(&refs).unwrap(), None);
}

#[test]
fn a_batch_number_in_a_pia_is_never_the_item() {
    let segments = line("LIN+1'PIA+1+B-1:NB+MAT-100:SA'");
    let refs: Vec<&Segment> = segments.iter().collect();
    assert_eq!(line_item(&refs, None).unwrap(), "MAT-100");
    assert_eq!(line_batch(&refs).unwrap().as_deref(), Some("B-1"));
}

#[test]
fn a_line_naming_two_batches_is_refused() {
    let segments = line("LIN+1++4012345000108:EN'GIN+BX+B-1'RFF+BT:B-2'");
    let refs: Vec<&Segment> = segments.iter().collect();
    let error = format!("{:?}", line_batch(&refs).unwrap_err());
    assert!(error.contains("two batches, 'B-1' (GIN BX"), "{error}");
    assert!(error.contains("'B-2' (RFF BT"), "{error}");
}

#[test]
fn a_line_broken_down_by_sub_lines_is_left_to_them() {
    let text = doc(
        "UNH+1+DESADV:D:96A:UN:EAN005'BGM+351+D1'LIN+1++4000862141404:SRV'QTY+12:100'\
         LIN+2++4000862141404:SRV+1:1'QTY+12:60'RFF+BT:A'LIN+3++4000862141404:SRV+1:1'QTY+12:40'\
         RFF+BT:B'LIN+4++4000862141411:SRV'QTY+12:5'UNT+13+1'",
    );
    let interchange = parse(text.as_bytes()).unwrap();
    let message = &interchange.messages[0];
    let numbers: Vec<String> = message
        .lines()
        .unwrap()
        .iter()
        .map(|line| line[0].value(1, 1).to_string())
        .collect();
    assert_eq!(numbers, ["2", "3", "4"]);

    let components = text.replace(
        "LIN+3++4000862141404:SRV+1:1",
        "LIN+3++4000862141999:SRV+1:1",
    );
    let interchange = parse(components.as_bytes()).unwrap();
    let error = interchange.messages[0].lines().unwrap_err();
    assert_eq!(error.kind(), "unsupported-document");
    assert!(
        error
            .message()
            .contains("line 3 (item 4000862141999) is a sub-line of line 1"),
        "{error:?}"
    );

    let orphan = text.replace(
        "LIN+2++4000862141404:SRV+1:1",
        "LIN+2++4000862141404:SRV+1:9",
    );
    let interchange = parse(orphan.as_bytes()).unwrap();
    let error = interchange.messages[0].lines().unwrap_err();
    assert!(error.message().contains("line '9'"), "{error:?}");
}

#[test]
fn splits_a_message_into_header_and_lines() {
    let text = doc(
        "UNH+1+RECADV:D:96A:UN'BGM+352+R1'DTM+50:20260714:102'CPS+1'\
         LIN+1++A:SA'QTY+194:5'CPS+2'GIN+BJ+S1'LIN+2++B:SA'QTY+48:2'CNT+2:2'UNT+12+1'",
    );
    let interchange = parse(text.as_bytes()).unwrap();
    let message = &interchange.messages[0];
    let tags = |segments: &[&Segment<'_>]| {
        segments
            .iter()
            .map(|s| s.tag.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(tags(&message.header()), ["BGM", "DTM"]);
    let lines = message.lines().unwrap();
    assert_eq!(
        lines.iter().map(|l| tags(l)).collect::<Vec<_>>(),
        [["LIN", "QTY"], ["LIN", "QTY"]]
    );
    assert_eq!(
        message.beginning(&message.header()).unwrap().value(2, 1),
        "R1"
    );
    let header = message.header();
    assert_eq!(
        qualified(&header, "DTM", &["11", "50"])
            .unwrap()
            .value(1, 2),
        "20260714"
    );
    assert!(qualified(&header, "DTM", &["137"]).is_none());
}

#[test]
fn reads_quantities_in_the_interchange_decimal_mark() {
    let text = "UNA:+,? 'UNB+UNOC:3+S+R+260714:1200+9'UNH+1+INVRPT:D:96A:UN'QTY+145:12,5:KGM'\
                QTY+145:-1'QTY+12:3:kilo'UNT+5+1'UNZ+1+9'";
    let interchange = parse(text.as_bytes()).unwrap();
    let segments = &interchange.messages[0].segments;
    assert_eq!(
        interchange.quantity(&segments[0]).unwrap(),
        Quantity::new("12.5", "KGM")
    );
    assert_eq!(
        interchange.quantity(&segments[1]).unwrap(),
        Quantity::new("-1", "PCE")
    );
    assert_eq!(
        interchange
            .stock_quantity(&segments[1])
            .unwrap_err()
            .message(),
        "segment 4 (QTY) at line 1, QTY 145 quantity: '-1' is negative"
    );
    assert_eq!(
        interchange.quantity(&segments[2]).unwrap_err().message(),
        "segment 5 (QTY) at line 1, QTY 12 unit: 'kilo' is not a UN/ECE Recommendation 20 code"
    );
    let other = interchange
        .messages_of("DESADV", "a DESADV despatch advice")
        .next()
        .unwrap();
    assert_eq!(
        other.unwrap_err().message(),
        "message 1 (segment 2) is an INVRPT message, not a DESADV despatch advice"
    );
}

/// A Polish supplier at syntax level D (ISO 8859-2): its name arrives as it was written, where
/// Latin-1 would have turned it into other letters. Level C stays Latin-1, and UTF-8 stays UTF-8.
#[test]
fn reads_the_character_set_the_syntax_identifier_names() {
    let interchange = |level: &str, name: &[u8]| {
        let mut bytes = format!(
            "UNB+{level}:3+S+R+260714:1200+REF1'UNH+1+DESADV:D:96A:UN'BGM+351+DES1+9'NAD+SU+++"
        )
        .into_bytes();
        bytes.extend(name);
        bytes.extend(b"'UNT+4+1'UNZ+1+REF1'");
        bytes
    };
    let supplier = |bytes: &[u8]| {
        let interchange = parse(bytes).unwrap();
        let nad = interchange.messages[0]
            .segments
            .iter()
            .find(|s| s.tag == "NAD")
            .unwrap()
            .clone()
            .into_owned();
        nad.value(4, 1).to_owned()
    };
    // "Łódź" in ISO 8859-2.
    let lodz = b"\xA3\xF3d\xBC";
    assert_eq!(supplier(&interchange("UNOD", lodz)), "Łódź");
    let with_mark = [b"\xEF\xBB\xBF".as_slice(), &interchange("UNOD", lodz)].concat();
    assert_eq!(supplier(&with_mark), "Łódź");
    assert_eq!(supplier(&interchange("UNOC", lodz)), "£ód¼");
    assert_eq!(supplier(&interchange("UNOY", "Łódź".as_bytes())), "Łódź");
    // Greek (ISO 8859-7) and Cyrillic (ISO 8859-5) partners.
    assert_eq!(
        supplier(&interchange("UNOF", b"\xC1\xE8\xDE\xED\xE1")),
        "Αθήνα"
    );
    assert_eq!(
        supplier(&interchange("UNOE", b"\xBC\xDE\xE1\xDA\xD2\xD0")),
        "Москва"
    );
}

#[test]
fn a_payload_of_another_syntax_is_named_for_what_it_is() {
    assert_eq!(
        err(
            "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *260714*1200*U*00401*000000001*0*T*>~\nGS*SH~"
        ),
        "UNB: the interchange does not start with UNA or UNB (it starts with ISA: an X12 interchange, not EDIFACT)"
    );
    assert_eq!(
        err("STX=ANA:1+5000000000000:SENDER+5010000000000:RECEIVER+260714:1200+REF'"),
        "UNB: the interchange does not start with UNA or UNB (it starts with STX: a TRADACOMS transmission, not EDIFACT)"
    );
    assert_eq!(
        err("UNA:+.? '\nUNH+1+DESADV:D:96A:UN'"),
        "UNB: the interchange does not start with UNA or UNB (is this an EDIFACT file?)"
    );
}

#[test]
fn a_period_is_read_as_its_start() {
    let read = date_time("202607140800-202607141600", "719").unwrap();
    assert_eq!(read.0.to_string(), "2026-07-14");
    assert_eq!(read.1.map(|t| t.hour()), Some(8));
    assert_eq!(
        date_time("202607140800202607141600", "719").unwrap(),
        read,
        "without the hyphen, as most send it"
    );
    let read = date_time("20260714-20260716", "718").unwrap();
    assert_eq!(
        (read.0.to_string(), read.1),
        ("2026-07-14".to_owned(), None)
    );
    let error = date_time("202607140800", "719").unwrap_err();
    assert!(error.contains("not a period of format 719"), "{error}");
    let error = date_time("20261314-20261316", "718").unwrap_err();
    assert!(error.contains("the start of period"), "{error}");
}

#[test]
fn refuses_a_message_that_is_not_a_new_original() {
    // A replacement, change or resend of goods already booked would book them again: the
    // resend comes in a new interchange, so its envelope identity is new.
    for (function, refused) in [
        ("9", None),
        ("", None),
        ("1", Some("a cancellation (1)")),
        ("3", Some("a deletion (3)")),
        ("4", Some("a change (4)")),
        ("5", Some("a replacement (5)")),
        ("7", Some("a duplicate (7)")),
        ("31", Some("a copy (31)")),
        ("43", Some("an additional transmission (43)")),
    ] {
        let text = format!(
            "UNB+UNOC:3+S+R+260714:1200+9'UNH+1+RECADV:D:96A:UN'BGM+632+R1+{function}'UNT+3+1'UNZ+1+9'"
        );
        let interchange = parse(text.as_bytes()).unwrap();
        let bgm = &interchange.messages[0].segments[0];
        let result = refuse_not_original(bgm, "the receiving advice");
        match refused {
            None => assert!(result.is_ok(), "{function}"),
            Some(what) => assert!(
                result
                    .unwrap_err()
                    .message()
                    .contains(&format!("BGM 1225: the receiving advice is {what};")),
                "{function}"
            ),
        }
    }
}

#[test]
fn a_report_of_levels_refuses_only_what_withdraws() {
    // An inventory report sent again states the same levels: nothing counts twice.
    for (function, refused) in [
        ("5", false),
        ("7", false),
        ("9", false),
        ("1", true),
        ("3", true),
    ] {
        let text = format!(
            "UNB+UNOC:3+S+R+260714:1200+9'UNH+1+INVRPT:D:96A:UN'BGM+35+R1+{function}'UNT+3+1'UNZ+1+9'"
        );
        let interchange = parse(text.as_bytes()).unwrap();
        let bgm = &interchange.messages[0].segments[0];
        assert_eq!(
            refuse_withdrawn(bgm, "the inventory report").is_err(),
            refused,
            "{function}"
        );
    }
}

#[test]
fn refuses_a_message_reference_repeated_in_its_interchange() {
    let text = "UNB+UNOC:3+S+R+260714:1200+9'UNH+1+RECADV:D:96A:UN'BGM+632+R1+9'UNT+3+1'\
                UNH+1+RECADV:D:96A:UN'BGM+632+R2+9'UNT+3+1'UNZ+2+9'";
    assert!(parse(text.as_bytes()).unwrap_err().to_string().contains(
        "message reference '1' repeats that of message RECADV (segment 2) in the same interchange"
    ));
}

#[test]
fn lists_the_serial_numbers_of_a_range() {
    let text = "UNB+UNOC:3+S+R+260714:1200+9'UNH+1+RECADV:D:96A:UN'GIN+BN+SN0008:SN0011+X7'\
                GIN+BN+A1:A1'UNT+4+1'UNZ+1+9'";
    let interchange = parse(text.as_bytes()).unwrap();
    let segments: Vec<&Segment<'_>> = interchange.messages[0].segments.iter().collect();
    assert_eq!(
        line_serials(&segments).unwrap(),
        ["SN0008", "SN0009", "SN0010", "SN0011", "X7", "A1"]
    );
    for (first, last) in [
        ("SN10", "SN09"),
        ("SN1", "SN10"),
        ("A1", "B2"),
        ("S1", "S5000"),
    ] {
        let text = format!(
            "UNB+UNOC:3+S+R+260714:1200+9'UNH+1+RECADV:D:96A:UN'GIN+BN+{first}:{last}'UNT+3+1'UNZ+1+9'"
        );
        let interchange = parse(text.as_bytes()).unwrap();
        let segments: Vec<&Segment<'_>> = interchange.messages[0].segments.iter().collect();
        let error = line_serials(&segments).unwrap_err();
        assert!(
            error.message().contains(&format!(
                "the serial number range '{first}' to '{last}' cannot be listed"
            )),
            "{}",
            error.message()
        );
    }
}

#[test]
fn sub_lines_take_the_parents_references_and_must_add_up_to_it() {
    let text = doc(
        "UNH+1+DESADV:D:96A:UN:EAN005'BGM+351+D1'LIN+1++4000862141404:SRV'QTY+12:100'\
         RFF+ON:PO-7'DTM+36:20270101:102'LIN+2++4000862141404:SRV+1:1'QTY+12:60'RFF+BT:A'\
         LIN+3++4000862141404:SRV+1:1'QTY+12:40'RFF+BT:B'DTM+36:20280101:102'UNT+14+1'",
    );
    let interchange = parse(text.as_bytes()).unwrap();
    let lines = interchange.item_lines(&interchange.messages[0]).unwrap();
    let value = |line: &Vec<&Segment>, tag: &str, qualifier: &str| {
        qualified(line, tag, &[qualifier]).map(|s| s.value(1, 2).to_owned())
    };
    let order = |line: &Vec<&Segment>| value(line, "RFF", "ON");
    let expiry = |line: &Vec<&Segment>| value(line, "DTM", "36");
    // The parent's order for both; its expiry for the sub-line stating none.
    assert_eq!(
        lines.iter().map(order).collect::<Vec<_>>(),
        [Some("PO-7".to_owned()), Some("PO-7".to_owned())]
    );
    assert_eq!(
        lines.iter().map(expiry).collect::<Vec<_>>(),
        [Some("20270101".to_owned()), Some("20280101".to_owned())]
    );

    let short = text.replace("QTY+12:40'", "QTY+12:30'");
    let interchange = parse(short.as_bytes()).unwrap();
    let error = interchange
        .item_lines(&interchange.messages[0])
        .unwrap_err();
    assert!(
        error
            .message()
            .contains("line 1 states QTY 12 100 PCE, its sub-lines add up to 90 PCE"),
        "{error:?}"
    );

    // Line number 1 twice: which line would the sub-lines split?
    let reused = text.replace(
        "LIN+2++4000862141404:SRV+1:1",
        "LIN+1++4000862141404:SRV+1:1",
    );
    let interchange = parse(reused.as_bytes()).unwrap();
    let error = interchange.messages[0].lines().unwrap_err();
    assert!(
        error.message().contains("line number 1 is used twice"),
        "{error:?}"
    );
}

#[test]
fn a_serial_number_listed_twice_is_refused_and_gir_serials_count() {
    let segments = line("LIN+1++4012345000108:EN'GIN+BN+S1:S2'GIR+3+S3:BN'");
    let refs: Vec<&Segment> = segments.iter().collect();
    assert_eq!(line_serials(&refs).unwrap(), ["S1", "S2", "S3"]);
    let segments = line("LIN+1++4012345000108:EN'GIN+BN+S1:S2'GIN+BN+S2'");
    let refs: Vec<&Segment> = segments.iter().collect();
    let error = line_serials(&refs).unwrap_err();
    assert!(
        error
            .message()
            .contains("serial number 'S2' is listed twice"),
        "{error:?}"
    );
}

#[test]
fn a_batch_range_is_two_batches() {
    let segments = line("LIN+1++4012345000108:EN'GIN+BX+B-1:B-5'");
    let refs: Vec<&Segment> = segments.iter().collect();
    let error = line_batch(&refs).unwrap_err();
    assert!(error.message().contains("'B-5' (GIN BX range"), "{error:?}");
}

#[test]
fn a_line_without_an_order_under_a_header_naming_two_is_refused() {
    let segments = line("RFF+ON:PO-A'RFF+ON:PO-B'LIN+1++4012345000108:EN'LIN+2++X:EN'RFF+ON:PO-B'");
    let refs: Vec<&Segment> = segments.iter().collect();
    let (header, lines) = refs.split_at(2);
    let orders = HeaderReference::of(header, &["ON"]);
    let error = orders.for_line(&lines[..1], &["ON"]).unwrap_err();
    assert!(
        error.message().contains("the header names two ('PO-A'"),
        "{error:?}"
    );
    assert_eq!(
        orders.for_line(&lines[1..], &["ON"]).unwrap().as_deref(),
        Some("PO-B")
    );
    let one = HeaderReference::of(&header[..1], &["ON"]);
    assert_eq!(
        one.for_line(&lines[..1], &["ON"]).unwrap().as_deref(),
        Some("PO-A")
    );
}

#[test]
fn a_line_lies_in_the_package_of_its_level_or_the_nearest_above() {
    let text = doc(
        "UNH+1+DESADV:D:96A:UN:EAN005'BGM+351+D1'CPS+1'GIN+BJ+PALLET'PCI+36E+LOT-P'\
         CPS+2+1'LIN+1++A:SRV'QTY+12:5'CPS+3+1'GIN+BJ+C1:C3'LIN+2++B:SRV'QTY+12:6'\
         CPS+4+1'GIN+BJ+C9'LIN+3++C:SRV'QTY+12:7'GIN+BX+OWN'UNT+18+1'",
    );
    let interchange = parse(text.as_bytes()).unwrap();
    let message = &interchange.messages[0];
    let packaging = Packaging::read(message).unwrap();
    let lines = interchange.item_lines(message).unwrap();
    let found: Vec<(Option<String>, Option<String>)> = lines
        .iter()
        .map(|l| (packaging.sscc(l), packaging.batch(l).unwrap()))
        .collect();
    assert_eq!(
        found,
        [
            // A carton without a label lies on its pallet, marked with the pallet's batch.
            (Some("PALLET".into()), Some("LOT-P".into())),
            // A range of cartons: no one package.
            (None, Some("LOT-P".into())),
            // Its own label and batch win.
            (Some("C9".into()), Some("OWN".into())),
        ]
    );
    let twice = text.replace("CPS+4+1'", "CPS+3+1'");
    let interchange = parse(twice.as_bytes()).unwrap();
    let message = &interchange.messages[0];
    let error = Packaging::read(message).err().unwrap();
    assert!(
        error.message().contains("packaging level 3 is given twice"),
        "{error:?}"
    );
}

#[test]
fn sub_lines_of_sub_lines_take_every_parents_references_and_must_add_up() {
    // Line 1 (order PO-7, expiry 2027) split into line 2, split again into lines 3 and 4.
    let text = doc(
        "UNH+1+DESADV:D:96A:UN:EAN005'BGM+351+D1'LIN+1++4000862141404:SRV'QTY+12:100'\
         RFF+ON:PO-7'DTM+36:20270101:102'LIN+2++4000862141404:SRV+1:1'QTY+12:100'\
         DTM+36:20260901:102'LIN+3++4000862141404:SRV+1:2'QTY+12:60'RFF+BT:A'\
         LIN+4++4000862141404:SRV+1:2'QTY+12:40'RFF+BT:B'RFF+ON:PO-8'UNT+17+1'",
    );
    let interchange = parse(text.as_bytes()).unwrap();
    let lines = interchange.item_lines(&interchange.messages[0]).unwrap();
    let value = |line: &Vec<&Segment>, tag: &str, qualifier: &str| {
        sole(line, tag, qualifier)
            .unwrap()
            .map(|s| s.value(1, 2).to_owned())
    };
    // The grandparent's order where the line states none; the nearest expiry (line 2's).
    assert_eq!(
        lines
            .iter()
            .map(|l| value(l, "RFF", "ON"))
            .collect::<Vec<_>>(),
        [Some("PO-7".to_owned()), Some("PO-8".to_owned())]
    );
    assert_eq!(
        lines
            .iter()
            .map(|l| value(l, "DTM", "36"))
            .collect::<Vec<_>>(),
        [Some("20260901".to_owned()), Some("20260901".to_owned())]
    );

    // The second-level split must add up to the sub-line it splits.
    let short = text.replace("QTY+12:40'", "QTY+12:30.5'");
    let interchange = parse(short.as_bytes()).unwrap();
    let error = interchange
        .item_lines(&interchange.messages[0])
        .unwrap_err();
    assert_eq!(
        error.message(),
        "segment 8 (LIN) at line 1: line 2 states QTY 12 100 PCE, its sub-lines add up to 90.5 \
         PCE; they must add up, or the split ships another quantity than the line"
    );

    // A sub-line stating no quantity counts its own sub-lines' towards its parent.
    let unstated = text.replace("SRV+1:1'QTY+12:100'", "SRV+1:1'");
    let unstated = unstated.replace("UNT+17+1", "UNT+16+1");
    let interchange = parse(unstated.as_bytes()).unwrap();
    assert_eq!(
        interchange
            .item_lines(&interchange.messages[0])
            .unwrap()
            .len(),
        2
    );
    let over = unstated.replace("QTY+12:40'", "QTY+12:50'");
    let interchange = parse(over.as_bytes()).unwrap();
    let error = interchange
        .item_lines(&interchange.messages[0])
        .unwrap_err();
    assert!(
        error
            .message()
            .contains("line 1 states QTY 12 100 PCE, its sub-lines add up to 110 PCE"),
        "{error:?}"
    );
}

#[test]
fn a_split_that_cannot_be_added_up_is_refused() {
    let text = doc(
        "UNH+1+DESADV:D:96A:UN:EAN005'BGM+351+D1'LIN+1++4000862141404:SRV'QTY+12:100'\
         LIN+2++4000862141404:SRV+1:1'QTY+12:60'LIN+3++4000862141404:SRV+1:1'QTY+12:40'\
         UNT+9+1'",
    );
    let interchange = parse(text.as_bytes()).unwrap();
    assert_eq!(
        interchange
            .item_lines(&interchange.messages[0])
            .unwrap()
            .len(),
        2
    );
    // A sub-line in another unit than its line.
    let units = text.replace("QTY+12:40'", "QTY+12:400:KGM'");
    let interchange = parse(units.as_bytes()).unwrap();
    assert_eq!(
        interchange
            .item_lines(&interchange.messages[0])
            .unwrap_err()
            .message(),
        "segment 8 (LIN) at line 1: line 3 (a sub-line of line 1) states QTY 12 in KGM, line 1 in \
         PCE: they cannot be checked to add up; state the split in the line's unit"
    );
    // The split line stating its quantity twice.
    let twice = text.replace("QTY+12:100'", "QTY+12:100'QTY+12:90'");
    let twice = twice.replace("UNT+9+1", "UNT+10+1");
    let interchange = parse(twice.as_bytes()).unwrap();
    assert_eq!(
        interchange
            .item_lines(&interchange.messages[0])
            .unwrap_err()
            .message(),
        "segment 4 (LIN) at line 1: line 1 (split into sub-lines) states QTY 12 twice (segment 5 \
         (QTY) at line 1 and segment 6 (QTY) at line 1): it and its split cannot be checked to add \
         up; send one quantity per line or sub-line"
    );
    // A sub-line stating it twice.
    let twice = text.replace("QTY+12:60'", "QTY+12:60'QTY+12:40'");
    let twice = twice.replace("UNT+9+1", "UNT+10+1");
    let interchange = parse(twice.as_bytes()).unwrap();
    assert!(
        interchange
            .item_lines(&interchange.messages[0])
            .unwrap_err()
            .message()
            .contains("line 2 (a sub-line of line 1) states QTY 12 twice"),
    );
}

#[test]
fn a_header_statement_repeated_differently_is_refused() {
    let segments = line(
        "BGM+351+D1'DTM+137:20260713:102'DTM+11:20260714:102'DTM+11:20260714:102 '\
         NAD+SU+4012345000009::9'",
    );
    let header: Vec<&Segment> = segments.iter().collect();
    // The same date twice is one statement; the document date is not asked for.
    let found = qualified_once(&header, "DTM", &["11", "137"]).unwrap();
    assert_eq!(found.map(|s| s.position), Some(5));
    assert!(qualified_once(&header, "NAD", &["SU"]).unwrap().is_some());
    assert!(qualified_once(&header, "DTM", &["2"]).unwrap().is_none());
    let segments = line("BGM+351+D1'DTM+11:20260714:102'DTM+137:1'DTM+11:20260720:102'");
    let header: Vec<&Segment> = segments.iter().collect();
    assert_eq!(
        qualified_once(&header, "DTM", &["11", "137"])
            .unwrap_err()
            .message(),
        "segment 4 (DTM) at line 1: the header states DTM 11 twice, differently \
         ('DTM+11:20260714:102', then 'DTM+11:20260720:102' in segment 6 (DTM) at line 1); which \
         one holds cannot be told"
    );
}

#[test]
fn refuses_a_group_reference_repeated_in_its_interchange() {
    let text = "UNB+UNOC:3+S+R+260714:1200+9'UNG+DESADV+S+R+260714:1200+G1+UN+D:96A'\
                UNH+1+DESADV:D:96A:UN'BGM+351+D1+9'UNT+3+1'UNE+1+G1'\
                UNG+DESADV+S+R+260714:1200+G1+UN+D:96A'UNH+1+DESADV:D:96A:UN'BGM+351+D2+9'\
                UNT+3+1'UNE+1+G1'UNZ+2+9'";
    assert_eq!(
        err(text),
        "segment 7 (UNG) at line 1: group reference 'G1' repeats that of group DESADV (segment \
         2) in the same interchange: a group's reference is unique there"
    );
    let other = text
        .replacen("+G1+UN", "+G2+UN", 1)
        .replacen("UNE+1+G1", "UNE+1+G2", 1);
    assert_eq!(parse(other.as_bytes()).unwrap().groups.len(), 2);
}

#[test]
fn a_line_break_as_a_service_character_is_refused_plainly() {
    let text = "UNA:+.? \nUNB+UNOC:3+S+R+260714:1200+9\nUNH+1+DESADV:D:96A:UN\nUNT+2+1\nUNZ+1+9\n";
    assert_eq!(
        err(text),
        "UNA: the segment terminator is a line break (LF); this reader drops line breaks between \
         and inside segments (files come wrapped), so a line break cannot be the segment \
         terminator: use a printable character (the default is ')"
    );
    let crlf = text.replace('\n', "\r\n");
    assert!(err(&crlf).contains("the segment terminator is a line break (CR)"));
    assert!(
        err("UNA:\n.? 'UNB+UNOC:3+S+R+260714:1200+9'")
            .contains("the element separator is a line break (LF)")
    );
}

#[test]
fn a_split_nests_a_bounded_number_of_levels() {
    // Line 1, then each line a sub-line of the one before: 32 levels are read, 33 refused (a
    // walk up or down a split of thousands of levels would run out of stack or time).
    let chain = |levels: usize| {
        let mut body =
            "UNH+1+DESADV:D:96A:UN:EAN005'BGM+351+D1'LIN+1++4000862141404:SRV'".to_owned();
        for n in 2..=levels + 1 {
            body.push_str(&format!("LIN+{n}++4000862141404:SRV+1:{}'", n - 1));
        }
        body.push_str("QTY+12:5'");
        body.push_str(&format!("UNT+{}+1'", levels + 5));
        doc(&body)
    };
    let deep = chain(32);
    let interchange = parse(deep.as_bytes()).unwrap();
    assert_eq!(
        interchange
            .item_lines(&interchange.messages[0])
            .unwrap()
            .len(),
        1
    );
    let deeper = chain(33);
    let interchange = parse(deeper.as_bytes()).unwrap();
    let error = interchange
        .item_lines(&interchange.messages[0])
        .unwrap_err();
    assert!(
        error
            .message()
            .contains("line 34 is a sub-line 33 levels below its top line"),
        "{error:?}"
    );
}

/// A release character at the end of a wrapped line releases the first character of the next
/// line: the line break is a wrap, not data (ISO 9735: the release applies to the next
/// character of the data). LF, CRLF and CR wraps alike.
#[test]
fn a_release_character_before_a_wrap_releases_the_next_data_character() {
    for wrap in ["\n", "\r\n", "\r"] {
        for (body, element, expected) in [
            ("RFF+BT:AB?{w}:C'", (1, 2), "AB:C"),
            ("GIN+BX+AB?{w}+C'", (2, 1), "AB+C"),
            ("RFF+BT:X??{w}Y'", (1, 2), "X?Y"),
            // Several breaks (a blank line) between the release and what it releases.
            ("RFF+BT:AB?{w}{w}:C'", (1, 2), "AB:C"),
        ] {
            let body = body.replace("{w}", wrap);
            let segments = line(&body);
            let segment = &segments[0];
            assert_eq!(segment.value(element.0, element.1), expected, "{body:?}");
            // The unwrapped segment reads the same.
            let unwrapped = line(&body.replace(wrap, ""));
            assert_eq!(unwrapped[0].components, segment.components, "{body:?}");
        }
        // A released segment terminator after the wrap.
        let text = doc(&format!(
            "UNH+1+RECADV:D:96A:UN:EAN003'RFF+BT:X?{wrap}'Y'UNT+3+1'"
        ));
        let read = parse(text.as_bytes()).unwrap();
        assert_eq!(read.messages[0].segments[0].value(1, 2), "X'Y", "{wrap:?}");
        // Lines still count past a released wrap.
        let segments = line(&format!("RFF+BT:AB?{wrap}:C'{wrap}QTY+12:1'"));
        let lf = usize::from(wrap.contains('\n'));
        assert_eq!(segments[1].line, 1 + 2 * lf, "{wrap:?}");
        // A release with nothing but line breaks after it is a truncated interchange.
        let cut = format!("{}RFF+BT:AB?{wrap}", "UNB+UNOC:3+S+R+260714:1200+REF1'");
        assert!(
            err(&cut).ends_with("the interchange ends with a release character: it is truncated"),
            "{wrap:?}: {}",
            err(&cut)
        );
    }
}

/// NUL bytes and Ctrl-Z (the DOS end-of-file mark) padding after the last UNZ are no segment;
/// anything else there still is one, and padding between interchanges is refused.
#[test]
fn padding_after_the_last_unz_is_tolerated() {
    let text = doc(MSG);
    let read = parse(text.as_bytes()).unwrap();
    for padding in [
        "\u{1a}",
        "\0\0\0\0",
        "\r\n\u{1a}",
        "\n\0\0\n\u{1a}\r\n",
        "\u{1a}\n",
    ] {
        let padded = format!("{text}{padding}");
        assert_eq!(parse(padded.as_bytes()).unwrap(), read, "{padding:?}");
        assert_eq!(parse_all(padded.as_bytes()).unwrap(), vec![read.clone()]);
    }
    assert_eq!(
        err(&format!("{text}\u{1a}UNH+2'")),
        "segment 7 (UNH) at line 1: segment after the UNZ trailer and the NUL or Ctrl-Z padding \
         after it (such padding may only end the file)"
    );
    assert_eq!(
        err(&format!("{text}\n\0\0\njunk")),
        "segment 7 at line 3: segment after the UNZ trailer and the NUL or Ctrl-Z padding after \
         it (such padding may only end the file)"
    );
    assert_eq!(
        err(&format!("{text}\u{1a}X")),
        "segment 7 at line 1: segment after the UNZ trailer and the NUL or Ctrl-Z padding after \
         it (such padding may only end the file)"
    );
    let second = text.replace("REF1", "REF2");
    assert_eq!(
        parse_all(format!("{text}\u{1a}{second}").as_bytes())
            .unwrap_err()
            .to_string(),
        "segment 7 at line 1: an interchange follows NUL or Ctrl-Z padding after the UNZ \
         trailer; such padding may only end the file, never stand between interchanges"
    );
    // Padding after the last of several interchanges is tolerated.
    assert_eq!(
        parse_all(format!("{text}\n{second}\0\0").as_bytes())
            .unwrap()
            .len(),
        2
    );
    // Another control character is no padding.
    assert_eq!(
        err(&format!("{text}\u{1b}")),
        "segment 7 at line 1: segment after the UNZ trailer"
    );
}

/// In EANCOM, PIA function 5 is the product identification, 1 an additional one: whatever
/// their order, a LIN without an item number takes the PIA+5 id. Functions naming another
/// product (a substitute, a successor) never give the item, nor the batch.
#[test]
fn the_item_is_the_lin_number_then_pia_5_then_pia_1() {
    for (body, qualifier, expected) in [
        (
            "LIN+1'PIA+1+SUPP-ALT-9:SA'PIA+5+4012345000108:SRV'",
            None,
            "4012345000108",
        ),
        (
            "LIN+1'PIA+5+4012345000108:SRV'PIA+1+SUPP-ALT-9:SA'",
            None,
            "4012345000108",
        ),
        ("LIN+1'PIA+12+ALT-1:SA'PIA+1+ADD-1:SA'", None, "ADD-1"),
        ("LIN+1'PIA+4+OLD-1:SA'PIA+1+MAT-100:SA'", None, "MAT-100"),
        (
            "LIN+1'PIA+3+NEW-1:SA'PIA+6+NEXT-1:SA'PIA+5+MAT-100:SA'",
            None,
            "MAT-100",
        ),
        (
            "LIN+1++4012345000108:EN'PIA+5+MAT-5:SA'",
            None,
            "4012345000108",
        ),
        // With a qualifier: the PIA+5 id of that type before the PIA+1 one.
        (
            "LIN+1'PIA+1+ADD-SA:SA'PIA+5+GTIN:SRV+MAIN-SA:SA'",
            Some("SA"),
            "MAIN-SA",
        ),
        (
            "LIN+1++GTIN:EN'PIA+4+OLD-BP:BP'PIA+1+NEW-BP:BP'",
            Some("BP"),
            "NEW-BP",
        ),
    ] {
        let segments = line(body);
        let refs: Vec<&Segment> = segments.iter().collect();
        assert_eq!(line_item(&refs, qualifier).unwrap(), expected, "{body}");
    }
    let segments = line("LIN+1'PIA+4+OLD-1:SA'");
    let refs: Vec<&Segment> = segments.iter().collect();
    assert_eq!(
        line_item(&refs, None).unwrap_err().message(),
        "segment 3 (LIN) at line 1: the line has no item number (the PIA 4 in segment 4 (PIA) at \
         line 1 names another product than the line's, not its item)"
    );
    let segments = line("LIN+1++GTIN:EN'PIA+3+B-9:NB'PIA+1+B-1:NB'");
    let refs: Vec<&Segment> = segments.iter().collect();
    assert_eq!(line_batch(&refs).unwrap().as_deref(), Some("B-1"));
}

/// An error about a date quotes it as sent, not with the century the two-digit year was read
/// with.
#[test]
fn a_dtm_error_quotes_the_value_as_sent() {
    assert_eq!(
        date_time("270231", "101").unwrap_err(),
        "'270231' is not a valid date (expected YYMMDD)"
    );
    assert_eq!(
        date_time("2702311200", "201").unwrap_err(),
        "'2702311200' is not a valid date (expected YYMMDDHHMM)"
    );
    assert_eq!(
        date_time("20270231", "102").unwrap_err(),
        "'20270231' is not a valid date (expected YYYYMMDD)"
    );
}

/// `2400` is the end of a day: the next day's first instant, in every format with a time; any
/// other hour past 23 is refused, the error naming the format's own layout.
#[test]
fn a_dtm_at_2400_is_the_next_days_midnight() {
    let route = crate::timestamp::UtcOffset::UTC;
    let segments = line(
        "DTM+132:202607152400:203'DTM+2:20261231240000:204'DTM+17:2607152400:201'\
         DTM+11:202602282400?+01:303'",
    );
    let stamps: Vec<String> = segments
        .iter()
        .map(|dtm| dtm_timestamp(dtm, route).unwrap())
        .collect();
    assert_eq!(
        stamps,
        [
            "2026-07-16T00:00:00Z",
            "2027-01-01T00:00:00Z",
            "2026-07-16T00:00:00Z",
            "2026-03-01T00:00:00+01:00",
        ]
    );
    assert_eq!(
        date_time("202607152401", "203").unwrap_err(),
        "'202607152401': '2401' is not a valid time of format 203 (expected HHMM, 0000 to \
         2359, or 2400 for the end of the day)"
    );
    assert_eq!(
        date_time("20260715126000", "204").unwrap_err(),
        "'20260715126000': '126000' is not a valid time of format 204 (expected HHMMSS, 000000 \
         to 235959, or 240000 for the end of the day)"
    );
    assert!(date_time("99991231240000", "204").is_err());
}

/// An order marked on a package (the `RFF` of its `PCI` group) is the order of the lines in it
/// that name none, the nearest package first, before the header's; two different ones on one
/// package are refused for a line naming none.
#[test]
fn a_line_takes_the_order_marked_on_its_package() {
    let text = doc(
        "UNH+1+DESADV:D:96A:UN:EAN005'BGM+351+D1'RFF+ON:PO-H'CPS+1'PAC+0'PCI+0'RFF+ON:PO-1'\
         PCI+0'RFF+MB:AWB-1'CPS+2+1'PCI+33E'RFF+ON:PO-2'GIN+BJ+P2'LIN+1++A:SRV'QTY+12:5'\
         CPS+3+1'GIN+BJ+P3'LIN+2++B:SRV'QTY+12:6'LIN+3++C:SRV'QTY+12:7'RFF+ON:PO-OWN'\
         CPS+4'LIN+4++D:SRV'QTY+12:8'UNT+26+1'",
    );
    // The order each line of `text` takes (`for_packed_line`), or the error's message.
    let orders_of = |text: &str| -> Vec<Result<Option<String>, String>> {
        let interchange = parse(text.as_bytes()).unwrap();
        let message = &interchange.messages[0];
        let packaging = Packaging::read(message).unwrap();
        let orders = HeaderReference::of(&message.header(), &["ON"]);
        let lines = interchange.item_lines(message).unwrap();
        lines
            .iter()
            .map(|l| {
                orders
                    .for_packed_line(l, &packaging, &["ON"])
                    .map_err(|e| e.message().to_owned())
            })
            .collect()
    };
    let order = |o: &str| Ok(Some(o.to_owned()));
    assert_eq!(
        orders_of(&text),
        [
            // Its pallet's order, not the consignment's nor the header's.
            order("PO-2"),
            // A pallet naming none: the consignment's.
            order("PO-1"),
            // The line's own wins.
            order("PO-OWN"),
            // A level naming none, with none above it: the header's.
            order("PO-H"),
        ]
    );
    // `for_line` reads no package.
    let interchange = parse(text.as_bytes()).unwrap();
    let message = &interchange.messages[0];
    let lines = interchange.item_lines(message).unwrap();
    let orders = HeaderReference::of(&message.header(), &["ON"]);
    assert_eq!(
        orders.for_line(&lines[0], &["ON"]).unwrap().as_deref(),
        Some("PO-H")
    );
    // Two orders on one pallet: refused for its line naming none.
    let two = text
        .replace("GIN+BJ+P2'", "RFF+ON:PO-9'GIN+BJ+P2'")
        .replace("UNT+26", "UNT+27");
    let error = orders_of(&two).remove(0).unwrap_err();
    assert!(
        error.contains("(CPS level 2) names two RFF ON ('PO-2' in"),
        "{error}"
    );
    // Two orders on the consignment: refused for the pallet naming none, not for the one
    // naming its own.
    let above = orders_of(&text.replace("RFF+MB:AWB-1'", "RFF+ON:PO-0'"));
    assert_eq!(above[0], order("PO-2"));
    let error = above[1].clone().unwrap_err();
    assert!(
        error.contains(
            "a package it lies in (CPS level 1, above its own) names two RFF ON ('PO-1' in"
        ),
        "{error}"
    );
    // The same order twice on one package is one statement.
    let alike = text
        .replace("GIN+BJ+P2'", "RFF+ON:PO-2'GIN+BJ+P2'")
        .replace("UNT+26", "UNT+27");
    assert_eq!(orders_of(&alike)[0], order("PO-2"));
}
