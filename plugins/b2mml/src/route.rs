//! The route configuration (site, UTC offset for offset-less timestamps, unit overrides) and
//! the conversion of B2MML `dateTime` values to RFC 3339.

use std::cell::RefCell;
use std::collections::HashMap;

use millrace_sdk::timestamp::{self, UtcOffset};
use millrace_sdk::{MapError, config};
use roxmltree::{Node, NodeId};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::xml;

/// A `site.<equipment-id>` route config key and the site it names.
type ScopedSite = (String, String);

/// The route configuration every mapping of one document uses.
pub(crate) struct Route {
    /// The offset applied to timestamps that carry none.
    offset: UtcOffset,
    /// The offset as configured, for messages.
    offset_text: String,
    /// `release_time = "planned-start"`: a schedule with no time of its own dates its releases by
    /// their planned start ([`crate::schedule`]); else such a schedule is refused.
    pub(crate) release_by_planned_start: bool,
    /// The site key and site found for each element ([`Route::scoped_site`]), by the address of
    /// its document and its id there.
    sites: RefCell<HashMap<(usize, NodeId), Option<ScopedSite>>>,
}

impl Route {
    /// Reads `utc_offset` (default `Z`) and `release_time` (default `published`); a bad value is
    /// an `other` error naming the key.
    pub(crate) fn load() -> Result<Self, MapError> {
        let offset_text = config::get("utc_offset").unwrap_or_else(|| "Z".to_owned());
        let offset = timestamp::parse_offset(&offset_text).map_err(|error| {
            MapError::other(format!(
                "route config key 'utc_offset' is '{offset_text}': {error}"
            ))
        })?;
        let release_by_planned_start = match config::get("release_time").as_deref().map(str::trim) {
            None | Some("" | "published") => false,
            Some("planned-start") => true,
            Some(other) => {
                return Err(MapError::other(format!(
                    "route config key 'release_time' is '{other}': it takes published (the \
                     default) or planned-start"
                )));
            }
        };
        Ok(Self {
            offset,
            offset_text,
            release_by_planned_start,
            sites: RefCell::default(),
        })
    }

    /// The site of an element: the first `site.<equipment-id>` key matching an equipment id of
    /// its (or its ancestors') hierarchy scope ([`xml::hierarchy_scope`]: `HierarchyScope`, or
    /// V0401's `Location`), innermost element first, else the key `site`.
    pub(crate) fn site(&self, node: Node<'_, '_>) -> Result<String, MapError> {
        match self.scoped_site(node) {
            Some((key, site)) => config::checked_site(&key, site),
            None => config::checked_site("site", config::require("site")?),
        }
    }

    /// The `site.<equipment-id>` key and its site for the innermost element from `node` up
    /// whose hierarchy scope names a configured equipment id. Found once per element: every
    /// event of a large document asks for its ancestors', and reading their scopes again each
    /// time would read all the siblings of each event again (quadratic).
    fn scoped_site(&self, node: Node<'_, '_>) -> Option<ScopedSite> {
        let element = if node.is_element() {
            node
        } else {
            node.parent_element()?
        };
        let id = (
            std::ptr::from_ref(element.document()) as usize,
            element.id(),
        );
        if let Some(found) = self.sites.borrow().get(&id) {
            return found.clone();
        }
        let found = xml::hierarchy_scope(element)
            .into_iter()
            .find_map(|equipment| {
                let key = format!("site.{equipment}");
                config::get(&key).map(|site| (key, site))
            })
            .or_else(|| {
                element
                    .parent_element()
                    .and_then(|parent| self.scoped_site(parent))
            });
        self.sites.borrow_mut().insert(id, found.clone());
        found
    }

    /// Converts the text of a B2MML `dateTime` element to RFC 3339. Without an offset the
    /// value is local time at the route's `utc_offset`.
    pub(crate) fn timestamp(&self, element: Node<'_, '_>) -> Result<String, MapError> {
        self.instant(element)?.format(&Rfc3339).map_err(|error| {
            MapError::malformed(format!(
                "{}: '{}' is not an xs:dateTime ({error})",
                xml::at(element),
                xml::own_text(element).unwrap_or_default()
            ))
        })
    }

    /// The instant the text of a B2MML `dateTime` element names. Without an offset the value
    /// is local time at the route's `utc_offset`.
    pub(crate) fn instant(&self, element: Node<'_, '_>) -> Result<OffsetDateTime, MapError> {
        let text = xml::own_text(element).unwrap_or_default();
        let bad = |problem: &str| {
            MapError::malformed(format!(
                "{}: '{text}' is not an xs:dateTime ({problem})",
                xml::at(element)
            ))
        };
        let Some((date, time)) = text.split_once('T') else {
            return Err(bad("expected YYYY-MM-DDThh:mm:ss"));
        };
        // xs:dateTime has no leap second (its seconds are below 60); RFC 3339 has one, which
        // the parser below would read as 59.999999999: a time never sent.
        if time.as_bytes().get(5) == Some(&b':') && time.get(6..8) == Some("60") {
            return Err(bad(
                "second 60: xs:dateTime has no leap second; seconds must be below 60",
            ));
        }
        // xs:dateTime writes the end of a day as 24:00:00 (a zero fraction allowed): the
        // midnight that starts the next day.
        let end_of_day = end_of_day(time);
        let (text, time) = match end_of_day {
            Some(rest) => (format!("{date}T00:00:00{rest}"), rest),
            None => (text.to_string(), time),
        };
        let has_offset = time.ends_with(['Z', 'z']) || time.contains(['+', '-']);
        let full = if has_offset {
            text
        } else {
            // B2MML often omits the offset; the route says which local time the source writes.
            let offset = if self.offset == UtcOffset::UTC {
                "Z".to_owned()
            } else {
                let (hours, minutes, _) = self.offset.as_hms();
                let sign = if self.offset.is_negative() { '-' } else { '+' };
                format!("{sign}{:02}:{:02}", hours.abs(), minutes.abs())
            };
            format!("{text}{offset}")
        };
        let instant = OffsetDateTime::parse(&full, &Rfc3339).map_err(|error| {
            if has_offset {
                bad(&error.to_string())
            } else {
                bad(&format!("{error}; read at utc_offset {}", self.offset_text))
            }
        })?;
        // xs:dateTime offsets run from -14:00 to +14:00 (RFC 3339 writes any up to 23:59).
        if instant.offset().whole_minutes().unsigned_abs() > 14 * 60 {
            return Err(bad(
                "the offset is beyond ±14:00, the range xs:dateTime allows; no place on earth is \
                 that far from UTC",
            ));
        }
        if end_of_day.is_none() {
            return Ok(instant);
        }
        instant
            .checked_add(Duration::DAY)
            .ok_or_else(|| bad("the day after is out of range"))
    }

    /// The first of the given optional `dateTime` elements that is present, converted.
    pub(crate) fn first_timestamp<'a, 'input: 'a>(
        &self,
        candidates: impl IntoIterator<Item = Option<Node<'a, 'input>>>,
    ) -> Result<Option<String>, MapError> {
        for element in candidates.into_iter().flatten() {
            if xml::own_text(element).is_some() {
                return self.timestamp(element).map(Some);
            }
        }
        Ok(None)
    }
}

/// What follows the time of day when it is xs:dateTime's `24:00:00` (optionally with a zero
/// fraction, `24:00:00.000`): the offset, if any. None for any other time.
fn end_of_day(time: &str) -> Option<&str> {
    let rest = time.strip_prefix("24:00:00")?;
    let Some(fraction) = rest.strip_prefix('.') else {
        return Some(rest);
    };
    let zeros = fraction.len() - fraction.trim_start_matches('0').len();
    (zeros > 0 && !fraction[zeros..].starts_with(|c: char| c.is_ascii_digit()))
        .then_some(&fraction[zeros..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(offset: &str, text: &str) -> Result<String, MapError> {
        config::set_for_tests([("site", "PLANT1"), ("utc_offset", offset)]);
        let xml = format!("<T>{text}</T>");
        let doc = xml::parse(&xml).unwrap();
        Route::load()?.timestamp(doc.root_element())
    }

    #[test]
    fn keeps_source_offsets_and_precision() {
        for (offset, source, converted) in [
            (
                "Z",
                "2012-11-29T11:58:25.3149559+01:00",
                "2012-11-29T11:58:25.3149559+01:00",
            ),
            ("+05:00", "2012-12-10T17:07:18.0Z", "2012-12-10T17:07:18Z"),
            (
                "+05:00",
                "2019-04-24T15:00:00-03:00",
                "2019-04-24T15:00:00-03:00",
            ),
        ] {
            assert_eq!(convert(offset, source).unwrap(), converted);
        }
    }

    #[test]
    fn applies_the_route_offset_when_the_source_has_none() {
        for (offset, source, converted) in [
            ("+01:00", "2026-03-02T06:15:00", "2026-03-02T06:15:00+01:00"),
            (
                "-0530",
                "2026-03-02T06:15:00.5",
                "2026-03-02T06:15:00.5-05:30",
            ),
            ("Z", "2026-03-02T06:15:00", "2026-03-02T06:15:00Z"),
        ] {
            assert_eq!(convert(offset, source).unwrap(), converted);
        }
    }

    #[test]
    fn reads_24_00_00_as_the_end_of_the_day() {
        for (offset, source, converted) in [
            ("Z", "2026-03-02T24:00:00Z", "2026-03-03T00:00:00Z"),
            ("+01:00", "2026-03-02T24:00:00", "2026-03-03T00:00:00+01:00"),
            (
                "Z",
                "2026-12-31T24:00:00.000-05:00",
                "2027-01-01T00:00:00-05:00",
            ),
            (
                "-0530",
                "2024-02-28T24:00:00.0",
                "2024-02-29T00:00:00-05:30",
            ),
        ] {
            assert_eq!(convert(offset, source).unwrap(), converted);
        }
        for source in [
            "2026-03-02T24:00:01Z",
            "2026-03-02T24:01:00",
            "2026-03-02T24:00:00.001Z",
            "2026-03-02T24:00:00.Z",
            "2026-03-02T24:00",
            "2026-03-02T25:00:00Z",
        ] {
            assert_eq!(
                convert("Z", source).unwrap_err().kind(),
                "malformed-input",
                "{source}"
            );
        }
        assert_eq!(
            convert("Z", "9999-12-31T24:00:00Z").unwrap_err().message(),
            "line 1, T: '9999-12-31T24:00:00Z' is not an xs:dateTime (the day after is out of range)"
        );
    }

    #[test]
    fn refuses_a_leap_second() {
        for source in [
            "2016-12-31T23:59:60Z",
            "2016-12-31T23:59:60.5+01:00",
            "2016-12-31T23:59:60",
        ] {
            assert_eq!(
                convert("Z", source).unwrap_err().message(),
                format!(
                    "line 1, T: '{source}' is not an xs:dateTime (second 60: xs:dateTime has no \
                     leap second; seconds must be below 60)"
                )
            );
        }
        assert_eq!(
            convert("Z", "2016-12-31T23:59:59.6Z").unwrap(),
            "2016-12-31T23:59:59.6Z"
        );
    }

    #[test]
    fn rejects_bad_values_and_offsets() {
        assert_eq!(
            convert("Z", "2026-03-02").unwrap_err().message(),
            "line 1, T: '2026-03-02' is not an xs:dateTime (expected YYYY-MM-DDThh:mm:ss)"
        );
        assert_eq!(
            convert("Z", "2026-02-30T00:00:00").unwrap_err().kind(),
            "malformed-input"
        );
        assert_eq!(
            convert("CET", "2026-03-02T06:15:00").unwrap_err().message(),
            "route config key 'utc_offset' is 'CET': 'CET' is not a valid UTC offset (expected +HH:MM)"
        );
    }

    #[test]
    fn picks_the_site_from_the_hierarchy_scope() {
        config::set_for_tests([("site", "PLANT1"), ("site.fsf", "SMELTER")]);
        let doc = xml::parse(
            "<R><HierarchyScope><EquipmentID>fsf</EquipmentID></HierarchyScope><X/></R>",
        )
        .unwrap();
        let route = Route::load().unwrap();
        let inner = doc.root_element().first_element_child().unwrap();
        assert_eq!(
            route.site(inner.next_sibling_element().unwrap()).unwrap(),
            "SMELTER"
        );
        let plain = xml::parse("<R><X/></R>").unwrap();
        assert_eq!(route.site(plain.root_element()).unwrap(), "PLANT1");
        // V0401 states the hierarchy scope as Location: the schedule's names the request's site.
        // A material requirement's Location says where the material is, not the site.
        let v0401 = xml::parse(
            r#"<ProductionSchedule xmlns="http://www.wbf.org/xml/B2MML-V0401"><Location><EquipmentID>XX01</EquipmentID>
               <EquipmentElementLevel>Site</EquipmentElementLevel></Location><ProductionRequest><ID>R</ID>
               <SegmentRequirement><MaterialRequirement><Location><EquipmentID>fsf</EquipmentID>
               <EquipmentElementLevel>Area</EquipmentElementLevel></Location></MaterialRequirement>
               </SegmentRequirement></ProductionRequest></ProductionSchedule>"#,
        )
        .unwrap();
        let element = |name: &str| {
            v0401
                .descendants()
                .find(|node| node.tag_name().name() == name)
                .unwrap()
        };
        assert_eq!(
            route.site(element("MaterialRequirement")).unwrap(),
            "PLANT1"
        );
        config::set_for_tests([("site", "PLANT1"), ("site.XX01", "SCOTLAND")]);
        let route = Route::load().unwrap();
        assert_eq!(
            route.site(element("ProductionRequest")).unwrap(),
            "SCOTLAND"
        );
        config::set_for_tests([("site", "PLANT 1")]);
        assert_eq!(
            route.site(plain.root_element()).unwrap_err().kind(),
            "other"
        );
    }
}
