//! The workload every arm maps: a legacy MES shift report of about 200 bytes that becomes two
//! canonical events (a production completion and a material consumption), and an X12 856 ship
//! notice of about 2 KB, built from the plugin's real fixture, that becomes one shipment-notice.
//! The two alternate. Each message carries its index in its source transaction ids (and in a
//! `Bench-Index` header), so the collector finds which raw message an event completes.

use bytes::Bytes;

/// Sites (plants) the messages are spread over: one raw subject per site and format, so the
/// ordered lanes of a service have independent subjects to run in parallel.
pub const SITES: usize = 8;

/// The route subject of the shift reports.
pub const SHIFT_SUBJECTS: &str = "raw.mes.*.shift-report";
/// The route subject of the ship notices.
pub const ASN_SUBJECTS: &str = "raw.edi.*.856";

/// The header naming the message index (for the passthrough arm, whose output is the input).
pub const INDEX_HEADER: &str = "Bench-Index";

/// True when message `index` is a shift report (else a ship notice).
pub fn is_shift_report(index: u64) -> bool {
    index.is_multiple_of(2)
}

/// How many canonical events message `index` becomes.
pub fn events_of(index: u64) -> u8 {
    if is_shift_report(index) { 2 } else { 1 }
}

/// The raw subject of message `index`.
pub fn subject(index: u64) -> String {
    let site = (index / 2) % SITES as u64;
    if is_shift_report(index) {
        format!("raw.mes.plant{site}.shift-report")
    } else {
        format!("raw.edi.plant{site}.856")
    }
}

/// The payload of message `index`.
pub fn payload(index: u64) -> Bytes {
    if is_shift_report(index) {
        shift_report(index).into()
    } else {
        ship_notice(index).into()
    }
}

/// A SHIFTRPT v02 report with one production and one consumption record.
pub fn shift_report(index: u64) -> String {
    format!(
        "HDR|SHIFTRPT|02|1000|L01|A|20260302|+01:00|K. Weber\n\
         PRD|000101|T{index:09}P|WO-4711|0010|MAT-100|LOT-2603-01|000125000|000002000|PC|20260302|061500|FG-01\n\
         MAT|000102|T{index:09}M|WO-4711|0010|RM-200|L-889|000012500|KG|20260302|062000|RM-STG\n\
         TRL|000002\n"
    )
}

/// An 856 ship notice: the envelope, header and parties of the plugin's fixture `856.edi`, with
/// twelve item levels (lots, purchase order, descriptions) instead of two; the interchange
/// control number is the message index.
pub fn ship_notice(index: u64) -> String {
    let mut body = vec![
        "ST*856*0008".to_owned(),
        "BSN*14*829716*20111206*142428*0002".to_owned(),
        "HL*1**S".to_owned(),
        "TD1*PCS*2****A3*60.310*LB".to_owned(),
        "TD5**2*XXXX**XXXX".to_owned(),
        "REF*BM*999999-001".to_owned(),
        "REF*CN*5787970539".to_owned(),
        "DTM*011*20111206".to_owned(),
        "N1*SH*1 EDI SOURCE".to_owned(),
        "N3*31875 SOLON RD".to_owned(),
        "N4*SOLON*OH*44139".to_owned(),
        "N1*OB*XYZ RETAIL".to_owned(),
        "N3*P O BOX 9999999".to_owned(),
        "N4*ATLANTA*GA*31139-0020**SN*9999".to_owned(),
        "N1*SF*1 EDI SOURCE".to_owned(),
        "N3*31875 SOLON ROAD".to_owned(),
        "N4*SOLON*OH*44139".to_owned(),
        "HL*2*1*O".to_owned(),
        "PRF*99999817***20111205".to_owned(),
    ];
    let items = 12;
    let mut total = 0;
    for n in 1..=items {
        let quantity = 6 * n;
        total += quantity;
        body.push(format!("HL*{}*2*I", n + 2));
        body.push(format!(
            "LIN*{n}*VP*{:05}D*UP*9999993{:05}",
            87000 + n,
            10000 + n
        ));
        body.push(format!("SN1*{n}*{quantity}*EA"));
        body.push(format!("PO4*1*{quantity}*EA"));
        body.push(format!("PID*F****WIDGET MODEL {n:02} BLUE"));
        body.push(format!("REF*LT*LOT-2611-{n:02}"));
    }
    body.push(format!("CTT*{}*{total}", items + 2));
    body.push(format!("SE*{}*0008", body.len() + 1));
    let mut text = format!(
        "ISA*01*0000000000*01*ABCCO     *12*4405197800     *01*999999999      *111206*1719*-*00406*{index:09}*0*P*>~\
         GS*SH*4405197800*999999999*20111206*1045*49*X*004060~"
    );
    for segment in body {
        text.push_str(&segment);
        text.push('~');
    }
    text.push_str(&format!("GE*1*49~IEA*1*{index:09}~"));
    text
}

/// The index of the raw message an output message belongs to: from a CloudEvent's
/// `sourcetransaction` (`T<index>P`/`T<index>M` for shift reports; for ship notices the
/// interchange control number, `12/4405197800:<index>:49:0008`), else from the `Bench-Index` header.
pub fn index_of(payload: &[u8], headers: Option<&async_nats::HeaderMap>) -> Option<u64> {
    const KEY: &[u8] = b"\"sourcetransaction\":\"";
    if let Some(at) = find(payload, KEY) {
        let rest = &payload[at + KEY.len()..];
        let value = std::str::from_utf8(&rest[..find(rest, b"\"")?]).ok()?;
        let digits = match value.strip_prefix('T') {
            Some(record) => record.get(..9)?,
            None => value
                .split(':')
                .find(|part| part.len() == 9 && part.bytes().all(|b| b.is_ascii_digit()))?,
        };
        return digits.parse().ok();
    }
    millrace::transport::header_value(headers, INDEX_HEADER)?
        .parse()
        .ok()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sizes_are_realistic() {
        let shift = shift_report(7).len();
        let asn = ship_notice(7).len();
        assert!(
            (180..=300).contains(&shift),
            "shift report is {shift} bytes"
        );
        assert!((1800..=2300).contains(&asn), "856 is {asn} bytes");
    }

    #[test]
    fn finds_the_index() {
        let event = br#"{"id":"x","sourcetransaction":"T000000042P","data":{}}"#;
        assert_eq!(index_of(event, None), Some(42));
        let asn = br#"{"sourcetransaction":"12/4405197800:000000043:49:0008"}"#;
        assert_eq!(index_of(asn, None), Some(43));
    }
}
