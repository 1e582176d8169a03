//! The shift report as a whole: header, detail records and trailer, mapped to canonical events.

use std::collections::HashMap;

use millrace_sdk::prelude::*;
use millrace_sdk::timestamp::{Date, UtcOffset};

use crate::record::Record;
use crate::units;

/// The format identifier and the one version this plugin maps.
const FORMAT_ID: &str = "SHIFTRPT";
const FORMAT_VERSION: &str = "02";

/// The report header: who, where and when the report is for (borrowed from the payload).
struct Header<'a> {
    plant: &'a str,
    line: &'a str,
    shift: &'a str,
    shift_date: Date,
    offset: UtcOffset,
    supervisor: &'a str,
    site: String,
}

/// Maps a whole shift report, or fails on its first problem: never a partial mapping.
pub(crate) fn map_report(payload: &[u8]) -> Result<Vec<CanonicalEvent>, MapError> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Err(MapError::malformed("empty payload"));
    }
    check_encoding(payload)?;
    let text = text::latin1(payload);
    // Blank lines, the end-of-file mark (Ctrl-Z) and NUL padding a DOS-era system or a
    // fixed-block transfer writes after the last record, in any mix and order (a Ctrl-Z line
    // ended again by a transfer's CRLF), are no record.
    let text =
        text.trim_end_matches(|c: char| c == '\u{1a}' || c == '\0' || c.is_ascii_whitespace());
    check_line_ends(text)?;
    let lines: Vec<&str> = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .collect();

    let mut numbered = lines
        .iter()
        .enumerate()
        .map(|(index, text)| (index + 1, *text));
    let header = match numbered.next() {
        Some((line, text)) => parse_header(&Record::split(line, text)?)?,
        None => return Err(MapError::malformed("empty payload")),
    };
    log::debug(
        "mapping shift report",
        &[
            ("plant", header.plant),
            ("line", header.line),
            ("shift", header.shift),
            ("supervisor", header.supervisor),
        ],
    );

    let mut events = Vec::new();
    // The line of each record sequence number and transaction id seen: a record is one posting,
    // and a repeat of one would be published (and its stock moved) twice.
    let mut sequences: HashMap<u64, usize> = HashMap::new();
    let mut transactions: HashMap<String, usize> = HashMap::new();
    let mut last_line = 1;
    for (line, text) in numbered {
        last_line = line;
        let record = Record::split(line, text)?;
        let event = match record.record_type() {
            "PRD" => production(&record, &header)?,
            "MAT" => consumption(&record, &header)?,
            "WOS" => status(&record, &header)?,
            "TRL" => {
                check_trailer(&record, events.len())?;
                if line != lines.len() {
                    return Err(MapError::malformed(format!(
                        "line {}: record after the TRL trailer",
                        line + 1
                    )));
                }
                return Ok(events);
            }
            "HDR" => return Err(record.error("record-type", "second HDR header in one report")),
            other => {
                return Err(record.error("record-type", format!("unknown record type '{other}'")));
            }
        };
        if let Some(sequence) = event.source_sequence
            && let Some(earlier) = sequences.insert(sequence, line)
        {
            return Err(record.error(
                "seq",
                format!(
                    "record sequence number '{}' is the one of line {earlier} already; each \
                     record is posted once",
                    record.raw(1)
                ),
            ));
        }
        if let Some(transaction) = &event.source_transaction
            && let Some(earlier) = transactions.insert(transaction.clone(), line)
        {
            return Err(record.error(
                "txn-id",
                format!(
                    "transaction id '{transaction}' is the one of line {earlier} already; each \
                     record is posted once"
                ),
            ));
        }
        events.push(event);
    }
    Err(MapError::malformed(format!(
        "line {last_line}: the report ends without a TRL trailer record"
    )))
}

/// Refuses a UTF-16 file (a byte-order mark, or the NUL beside every ASCII letter of `HDR`):
/// read as Latin-1 it would be a header of letters and NULs.
fn check_encoding(payload: &[u8]) -> Result<(), MapError> {
    let order = match payload {
        [0xFF, 0xFE, ..] | [b'H', 0, b'D', 0, ..] => "little-endian",
        [0xFE, 0xFF, ..] | [0, b'H', 0, b'D', ..] => "big-endian",
        _ => return Ok(()),
    };
    Err(MapError::malformed(format!(
        "line 1: the file is UTF-16 ({order}); a shift report is ISO-8859-1 (Latin-1) text, \
         one byte a character: have the MES (or the transfer) write it so"
    )))
}

/// Refuses a file whose lines end with CR alone (old Mac style), seen as a lone CR in the
/// header line: it would read as one header line of many fields.
fn check_line_ends(text: &str) -> Result<(), MapError> {
    let header = text.split('\n').next().unwrap_or_default();
    let header = header.strip_suffix('\r').unwrap_or(header);
    if header.contains('\r') {
        return Err(MapError::malformed(
            "line 1: the header is followed by a carriage return (CR) without a line feed; lines \
             must end with LF or CRLF, and a file whose lines end with CR alone reads as one line",
        ));
    }
    Ok(())
}

fn parse_header<'a>(record: &Record<'a>) -> Result<Header<'a>, MapError> {
    let record_type = record.record_type();
    if record_type != "HDR" {
        return Err(record.error(
            "record-type",
            format!("expected the HDR header, found '{record_type}'"),
        ));
    }
    // Format and version before the field count: another version may have another layout.
    if record.field_count() < 3 {
        record.expect_fields("HDR", 9)?;
    }
    let format = record.raw(1);
    if format != FORMAT_ID {
        return Err(MapError::unsupported(format!(
            "line {}, field format-id: '{format}' is not a {FORMAT_ID} shift report",
            record.line
        )));
    }
    let version = record.raw(2);
    if version != FORMAT_VERSION {
        return Err(MapError::unsupported(format!(
            "line {}, field format-version: version '{version}' is not supported, only {FORMAT_VERSION}",
            record.line
        )));
    }
    record.expect_fields("HDR", 9)?;
    let plant = record.id(3, "plant", 8)?;
    if !plant
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Err(record.error("plant", format!("'{plant}' may hold only A-Z and 0-9")));
    }
    let line = record.id(4, "line", 10)?;
    let shift = record.id(5, "shift", 1)?;
    if !shift.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(record.error("shift", format!("'{shift}' is not a shift letter A-Z")));
    }
    let shift_date = record.date(6, "shift-date")?;
    let offset_text = record.raw(7);
    let offset = timestamp::parse_offset(offset_text)
        .ok()
        .filter(|_| offset_text.len() == 6)
        .ok_or_else(|| {
            record.error(
                "utc-offset",
                format!("'{offset_text}' is not a UTC offset of the form +HH:MM"),
            )
        })?;
    // Civil time zones run from -12:00 to +14:00; beyond ±14:00 is no plant's offset.
    if offset.whole_minutes().unsigned_abs() > 14 * 60 {
        return Err(record.error(
            "utc-offset",
            format!("'{offset_text}' is beyond -14:00..+14:00, no place's offset from UTC"),
        ));
    }
    let supervisor = record.free_text(8, "supervisor", 40)?;
    Ok(Header {
        site: site_for(plant)?,
        plant,
        line,
        shift,
        shift_date,
        offset,
        supervisor,
    })
}

/// The canonical site of a plant: config `site.<plant>`, else config `site`, else the plant code.
fn site_for(plant: &str) -> Result<String, MapError> {
    let key = format!("site.{plant}");
    let (site, source) = match config::get(&key) {
        Some(site) => (site, key),
        None => match config::get("site") {
            Some(site) => (site, "site".to_owned()),
            None => return Ok(plant.to_owned()),
        },
    };
    config::checked_site(&source, site)
}

/// The fields every detail record starts with, and its timestamp.
/// What every detail record has, borrowed from its line.
struct Common<'a> {
    sequence: u64,
    transaction: &'a str,
    work_order: &'a str,
    operation: Option<&'a str>,
}

fn common<'a>(record: &Record<'a>) -> Result<Common<'a>, MapError> {
    let sequence = record.sequence(1)?;
    let transaction = record.id(2, "txn-id", 20)?;
    let work_order = record.id(3, "work-order", 20)?;
    let operation = record.optional_id(4, "operation", 4)?;
    if let Some(op) = &operation
        && (op.len() != 4 || !op.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(record.error("operation", format!("'{op}' is not a 4-digit operation")));
    }
    Ok(Common {
        sequence,
        transaction,
        work_order,
        operation,
    })
}

/// The event's time: the record's local date and time at the header's UTC offset. The date
/// must be the shift date or the next day (a night shift runs past midnight).
fn occurred_at(
    record: &Record<'_>,
    header: &Header<'_>,
    date_index: usize,
) -> Result<String, MapError> {
    let date = record.date(date_index, "date")?;
    let time = record.time(date_index + 1, "time")?;
    if date != header.shift_date && Some(date) != header.shift_date.next_day() {
        return Err(MapError::rejected(format!(
            "line {}, field date: {} is outside shift {} of {} (the shift date or the next day)",
            record.line,
            timestamp::full_date(date),
            header.shift,
            timestamp::full_date(header.shift_date)
        )));
    }
    timestamp::rfc3339(date, time, header.offset).malformed_with(|| record.at("date"))
}

fn unit(record: &Record<'_>, index: usize) -> Result<&'static str, MapError> {
    let code = record.raw(index);
    if code.is_empty() {
        return Err(record.error("unit", "is empty"));
    }
    units::rec20(code).ok_or_else(|| record.error("unit", format!("unknown unit code '{code}'")))
}

fn event(
    common: &Common<'_>,
    header: &Header<'_>,
    occurred_at: String,
    data: EventData,
) -> CanonicalEvent {
    CanonicalEvent {
        site: header.site.clone(),
        occurred_at,
        source_sequence: Some(common.sequence),
        source_transaction: Some(common.transaction.to_owned()),
        data,
    }
}

/// `PRD`: a production completion.
fn production(record: &Record<'_>, header: &Header<'_>) -> Result<CanonicalEvent, MapError> {
    record.expect_fields("PRD", 13)?;
    let common = common(record)?;
    let item = record.id(5, "item", 30)?.to_owned();
    let lot = record.optional_id(6, "lot", 20)?.map(str::to_owned);
    let good = record.quantity(7, "good-qty")?;
    let scrap = record.quantity(8, "scrap-qty")?;
    if good.is_zero() && scrap.is_zero() {
        return Err(MapError::rejected(format!(
            "line {}, field good-qty: a completion of zero good and zero scrap is not posted",
            record.line
        )));
    }
    let uom = unit(record, 9)?;
    let at = occurred_at(record, header, 10)?;
    let location = record.optional_id(12, "location", 10)?.map(str::to_owned);
    let data = EventData::ProductionCompletion(ProductionCompletion {
        work_order: common.work_order.to_owned(),
        operation: common.operation.map(str::to_owned),
        item,
        lot,
        good_quantity: decimal::quantity(good, uom),
        scrap_quantity: decimal::quantity(scrap, uom),
        location,
    });
    Ok(event(&common, header, at, data))
}

/// `MAT`: a material consumption.
fn consumption(record: &Record<'_>, header: &Header<'_>) -> Result<CanonicalEvent, MapError> {
    record.expect_fields("MAT", 12)?;
    let common = common(record)?;
    let item = record.id(5, "item", 30)?.to_owned();
    let lot = record.optional_id(6, "lot", 20)?.map(str::to_owned);
    let quantity = record.quantity(7, "qty")?;
    if quantity.is_zero() {
        return Err(MapError::rejected(format!(
            "line {}, field qty: a consumption of zero is not posted",
            record.line
        )));
    }
    let uom = unit(record, 8)?;
    let at = occurred_at(record, header, 9)?;
    let location = record.optional_id(11, "location", 10)?.map(str::to_owned);
    let data = EventData::MaterialConsumption(MaterialConsumption {
        work_order: common.work_order.to_owned(),
        operation: common.operation.map(str::to_owned),
        item,
        lot,
        quantity: decimal::quantity(quantity, uom),
        location,
    });
    Ok(event(&common, header, at, data))
}

/// `WOS`: a work-order (or operation) status change.
fn status(record: &Record<'_>, header: &Header<'_>) -> Result<CanonicalEvent, MapError> {
    record.expect_fields("WOS", 14)?;
    let common = common(record)?;
    let code = record.raw(5);
    let state = state(code)
        .ok_or_else(|| record.error("status", format!("unknown status code '{code}'")))?;
    let item = record.optional_id(6, "item", 30)?.map(str::to_owned);
    let planned = record.optional_quantity(7, "planned-qty")?;
    let completed = record.optional_quantity(8, "completed-qty")?;
    let scrapped = record.optional_quantity(9, "scrapped-qty")?;
    let has_quantity = planned.is_some() || completed.is_some() || scrapped.is_some();
    // The unit may be left empty when the record carries no quantity.
    let uom = if has_quantity || !record.raw(10).is_empty() {
        Some(unit(record, 10)?)
    } else {
        None
    };
    let quantity = |amount: Option<Decimal>| {
        amount
            .zip(uom)
            .map(|(amount, uom)| decimal::quantity(amount, uom))
    };
    let at = occurred_at(record, header, 11)?;
    let reason = record.free_text(13, "reason", 60)?;
    if !reason.is_empty() {
        log::info(
            "work order status reason",
            &[
                ("work_order", common.work_order),
                ("status", code),
                ("reason", reason),
            ],
        );
    }
    let data = EventData::WorkOrderStatus(WorkOrderStatus {
        work_order: common.work_order.to_owned(),
        operation: common.operation.map(str::to_owned),
        state,
        item,
        planned_quantity: quantity(planned),
        completed_quantity: quantity(completed),
        scrapped_quantity: quantity(scrapped),
    });
    Ok(event(&common, header, at, data))
}

/// The MES status codes.
fn state(code: &str) -> Option<WorkOrderState> {
    Some(match code {
        "REL" => WorkOrderState::Released,
        "STA" => WorkOrderState::Started,
        "INT" => WorkOrderState::Paused,
        "FIN" => WorkOrderState::Completed,
        "CLS" => WorkOrderState::Closed,
        "CAN" => WorkOrderState::Cancelled,
        "HLD" => WorkOrderState::Held,
        _ => return None,
    })
}

/// `TRL`: the trailer counts the detail records (PRD, MAT, WOS) of the report.
fn check_trailer(record: &Record<'_>, details: usize) -> Result<(), MapError> {
    record.expect_fields("TRL", 2)?;
    let value = record.raw(1);
    if value.len() != 6 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(record.error("detail-count", format!("'{value}' is not a 6-digit number")));
    }
    let counted: usize = value.parse().malformed_with(|| record.at("detail-count"))?;
    if counted == details {
        Ok(())
    } else {
        Err(record.error(
            "detail-count",
            format!("the trailer counts {counted} detail records, the report has {details}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HDR: &str = "HDR|SHIFTRPT|02|1000|L01|A|20260302|+01:00|";
    const MAT: &str = "MAT|000001|T1|WO1|0010|M1||000001000|KG|20260302|061500|";

    fn error(payload: &str) -> String {
        config::set_for_tests([("site", "PLANT1")]);
        let error = map_report(payload.as_bytes()).unwrap_err();
        format!("{}: {}", error.kind(), error.message())
    }

    #[test]
    fn structural_errors_name_the_line() {
        assert_eq!(
            error("HDR|SHIFTRPT\n"),
            "malformed-input: line 1: HDR record has 2 fields, expected 9"
        );
        assert_eq!(
            error(&format!("{HDR}\n{MAT}\nTRL|000001\n{MAT}\n")),
            "malformed-input: line 4: record after the TRL trailer"
        );
        assert_eq!(
            error(&format!("{HDR}\n\n{MAT}\nTRL|000001\n")),
            "malformed-input: line 2: empty line"
        );
        // Blank lines after the trailer end the file, they are no record after it.
        config::set_for_tests([("site", "PLANT1")]);
        let events = map_report(format!("{HDR}\n{MAT}\nTRL|000001\n\r\n  \n").as_bytes()).unwrap();
        assert_eq!(events.len(), 1);
        // So do a DOS end-of-file mark and NUL padding, on their own line or the trailer's.
        for end in [
            "\r\n\u{1a}",
            "\u{1a}",
            "\r\n\0\0\0\0",
            "\r\n\u{1a}\0\0",
            "\r\n\u{1a}\r\n",
            "\n\u{1a}\n",
            "\r\n\0\0\0\r\n",
            "\r\n\r\n\0\u{1a}\r\n\r\n",
        ] {
            config::set_for_tests([("site", "PLANT1")]);
            let report = format!("{HDR}\r\n{MAT}\r\nTRL|000001{end}");
            assert_eq!(map_report(report.as_bytes()).unwrap().len(), 1, "{end:?}");
        }
        assert_eq!(
            error(&format!("{MAT}\nTRL|000001\n")),
            "malformed-input: line 1, field record-type: expected the HDR header, found 'MAT'"
        );
        assert_eq!(
            error(&format!("{HDR}\n{HDR}\nTRL|000000\n")),
            "malformed-input: line 2, field record-type: second HDR header in one report"
        );
        assert_eq!(
            error("HDR|SHIFTRPT|02|1000|L01|A|20260302|+0100|\nTRL|000000\n"),
            "malformed-input: line 1, field utc-offset: '+0100' is not a UTC offset of the form +HH:MM"
        );
        assert_eq!(
            error(&format!(
                "{HDR}\nWOS|000001|T1|WO1||DONE||||||20260302|061500|\nTRL|000001"
            )),
            "malformed-input: line 2, field status: unknown status code 'DONE'"
        );
        assert_eq!(
            error(&format!(
                "{HDR}\nWOS|000001|T1|WO1||REL|I|000001000||||20260302|061500|\nTRL|000001"
            )),
            "malformed-input: line 2, field unit: is empty"
        );
        assert_eq!(
            error(&format!(
                "{HDR}\nMAT|000001|T1|WO1|10|M1||000001000|KG|20260302|061500|\nTRL|000001"
            )),
            "malformed-input: line 2, field operation: '10' is not a 4-digit operation"
        );
        assert_eq!(
            error("NOTASHIFTREPORT|x\n"),
            "malformed-input: line 1, field record-type: expected the HDR header, found 'NOTASHIFTREPORT'"
        );
        assert_eq!(
            error("HDR|INVOICE|02|1000\n"),
            "unsupported-document: line 1, field format-id: 'INVOICE' is not a SHIFTRPT shift report"
        );
    }

    /// Corrupting any byte of a good report gives events or an error, never a panic.
    #[test]
    fn corrupted_reports_never_panic() {
        config::set_for_tests([("site", "PLANT1")]);
        let good = format!(
            "{HDR}\r\n{MAT}\r\nPRD|000002|T2|WO1|0010|P1|L1|000002500|000000000|PC|20260303|010000|X\r\nWOS|000003|T3|WO1||FIN|P1|000002500|||PC|20260302|235959|ok\r\nTRL|000003\r\n"
        );
        assert_eq!(map_report(good.as_bytes()).map(|e| e.len()), Ok(3));
        for position in 0..good.len() {
            for byte in [b'|', b'\n', b'\r', b' ', b'0', b'9', b'A', 0x00, 0xE9, 0xFF] {
                let mut bytes = good.clone().into_bytes();
                bytes[position] = byte;
                let _ = map_report(&bytes);
                bytes.truncate(position);
                let _ = map_report(&bytes);
            }
        }
    }
}
