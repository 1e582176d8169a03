//! Unit tests of the X12 reader with small inline interchanges.

use super::*;

const ISA: &str = "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *260714*1200*U*00401*000000001*0*T*>~";

fn doc(body: &str) -> String {
    format!(
        "{ISA}\nGS*SH*SENDER*RECEIVER*20260714*1200*7*X*004010~\n{body}GE*1*7~\nIEA*1*000000001~\n"
    )
}

const SET: &str = "ST*856*0001~\nBSN*00*SHIP1*20260714*1200~\nLIN**BP*PART>A~\nSE*4*0001~\n";

fn err(text: &str) -> String {
    parse(text.as_bytes()).unwrap_err().to_string()
}

#[test]
fn reads_a_fixed_width_interchange() {
    let text = doc(SET);
    let interchange = parse(text.as_bytes()).unwrap();
    assert_eq!(interchange.sender, "SENDER");
    assert_eq!(interchange.receiver, "RECEIVER");
    assert_eq!(interchange.control_number, "000000001");
    assert_eq!(interchange.date, "260714");
    assert_eq!(interchange.usage, "T");
    assert!(interchange.is_test());
    let production = text.replace("*0*T*>~", "*0*P*>~");
    assert!(!parse(production.as_bytes()).unwrap().is_test());
    assert_eq!(
        interchange.separators,
        Separators {
            element: '*',
            component: '>',
            repetition: None,
            segment: '~'
        }
    );
    let (group, set) = interchange.transaction_sets().next().unwrap();
    assert_eq!(group.functional_id, "SH");
    assert_eq!(group.version, "004010");
    assert_eq!(set.id, "856");
    assert_eq!(set.control_number, "0001");
    assert_eq!(set.segments.len(), 2);
    let lin = &set.segments[1];
    assert_eq!(lin.id, "LIN");
    assert_eq!(lin.element(1), "");
    assert_eq!(lin.element(3), "PART>A");
    assert_eq!(lin.component(3, 1), "PART");
    assert_eq!(lin.component(3, 2), "A");
    assert_eq!(lin.component(3, 3), "");
    assert_eq!(lin.element(9), "");
    assert_eq!(lin.position, 5);
    assert_eq!(lin.line, 5);
}

#[test]
fn source_transactions_name_the_sender_and_every_envelope_level() {
    // Two groups of one interchange, each numbering its first set 0001.
    let text = format!(
        "{ISA}\nGS*SH*SENDER*RECEIVER*20260714*1200*7*X*004010~\n{SET}GE*1*7~\nGS*SH*SENDER*RECEIVER*20260714*1200*8*X*004010~\n{SET}GE*1*8~\nIEA*2*000000001~\n"
    );
    let interchange = parse(text.as_bytes()).unwrap();
    let ids: Vec<String> = interchange
        .transaction_sets()
        .map(|(_, set)| interchange.source_transaction(set, Some("SHIP1")))
        .collect();
    assert_eq!(
        ids,
        [
            "ZZ/SENDER:000000001:7:0001:SHIP1",
            "ZZ/SENDER:000000001:8:0001:SHIP1"
        ]
    );
    // Another partner whose interchange, group and set numbers are the same.
    let other = doc(SET).replace("ZZ*SENDER         ", "01*OTHER          ");
    let other = parse(other.as_bytes()).unwrap();
    let (_, set) = other.transaction_sets().next().unwrap();
    assert_eq!(
        other.source_transaction(set, None),
        "01/OTHER:000000001:7:0001"
    );
}

#[test]
fn tolerates_bom_crlf_and_no_line_breaks() {
    let crlf = format!("\u{feff}{}", doc(SET).replace('\n', "\r\n"));
    assert_eq!(parse(crlf.as_bytes()).unwrap().groups.len(), 1);
    let flat = doc(SET).replace('\n', "");
    assert_eq!(parse(flat.as_bytes()).unwrap().groups.len(), 1);
}

#[test]
fn joins_lines_wrapped_at_80_columns() {
    let flat = doc(SET).replace('\n', "");
    let wrapped: String = flat
        .as_bytes()
        .chunks(80)
        .map(|chunk| format!("{}\r\n", std::str::from_utf8(chunk).unwrap()))
        .collect();
    let interchange = parse(wrapped.as_bytes()).unwrap();
    let (_, set) = interchange.transaction_sets().next().unwrap();
    assert_eq!(set.segments[0].element(2), "SHIP1");
}

#[test]
fn joins_lines_wrapped_after_a_declared_separator() {
    // `|` and `!` are usual segment terminators, but a line broken after the declared element
    // separator is a wrap, whatever the next line looks like (`BP|`, `VP|` read like segments).
    for element in ['|', '!'] {
        let flat = doc("ST*856*0001~BSN*00*SHIP1*20260714*1200~LIN**BP*PART>A*VP*V1~SE*4*0001~")
            .replace('*', &element.to_string())
            .replace('\n', "");
        for width in 40..=100 {
            let wrapped: String = flat
                .as_bytes()
                .chunks(width)
                .map(|chunk| format!("{}\n", std::str::from_utf8(chunk).unwrap()))
                .collect();
            let interchange = parse(wrapped.as_bytes())
                .unwrap_or_else(|e| panic!("'{element}' wrapped at {width}: {e}"));
            let (_, set) = interchange.transaction_sets().next().unwrap();
            assert_eq!(
                set.segments[1].pair_value(2, &["VP"]).as_deref(),
                Some("V1")
            );
        }
    }
}

#[test]
fn passes_over_padding_after_the_last_interchange() {
    // NUL bytes and a DOS end-of-file mark (Ctrl-Z) pad some systems' files.
    for padding in ["\u{1a}", "\0\0\0\0", "\r\n\u{1a}", "\u{1a}\0 \n"] {
        let text = format!("{}{padding}", doc(SET));
        assert_eq!(
            parse(text.as_bytes()).unwrap().groups.len(),
            1,
            "{padding:?}"
        );
        assert_eq!(parse_all(text.as_bytes()).unwrap().len(), 1, "{padding:?}");
        let lines = doc(SET).replace('~', "");
        let text = format!("{lines}{padding}");
        assert_eq!(
            parse(text.as_bytes()).unwrap().groups.len(),
            1,
            "{padding:?}"
        );
    }
    // Anything else after the trailer is still a truncated segment.
    assert!(err(&format!("{}\u{1a}GS*", doc(SET))).contains("truncated"));
}

#[test]
fn passes_over_padding_after_a_last_line_without_a_line_break() {
    // A newline-delimited file whose IEA line has no line break, then Ctrl-Z or NULs.
    let lines = doc(SET).replace('~', "");
    let lines = lines.trim_end();
    for padding in ["\u{1a}", "\0\0\0\0", "\u{1a}\0", "  \u{1a}"] {
        let text = format!("{lines}{padding}");
        assert_eq!(
            parse(text.as_bytes()).unwrap().groups.len(),
            1,
            "{padding:?}"
        );
        assert_eq!(parse_all(text.as_bytes()).unwrap().len(), 1, "{padding:?}");
    }
    // A trailer cut short is still truncated, padding or not.
    let cut = &lines[..lines.len() - 2];
    assert!(err(&format!("{cut}\u{1a}")).contains("truncated"));
}

#[test]
fn reads_newline_delimited_files_and_other_separators() {
    let text = "ISA|00|          |00|          |ZZ|SENDER         |ZZ|RECEIVER       |260714|1200|^|00501|000000002|0|P|:\nGS|SH|S|R|20260714|1200|9|X|005010\nST|856|0001\nLIN||BP|A:B^C\nSE|3|0001\nGE|1|9\nIEA|1|000000002\n";
    let interchange = parse(text.as_bytes()).unwrap();
    assert_eq!(
        interchange.separators,
        Separators {
            element: '|',
            component: ':',
            repetition: Some('^'),
            segment: '\n'
        }
    );
    let (_, set) = interchange.transaction_sets().next().unwrap();
    assert_eq!(set.segments[0].component(3, 2), "B^C");
}

#[test]
fn reads_an_isa_that_is_not_padded_and_split_across_lines() {
    let text = "ISA*00* *00* *01*054481205 *ZZ*CEVANISSAN\n*080403*1114*U*00400*000000001*0*P*@!\nGS*SS*S*R*20080403*1615*1*X*004010!\nST*862*0001!\nLIN*1*BP*P1@X!\nSE*3*0001!\nGE*1*1!\nIEA*1*000000001!";
    let interchange = parse(text.as_bytes()).unwrap();
    assert_eq!(interchange.receiver, "CEVANISSAN");
    assert_eq!(interchange.separators.segment, '!');
    assert_eq!(interchange.separators.component, '@');
    let (_, set) = interchange.transaction_sets().next().unwrap();
    assert_eq!(set.segments[0].component(3, 2), "X");
}

#[test]
fn counts_several_groups_and_sets() {
    let second = SET.replace("0001", "0002");
    let text = format!(
        "{ISA}GS*SH*S*R*20260714*1200*7*X*004010~{SET}{second}GE*2*7~GS*SH*S*R*20260714*1200*8*X*004010~{SET}GE*1*8~IEA*2*1~"
    );
    let interchange = parse(text.as_bytes()).unwrap();
    assert_eq!(interchange.groups.len(), 2);
    assert_eq!(interchange.transaction_sets().count(), 3);
}

#[test]
fn rejects_every_envelope_error() {
    let cases = [
        (
            doc(&SET.replace("SE*4*0001", "SE*5*0001")),
            "segment 6 (SE) at line 6: SE01 counts 5 segments, the transaction set 856 0001 has 4 (ST to SE)",
        ),
        (
            doc(&SET.replace("SE*4*0001", "SE*4*0002")),
            "segment 6 (SE) at line 6: SE02 control number '0002' differs from ST02 '0001' (segment 3 (ST) at line 3)",
        ),
        (
            doc(SET).replace("GE*1*7", "GE*2*7"),
            "segment 7 (GE) at line 7: GE01 counts 2 transaction sets, the group 7 has 1",
        ),
        (
            doc(SET).replace("GE*1*7", "GE*1*8"),
            "segment 7 (GE) at line 7: GE02 control number '8' differs from GS06 '7' (segment 2 (GS) at line 2)",
        ),
        (
            doc(SET).replace("IEA*1*", "IEA*2*"),
            "segment 8 (IEA) at line 8: IEA01 counts 2 functional groups, the interchange has 1",
        ),
        (
            doc(SET).replace("IEA*1*000000001", "IEA*1*000000002"),
            "segment 8 (IEA) at line 8: IEA02 control number '000000002' differs from ISA13 '000000001'",
        ),
        (
            doc(&SET.replace("SE*4*0001~\n", "")),
            "segment 6 (GE) at line 6: GE before the SE trailer of transaction set 856 0001 (segment 3 (ST) at line 3)",
        ),
        (
            doc(SET).replace("GE*1*7~\n", ""),
            "segment 7 (IEA) at line 7: expected ST or the GE trailer of the group opened at segment 2 (GS) at line 2, found IEA",
        ),
        (
            doc(SET).replace("IEA*1*000000001~\n", ""),
            "after segment 7: the interchange ends too early: there is no IEA trailer",
        ),
        (
            doc(SET).replace("SE*4*0001~\nGE*1*7~\nIEA*1*000000001~\n", ""),
            "after segment 5: the interchange ends too early: transaction set 856 0001 (segment 3 (ST) at line 3) has no SE trailer",
        ),
        (
            doc(SET).replace("IEA*1*000000001~\n", "IEA*1*000000001"),
            "segment 8 (IEA) at line 8: the segment has no terminator '~': the interchange is truncated",
        ),
        (
            format!("{}GS*X~", doc(SET)),
            "segment 9 (GS) at line 9: segment after the IEA trailer",
        ),
        (
            doc(SET).replace("BSN*", "bsn*"),
            "segment 4 at line 4: 'bsn*00*SHIP1*2026071' does not start with a segment identifier",
        ),
        (
            doc(SET).replace("SE*4*", "SE*four*"),
            "segment 6 (SE) at line 6: SE01 'four' is not a segment count",
        ),
        (
            "UNB+UNOA:3+S+R+260101:1200+1'".to_owned(),
            "ISA header: the interchange does not start with an ISA segment (is this an X12 file?)",
        ),
        (
            "ISA*00*  *00*".to_owned(),
            "ISA header: the ISA header is truncated before ISA16",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(err(&text), expected, "{text}");
    }
}

#[test]
fn rejects_mixed_terminators() {
    let text = doc(SET).replace("1200~\nLIN", "1200!\nLIN");
    assert_eq!(
        err(&text),
        "segment 4 (BSN) at line 4: the segment ends with '!' and a line break, and the next line \
         starts a new segment 'LIN', but the ISA header declares '~' as the segment terminator: the \
         file mixes segment terminators"
    );
}

#[test]
fn maps_units_and_dates() {
    assert_eq!(unit_to_rec20("PC"), Some("PCE"));
    assert_eq!(unit_to_rec20("LB"), Some("LBR"));
    assert_eq!(unit_to_rec20("ZZ"), None);
    // Packages counted as units: Rec 21's code prefixed `X` (Rec 20, note 2); a kit is `KT`.
    for (x12, rec20) in [
        ("CT", "XCT"),
        ("BG", "XBG"),
        ("DR", "XDR"),
        ("BO", "XBO"),
        ("RE", "XRL"),
        ("PK", "XPK"),
        ("KT", "KT"),
        (" CT ", "XCT"),
        ("CA", "XCS"),
        ("CS", "XCS"),
        ("BX", "XBX"),
        ("PL", "XPX"),
        ("PX", "XPX"),
        ("RL", "XRO"),
    ] {
        assert_eq!(unit_to_rec20(x12), Some(rec20), "{x12}");
    }
    // Everyday units partners send: yard, linear foot (a foot of length), cubic foot, ounce,
    // millilitre, hour.
    for (x12, rec20) in [
        ("YD", "YRD"),
        ("LF", "FOT"),
        ("CF", "FTQ"),
        ("OZ", "ONZ"),
        ("ML", "MLT"),
        ("HR", "HUR"),
    ] {
        assert_eq!(unit_to_rec20(x12), Some(rec20), "{x12}");
    }
    // A lot is no fixed quantity.
    assert_eq!(unit_to_rec20("LO"), None);
    assert_eq!(
        crate::timestamp::full_date(date("070101").unwrap()),
        "2007-01-01"
    );
    assert_eq!(
        crate::timestamp::full_date(date("20260714").unwrap()),
        "2026-07-14"
    );
    assert!(date("2026071").is_err());
    assert_eq!(
        time("21301599").unwrap(),
        crate::timestamp::Time::from_hms(21, 30, 15).unwrap()
    );
}

#[test]
fn reads_pairs_and_timestamps() {
    let text = doc("ST*856*0001~\nLIN**BP*7389141G01*ON*RG61372*VP*~\nSE*3*0001~\n");
    let interchange = parse(text.as_bytes()).unwrap();
    let (_, set) = interchange.transaction_sets().next().unwrap();
    assert_eq!(
        set.segments[0].pairs(2),
        vec![("BP", "7389141G01"), ("ON", "RG61372")]
    );
    assert_eq!(
        timestamp("070101", "1130", "+01:00").unwrap(),
        "2007-01-01T11:30:00+01:00"
    );
    assert_eq!(
        timestamp("20260714", "", "Z").unwrap(),
        "2026-07-14T00:00:00Z"
    );
    assert!(timestamp("20260714", "2561", "Z").is_err());
}

#[test]
fn a_newline_delimited_file_may_end_without_a_final_line_break() {
    let text = "ISA|00|          |00|          |ZZ|SENDER         |ZZ|RECEIVER       |260714|1200|^|00501|000000002|0|P|:\nGS|SH|S|R|20260714|1200|9|X|005010\nST|856|0001\nLIN||BP|A:B^C\nSE|3|0001\nGE|1|9\nIEA|1|000000002";
    let interchange = parse(text.as_bytes()).unwrap();
    assert_eq!(interchange.control_number, "000000002");
    assert_eq!(
        parse(format!("{text}\r\n").as_bytes()).unwrap(),
        interchange
    );
    // Cut in the middle of the trailer, or earlier: still truncated.
    for cut in [
        &text[..text.len() - 1],
        &text[..text.len() - 10],
        text.trim_end_matches("\nIEA|1|000000002"),
        &text[..text.find("SE|3").unwrap() + 2],
    ] {
        let error = err(cut);
        assert!(
            error.contains("truncated") || error.contains("ends too early"),
            "{cut:?}: {error}"
        );
    }
    // A tilde-terminated file without its last terminator stays truncated.
    assert!(err(&doc(SET).replace("IEA*1*000000001~\n", "IEA*1*000000001")).contains("truncated"));
    // A whole trailer whose number is not ISA13's is that error, not a truncation.
    assert_eq!(
        err(&text.replace("IEA|1|000000002", "IEA|1|000000009")),
        "segment 7 (IEA) at line 7: IEA02 control number '000000009' differs from ISA13 '000000002'"
    );
}

/// Lines padded with a space before their line break (OopFactory X12Parser's
/// `Example4_Adobe_ShrinkWrapped` purchase order, whose last line has no line break): the
/// character after ISA16 is a space, but the lines are the segments. A space could not end them:
/// it stands in ISA02 and ISA04.
#[test]
fn padded_lines_are_a_newline_delimited_file() {
    let padded = doc(SET).replace("~\n", " \r\n");
    let interchange = parse(padded.as_bytes()).unwrap();
    assert_eq!(interchange.separators.segment, '\n');
    assert_eq!(
        interchange,
        parse(doc(SET).replace('~', "").as_bytes()).unwrap()
    );
    // The spaces are padding, not the last element's data.
    let (_, set) = interchange.transaction_sets().next().unwrap();
    assert_eq!(set.segments[1].element(3), "PART>A");
    let trimmed = padded.trim_end();
    assert_eq!(parse(trimmed.as_bytes()).unwrap(), interchange);
    let error = err(&trimmed[..trimmed.len() - 1]);
    assert!(error.contains("truncated"), "{error}");
}

/// UTF-16 as Windows tools write "Unicode" text (OopFactory X12Parser's
/// `837P/5010/UnicodeExample`): with a byte-order mark or without, little- or big-endian.
#[test]
fn a_utf16_payload_is_decoded() {
    let text = doc(SET);
    let utf8 = parse(text.as_bytes()).unwrap();
    let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    let le_bom = [&[0xFF, 0xFE][..], &le].concat();
    let be_bom = [&[0xFE, 0xFF][..], &be].concat();
    for payload in [&le, &be, &le_bom, &be_bom] {
        assert_eq!(parse(payload).unwrap(), utf8);
        assert_eq!(parse_all(payload).unwrap(), vec![utf8.clone()]);
    }
    // An unpaired surrogate is named, with its offset.
    let mut broken = le.clone();
    broken.splice(20..20, [0x00, 0xD8, b'A', 0x00]);
    assert_eq!(
        parse(&broken).unwrap_err().to_string(),
        "payload: the payload is not valid UTF-16LE (as its first bytes show): the bytes at offset 20 are not a UTF-16LE character"
    );
}

#[test]
fn checks_ctt_totals_when_present() {
    let set = |ctt: &str| {
        let body = format!(
            "ST*846*0001~BIA*00*MM*A1*20260714~LIN**BP*A~QTY*17*5*EA~LIN**BP*B~QTY*17*2.5*EA~{ctt}SE*{}*0001~",
            if ctt.is_empty() { 7 } else { 8 }
        );
        let text = doc(&body);
        let interchange = parse(text.as_bytes()).unwrap();
        let (_, set) = interchange.transaction_sets().next().unwrap();
        let quantities = set.segments.iter().filter(|s| s.id == "QTY");
        check_totals(set, "LIN", quantities, 2)
    };
    assert!(set("").is_ok(), "no CTT: nothing to check");
    assert!(set("CTT*2~").is_ok());
    assert!(set("CTT*2*7.5~").is_ok());
    assert!(
        set("CTT*3~")
            .unwrap_err()
            .message()
            .contains("CTT01 counts 3 LIN lines, the transaction set has 2")
    );
    assert!(
        set("CTT*2*8~")
            .unwrap_err()
            .message()
            .contains("CTT02 hash total is 8, the QTY02 quantities add up to 7.5")
    );
}

#[test]
fn ctt02_totals_too_large_are_refused_not_overflowed() {
    let text = doc(
        "ST*856*0001~HL*1**S~HL*2*1*I~SN1**50000000000000000000000000000*EA~HL*3*1*I~\
         SN1**50000000000000000000000000000*EA~CTT*3*1~SE*8*0001~",
    );
    let interchange = parse(text.as_bytes()).unwrap();
    let (_, set) = interchange.transaction_sets().next().unwrap();
    let quantities = set.segments.iter().filter(|s| s.id == "SN1");
    assert_eq!(
        check_totals(set, "HL", quantities, 2)
            .unwrap_err()
            .message(),
        "segment 8 (SN1) at line 3, SN102 quantity: '50000000000000000000000000000' takes the \
         total of the SN102 quantities past the largest decimal number"
    );
}

#[test]
fn repeated_values_must_agree() {
    let text = doc(
        "ST*856*0001~DTM*011*20260714~N1*SF*A*92*S1~DTM*011*20260714~N1*SF*B*92*S1~\
         N1*SU*C*92*S2~N1*SU*D*92*S3~SE*8*0001~",
    );
    let interchange = parse(text.as_bytes()).unwrap();
    let (_, set) = interchange.transaction_sets().next().unwrap();
    let dates = agreed(&set.segments, "DTM*011 ship date", |s| {
        Ok(s.is("DTM").then(|| s.trimmed(2).to_owned()))
    })
    .unwrap()
    .unwrap();
    assert_eq!((dates.0.as_str(), dates.1.position), ("20260714", 4));
    assert_eq!(
        agreed_party(&set.segments, &["SF", "SU"]).unwrap(),
        Some("S1".to_owned())
    );
    assert_eq!(agreed_party(&set.segments, &["ST"]).unwrap(), None);
    assert_eq!(
        agreed_party(&set.segments, &["SU"]).unwrap_err().message(),
        "segment 9 (N1) at line 3: N1*SU party 'S3' differs from 'S2' at segment 8 (N1) at \
         line 3; a repeat must say the same"
    );
}

#[test]
fn ctt01_may_be_held_to_one_of_several_counts() {
    let text = doc("ST*856*0001~HL*1**S~HL*2*1*I~SN1**5*EA~HL*3*1*I~SN1**2*EA~CTT*2*7~SE*8*0001~");
    let interchange = parse(text.as_bytes()).unwrap();
    let (_, set) = interchange.transaction_sets().next().unwrap();
    let quantities = || set.segments.iter().filter(|s| s.id == "SN1");
    let sums = |n| [("the", quantities().take(n).collect::<Vec<_>>())];
    let counts = |all, items| [("HL", all), ("item-level HL", items)];
    assert!(check_totals_against(set, &counts(3, 2), &sums(2), 2).is_ok());
    assert!(check_totals_against(set, &counts(2, 1), &sums(2), 2).is_ok());
    assert_eq!(
        check_totals_against(set, &counts(3, 1), &sums(2), 2)
            .unwrap_err()
            .message(),
        "segment 9 (CTT) at line 3: CTT01 counts 2 lines, the transaction set has 3 HL lines and 1 item-level HL lines"
    );
    // The hash total is checked whichever count CTT01 matched.
    assert!(
        check_totals_against(set, &counts(3, 2), &sums(1), 2)
            .unwrap_err()
            .message()
            .contains("CTT02 hash total is 7, the SN102 quantities add up to 5")
    );
}

#[test]
fn ctt02_may_total_one_of_several_ways() {
    // Item 1 is packed in two packs (3 + 2): the standard's hash sums every SN1 (12), guides
    // where packs break an item down sum the items' (7).
    let body = |hash: &str| {
        format!(
            "ST*856*0001~HL*1**S~HL*2*1*I~SN1**5*EA~HL*3*2*P~SN1**3*EA~HL*4*2*P~SN1**2*EA~\
             HL*5*1*I~SN1**2*EA~CTT*5*{hash}~SE*12*0001~"
        )
    };
    let check = |hash: &str| {
        let text = doc(&body(hash));
        let interchange = parse(text.as_bytes()).unwrap();
        let (_, set) = interchange.transaction_sets().next().unwrap();
        let mut level = "";
        let items: Vec<_> = set
            .segments
            .iter()
            .filter(|s| {
                if s.is("HL") {
                    level = s.element(3);
                }
                s.is("SN1") && level == "I"
            })
            .collect();
        let all: Vec<_> = set.segments.iter().filter(|s| s.is("SN1")).collect();
        check_totals_against(
            set,
            &[("HL", 5)],
            &[("the item-level", items), ("all", all)],
            2,
        )
        .map_err(|e| e.message().to_owned())
    };
    assert_eq!(check("7"), Ok(()));
    assert_eq!(check("12"), Ok(()));
    assert_eq!(
        check("10").unwrap_err(),
        "segment 13 (CTT) at line 3: CTT02 hash total is 10, the item-level SN102 quantities \
         add up to 7 and all SN102 quantities add up to 12"
    );
}

#[test]
fn ctt02_may_be_an_x12_hash_total() {
    // Data element 347: values summed without regard to decimal points or signs, the left-most
    // digits truncated to ten: 24.5 + 6.25 is 245 + 625 = 870.
    let check = |quantities: [&str; 2], hash: &str| {
        let body = format!(
            "ST*846*0001~BIA*00*MM*A1*20260714~LIN**BP*A~QTY*17*{}*EA~LIN**BP*B~QTY*17*{}*EA~\
             CTT*2*{hash}~SE*8*0001~",
            quantities[0], quantities[1]
        );
        let text = doc(&body);
        let interchange = parse(text.as_bytes()).unwrap();
        let (_, set) = interchange.transaction_sets().next().unwrap();
        let quantities = set.segments.iter().filter(|s| s.id == "QTY");
        check_totals(set, "LIN", quantities, 2).map_err(|e| e.message().to_owned())
    };
    assert_eq!(check(["24.5", "6.25"], "870"), Ok(()));
    assert_eq!(check(["24.5", "6.25"], "30.75"), Ok(()));
    assert_eq!(check(["-1.5", "4"], "2.5"), Ok(()));
    assert_eq!(check(["-1.5", "4"], "19"), Ok(()));
    assert_eq!(
        check(["9999999999", "2"], "1"),
        Ok(()),
        "a hash total keeps its right-most ten digits"
    );
    // A decimal point in CTT02 is a sum, never a hash total.
    assert!(check(["24.5", "6.25"], "87.0").is_err());
    assert_eq!(
        check(["24.5", "6.25"], "871").unwrap_err(),
        "segment 9 (CTT) at line 3: CTT02 hash total is 871, the QTY02 quantities add up to \
         30.75 (870 as a hash total, without decimal points and signs)"
    );
}

#[test]
fn honours_dtm_time_codes_before_the_route_offset() {
    let body = "ST*856*0001~DTM*011*20260714*1530*ES~DTM*017*20260715*0800*LT~DTM*011*20260714*1530*UT~DTM*011*20260714*1530*03~SE*6*0001~";
    let text = doc(body);
    let interchange = parse(text.as_bytes()).unwrap();
    let (_, set) = interchange.transaction_sets().next().unwrap();
    let at: Vec<String> = set.segments[..4]
        .iter()
        .map(|dtm| dtm_timestamp(dtm, "+01:00").unwrap())
        .collect();
    assert_eq!(
        at,
        [
            "2026-07-14T15:30:00-05:00",
            "2026-07-15T08:00:00+01:00",
            "2026-07-14T15:30:00Z",
            "2026-07-14T15:30:00+03:00"
        ]
    );
    assert_eq!(
        time_zone("ET", "+01:00"),
        Ok("+01:00"),
        "ET does not say standard or daylight: the route's offset"
    );
    assert_eq!(time_code_offset("24"), Some("-01:00"));
}

#[test]
fn every_north_american_time_code_has_its_own_offset() {
    // Element 623: Alaska is AS/AD, Atlantic TS/TD, Newfoundland NS/ND.
    let zones = [
        ("AS", "-09:00"),
        ("AD", "-08:00"),
        ("TS", "-04:00"),
        ("TD", "-03:00"),
        ("NS", "-03:30"),
        ("ND", "-02:30"),
        ("HS", "-10:00"),
        ("HD", "-09:00"),
        ("ES", "-05:00"),
        ("ED", "-04:00"),
        ("PS", "-08:00"),
        ("PD", "-07:00"),
    ];
    for (code, offset) in zones {
        assert_eq!(time_zone(code, "+01:00"), Ok(offset), "{code}");
    }
    let unknown = time_zone("26", "+01:00").unwrap_err();
    assert!(unknown.contains("time code '26'"), "{unknown}");
    assert!(time_zone("ZZ", "+01:00").is_err());
}

#[test]
fn a_dtm_may_give_its_date_and_time_in_dtm05_and_dtm06() {
    let body = "ST*856*0001~DTM*011****DT*201112061045~DTM*011****D8*20111206~DTM*011*20111206*1000*AS~DTM*011****RD8*20111206-20111208~DTM*011*20111206*1000*QQ~SE*7*0001~";
    let text = doc(body);
    let interchange = parse(text.as_bytes()).unwrap();
    let (_, set) = interchange.transaction_sets().next().unwrap();
    let at: Vec<Result<String, String>> = set.segments[..5]
        .iter()
        .map(|dtm| dtm_timestamp(dtm, "+01:00"))
        .collect();
    assert_eq!(at[0].as_deref(), Ok("2011-12-06T10:45:00+01:00"));
    assert_eq!(at[1].as_deref(), Ok("2011-12-06T00:00:00+01:00"));
    assert_eq!(at[2].as_deref(), Ok("2011-12-06T10:00:00-09:00"));
    assert!(at[3].as_ref().unwrap_err().contains("'RD8'"), "{at:?}");
    assert!(at[4].as_ref().unwrap_err().contains("'QQ'"), "{at:?}");
}

/// A payload with `n` interchanges back to back, control numbers 1 to `n`.
fn batch(n: u32, body: &str) -> String {
    (1..=n)
        .map(|i| {
            doc(body)
                .replace("000000001", &format!("{i:09}"))
                .replace("*7*X*", &format!("*{i}*X*"))
                .replace("GE*1*7~", &format!("GE*1*{i}~"))
        })
        .collect()
}

#[test]
fn parse_all_reads_interchanges_back_to_back() {
    let text = batch(3, SET);
    let all = parse_all(text.as_bytes()).unwrap();
    assert_eq!(
        all.iter()
            .map(|i| i.control_number.as_ref())
            .collect::<Vec<_>>(),
        ["000000001", "000000002", "000000003"]
    );
    assert!(all.iter().all(|i| i.transaction_sets().count() == 1));
    // Newline-delimited, the last trailer without a line break after it.
    let lines = batch(2, SET).replace('~', "").trim_end().to_owned();
    assert_eq!(parse_all(lines.as_bytes()).unwrap().len(), 2);
    // One interchange is one.
    assert_eq!(parse_all(doc(SET).as_bytes()).unwrap().len(), 1);
}

#[test]
fn one_interchange_reader_names_the_batch_reader() {
    let text = batch(2, SET);
    assert_eq!(
        err(&text),
        "segment 9 (ISA) at line 9: a second interchange follows the IEA trailer; this reader takes one (x12::parse_all reads them all)"
    );
}

#[test]
fn a_batch_with_an_error_anywhere_fails_whole() {
    let text = batch(2, SET).replacen("SE*4*0001~", "SE*5*0001~", 2);
    let text = text.replacen("SE*5*0001~", "SE*4*0001~", 1);
    assert_eq!(
        parse_all(text.as_bytes()).unwrap_err().to_string(),
        "segment 14 (SE) at line 14: SE01 counts 5 segments, the transaction set 856 0001 has 4 (ST to SE)"
    );
    let other = format!("{}{}", doc(SET), doc(SET).replace('>', "^"));
    assert_eq!(
        parse_all(other.as_bytes()).unwrap_err().to_string(),
        "segment 9 (ISA) at line 9: interchange 2 does not use the first interchange's separators (element '*', component '>', terminator '~'); send it as a message of its own"
    );
    // Another element separator (EdiFabric's `X12_810_00204_MultipleInvalidInterchanges`):
    // its header is no segment of the first one's syntax, and is named for what it is.
    let other = format!("{}{}", doc(SET), doc(SET).replace('*', "|"));
    assert_eq!(
        parse_all(other.as_bytes()).unwrap_err().to_string(),
        "segment 9 at line 9: a second interchange starts here with element separator '|', the first uses '*': a batch keeps the first interchange's separators; send it as a message of its own"
    );
    // Another segment terminator: line breaks after the first one's `~` (a file of each
    // partner's gateway glued together), or `~` after a newline-delimited first one. Named for
    // what it is, not as a truncated interchange.
    let second = batch(2, SET)[doc(SET).len()..].to_owned();
    let lines = format!("{}{}", doc(SET), second.replace("~\n", "\n"));
    assert_eq!(
        parse_all(lines.as_bytes()).unwrap_err().to_string(),
        "segment 9 (ISA) at line 9: a further interchange starts here with segment terminator 'line break', the first uses '~': a batch keeps the first interchange's separators; send it as a message of its own"
    );
    let tilde_after_lines = format!("{}{second}", doc(SET).replace("~\n", "\n"));
    assert_eq!(
        parse_all(tilde_after_lines.as_bytes())
            .unwrap_err()
            .to_string(),
        "segment 9 (ISA) at line 9: a further interchange starts here with segment terminator '~', the first uses 'line break': a batch keeps the first interchange's separators; send it as a message of its own"
    );
    // A hard-wrapped batch whose line break falls right after the second ISA16 is a wrap: the
    // terminator follows it.
    let wrapped = format!("{}{}", doc(SET), second.replacen(">~\n", ">\n~\n", 1));
    assert_eq!(parse_all(wrapped.as_bytes()).unwrap().len(), 2);
    let twice = format!("{}{}", doc(SET), doc(SET));
    assert_eq!(
        parse_all(twice.as_bytes()).unwrap_err().to_string(),
        "segment 9 (ISA) at line 9: interchange 2 repeats the control number 000000001 of interchange 1 from the same sender SENDER: a duplicate"
    );
    let trailing = format!("{}GS*X~", batch(2, SET));
    assert_eq!(
        parse_all(trailing.as_bytes()).unwrap_err().to_string(),
        "segment 17 (GS) at line 17: segment after the IEA trailer"
    );
}

#[test]
fn interchange_service_segments_are_kept_apart_from_the_groups() {
    let text = doc(SET).replace(
        "GS*SH*",
        "ISB*1~\nISE*200601*0515*04~\nTA1*000000009*260713*1200*A*000~\nGS*SH*",
    );
    let interchange = parse(text.as_bytes()).unwrap();
    assert_eq!(
        interchange
            .service
            .iter()
            .map(|s| s.id.as_ref())
            .collect::<Vec<_>>(),
        ["ISB", "ISE", "TA1"]
    );
    assert_eq!(interchange.transaction_sets().count(), 1);
    // Inside a group they are not in their place.
    let misplaced = doc(&format!("ISB*1~\n{SET}"));
    assert_eq!(
        err(&misplaced),
        "segment 3 (ISB) at line 3: expected ST or the GE trailer of the group opened at segment 2 (GS) at line 2, found ISB"
    );
}

#[test]
fn the_first_product_id_is_one_that_names_the_item() {
    let body = "ST*856*0001~LIN*1*PO*4500099*VP*VEND-77~LIN*2*LT*L1*SN*S1*UP*0123~LIN*3*PO*1*LT*2~SE*5*0001~";
    let text = doc(body);
    let interchange = parse(text.as_bytes()).unwrap();
    let (_, set) = interchange.transaction_sets().next().unwrap();
    let ids: Vec<Option<String>> = set.segments.iter().map(Segment::product_id).collect();
    assert_eq!(
        ids,
        [Some("VEND-77".to_owned()), Some("0123".to_owned()), None]
    );
    assert!(is_item_qualifier("BP") && is_item_qualifier("UK"));
    assert!(!is_item_qualifier("PO") && !is_item_qualifier(" LT "));
}

/// Asserts that `result` refuses the ship notice as `what` ("a cancellation (01)").
fn refused_as(result: Result<(), crate::MapError>, what: &str) {
    let error = result.unwrap_err();
    assert_eq!(error.kind(), "unsupported-document");
    assert!(
        error
            .message()
            .contains(&format!("BSN01: the ship notice is {what};")),
        "{}",
        error.message()
    );
}

/// `check` of the `BSN` of a ship notice whose purpose (BSN01) is `purpose`.
fn with_bsn<T>(purpose: &str, check: impl FnOnce(&Segment<'_>) -> T) -> T {
    let text = doc(&format!(
        "ST*856*0001~BSN*{purpose}*SHIP1*20260714*1200~SE*3*0001~"
    ));
    let interchange = parse(text.as_bytes()).unwrap();
    let (_, set) = interchange.transaction_sets().next().unwrap();
    check(&set.segments[0])
}

#[test]
fn refuses_a_document_that_withdraws_an_earlier_one() {
    let check =
        |purpose: &str| with_bsn(purpose, |bsn| refuse_withdrawn(bsn, 1, "the ship notice"));
    assert!(check("00").is_ok(), "original");
    assert!(check("05").is_ok(), "replace");
    for (purpose, what) in [("01", "a cancellation (01)"), ("03", "a deletion (03)")] {
        refused_as(check(purpose), what);
    }
}

#[test]
fn a_document_of_goods_that_move_must_be_an_original() {
    let check = |purpose: &str| {
        with_bsn(purpose, |bsn| {
            refuse_not_original(bsn, 1, "the ship notice")
        })
    };
    // 14: advance notification, as suppliers send their 856s.
    for purpose in ["00", "14", "06"] {
        assert!(check(purpose).is_ok(), "{purpose}");
    }
    for (purpose, what) in [
        ("01", "a cancellation (01)"),
        ("04", "a change (04)"),
        ("05", "a replacement (05)"),
        ("07", "a duplicate (07)"),
        ("18", "a reissue (18)"),
        ("22", "an information copy (22)"),
    ] {
        refused_as(check(purpose), what);
    }
}

#[test]
fn refuses_a_transaction_set_number_repeated_in_its_group() {
    let text =
        doc("ST*856*0001~BSN*00*A*20260714*1200~SE*3*0001~ST*856*1~BSN*00*B*20260714*1200~SE*3*1~");
    assert_eq!(
        err(&text),
        "segment 6 (ST) at line 3: ST02 control number '1' repeats that of transaction set 856 0001 \
         (segment 3) in the same group: a set's number is unique in its group"
    );
    // The same number in another group names another set.
    let two_groups = format!(
        "{ISA}\nGS*SH*S*R*20260714*1200*7*X*004010~ST*856*0001~SE*2*0001~GE*1*7~\
         GS*SH*S*R*20260714*1200*8*X*004010~ST*856*0001~SE*2*0001~GE*1*8~IEA*2*000000001~\n"
    );
    assert_eq!(parse(two_groups.as_bytes()).unwrap().groups.len(), 2);
}

#[test]
fn a_hash_total_over_no_quantity_says_so_plainly() {
    let text = doc("ST*856*0001~HL*1**S~CTT*1*5~SE*4*0001~");
    let interchange = parse(text.as_bytes()).unwrap();
    let (_, set) = interchange.transaction_sets().next().unwrap();
    let none = set.segments.iter().filter(|s| s.is("SN1"));
    assert_eq!(
        check_totals(set, "HL", none, 2).unwrap_err().message(),
        "segment 5 (CTT) at line 3: CTT02 hash total is 5, the quantities add up to 0"
    );
}

#[test]
fn refuses_a_group_number_repeated_in_its_interchange() {
    let text = format!(
        "{ISA}\nGS*SH*S*R*20260714*1200*7*X*004010~ST*856*0001~SE*2*0001~GE*1*7~\
         GS*SH*S*R*20260714*1200*0007*X*004010~ST*856*0002~SE*2*0002~GE*1*0007~IEA*2*000000001~\n"
    );
    assert_eq!(
        err(&text),
        "segment 6 (GS) at line 2: GS06 control number '0007' repeats that of group SH 7 (segment \
         2) in the same interchange: a group's number is unique in its interchange"
    );
}
