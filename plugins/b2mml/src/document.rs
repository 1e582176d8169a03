//! The document level: namespace, verb wrapper (`ApplicationArea`/`DataArea`) or bare noun,
//! schema checks that apply everywhere, and the dispatch of each noun to its mapping.

use std::borrow::Cow;

use millrace_sdk::prelude::*;
use roxmltree::Node;

use crate::context::Context;
use crate::route::Route;
use crate::{form, material, performance, schedule, xml};

/// The verbs whose nouns state facts to map. `Get` asks for data; `Acknowledge`, `Respond`,
/// `Confirm`, `Change` and `Cancel` answer or amend earlier documents, which this plugin does
/// not track.
const MAPPED_VERBS: &[&str] = &["Sync", "Process", "Show"];
const OTHER_VERBS: &[&str] = &[
    "Get",
    "Acknowledge",
    "Respond",
    "Confirm",
    "Change",
    "Cancel",
];

/// What a `MaterialUse` says of the material, for a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Use {
    /// Consumed by the work: V0600's `Consumed`, V07's `Material Consumed` too.
    Consumed,
    /// The work's product: `Produced`, V07's `Material Produced` and `Yield Produced` too.
    Produced,
    /// Anything else: consumables, samples, carriers, co- and by-products, inventoried.
    Other,
}

/// What the `MaterialUse` value `text` (of any version) says.
pub(crate) fn material_use(text: &str) -> Use {
    match text {
        "Consumed" | "Material Consumed" => Use::Consumed,
        "Produced" | "Material Produced" | "Yield Produced" => Use::Produced,
        _ => Use::Other,
    }
}

/// The values of the B2MML `MaterialUse` enumeration in V07 (V0700, V0701).
const MATERIAL_USES_V07: &[&str] = &[
    "Consumable",
    "Consumed",
    "Produced",
    "By-product Produced",
    "Co-product Produced",
    "Yield Produced",
    "Material Consumed",
    "Material Produced",
    "Destructive Sample",
    "Returned Sample",
    "Retained Sample",
    "Inventoried",
    "Other",
];

/// The values of the B2MML `MaterialUse` enumeration (V0401 to V0600).
const MATERIAL_USES: &[&str] = &[
    "Consumed",
    "Produced",
    "Consumable",
    "Replaced Asset",
    "Replacement Asset",
    "Sample",
    "Returned Sample",
    "Carrier",
    "Returned Carrier",
    "Other",
];

/// `Replaced Asset` and `Returned Sample` as MESA's V0600 schema spelled them from its first
/// publication (2013) until the typo was fixed on 2016-07-01 (MESAInternational/B2MML-BatchML
/// `384b240`): writers generated from that schema send these strings. Accepted in V0600 as the
/// values they stand for, which are not stock postings either; not listed in messages.
const MATERIAL_USES_V0600_AS_PUBLISHED: &[&str] = &["Replaced Assetn", "Resurned Sample"];

/// The values of the B2MML `EquipmentElementLevel` enumeration (V0401 to V0600), and of
/// `EquipmentLevel`, its V07 name (the values are the same).
const EQUIPMENT_LEVELS: &[&str] = &[
    "Enterprise",
    "Site",
    "Area",
    "ProcessCell",
    "Unit",
    "ProductionLine",
    "WorkCell",
    "ProductionUnit",
    "StorageZone",
    "StorageUnit",
    "WorkCenter",
    "WorkUnit",
    "EquipmentModule",
    "ControlModule",
    "Other",
];

/// The B2MML elements of type `dateTime` in the nouns this plugin maps.
const TIMES: &[&str] = &[
    "CreationDateTime",
    "PublishedDate",
    "StartTime",
    "EndTime",
    "EarliestStartTime",
    "LatestEndTime",
    "ActualStartTime",
    "ActualEndTime",
];

/// The elements the mapping reads as one value of their parent, by parent: the schema allows
/// each once there, so a repeat is not B2MML, and the mapping would take the first without a
/// word (a second `MaterialUse` or `Status` that says otherwise). A repeat is `malformed-input`.
/// [`ROOT`] stands for the root element of a verb-wrapped document, whose name is its verb and
/// noun: one `ApplicationArea` and one `DataArea` (a second would go unread).
const ONCE: &[(&[&str], &[&str])] = &[
    (&[ROOT], &["ApplicationArea", "DataArea"]),
    (
        &[
            "MaterialActual",
            "MaterialProducedActual",
            "MaterialConsumedActual",
            "ConsumableActual",
        ],
        &["MaterialUse", "Location", "StorageLocation"],
    ),
    (
        &["MaterialLot", "MaterialSubLot", "MaterialSubLotChild"],
        &[
            "ID",
            "MaterialDefinitionID",
            "Status",
            "StorageLocation",
            "Location",
        ],
    ),
    (&["MaterialRequirement"], &["MaterialUse"]),
    (
        &[
            "Location",
            "LocationChild",
            "HierarchyScope",
            "HierarchyScopeChild",
        ],
        &["EquipmentID", "Location", "LocationChild"],
    ),
    (&["StorageLocation"], &["Location", "LocationChild"]),
    (&["Quantity"], &["QuantityString", "UnitOfMeasure", "Key"]),
    (&["ApplicationArea"], &["CreationDateTime", "BODID"]),
    (
        &["SegmentResponse", "SegmentResponseChild"],
        &["ID", "ProcessSegmentID", "ActualStartTime", "ActualEndTime"],
    ),
    (
        &["ProductionResponse", "OperationsResponse"],
        &["ID", "StartTime", "EndTime"],
    ),
    (&["ProductionRequest", "OperationsRequest"], &["ID"]),
    (
        &[
            "ProductionPerformance",
            "OperationsPerformance",
            "ProductionSchedule",
            "OperationsSchedule",
            "MaterialInformation",
        ],
        &["ID", "PublishedDate"],
    ),
];

/// The parent name in [`ONCE`] that stands for the document's root element, whatever its name.
const ROOT: &str = "/";

/// The elements of a `MaterialActual` (and of the production form's `MaterialProducedActual`
/// and `MaterialConsumedActual`) the schema lets repeat (`MaterialDefinitionID`,
/// `MaterialLotID`: 0..unbounded) but an event holds one of: several different values cannot say
/// which item or lot the quantity is of, as several `OperationsRequestID` cannot say which work
/// order. `rejected-by-rule`; the same value repeated is one.
const ONE_OF_SEVERAL: &[(&str, &[&str])] = &[
    ("MaterialActual", &["MaterialDefinitionID", "MaterialLotID"]),
    (
        "MaterialProducedActual",
        &["MaterialDefinitionID", "MaterialLotID"],
    ),
    (
        "MaterialConsumedActual",
        &["MaterialDefinitionID", "MaterialLotID"],
    ),
    ("MaterialRequirement", &["MaterialDefinitionID"]),
    ("MaterialProducedRequirement", &["MaterialDefinitionID"]),
];

/// The pairs of `dateTime` elements that bound one span of time, start first.
const SPANS: &[(&str, &str)] = &[
    ("StartTime", "EndTime"),
    ("EarliestStartTime", "LatestEndTime"),
    ("ActualStartTime", "ActualEndTime"),
];

/// Maps one B2MML document to canonical events, all or nothing.
pub(crate) fn map_document(payload: &[u8]) -> Result<Vec<CanonicalEvent>, MapError> {
    let text = xml::decode(payload)?;
    let _lines = xml::LineIndex::install(&text);
    let doc = xml::parse(&text)?;
    let root = doc.root_element();
    let root_name = root.tag_name().name();
    // The B2MML version the root's namespace names, for the version-dependent checks.
    let version = match root.tag_name().namespace() {
        Some(namespace) if let Some(version) = xml::version(namespace) => version,
        Some(namespace) => {
            return Err(MapError::unsupported(format!(
                "root element {root_name} is in namespace '{namespace}', not a B2MML namespace this plugin reads ({})",
                supported_namespaces()
            )));
        }
        None => {
            return Err(MapError::unsupported(format!(
                "root element {root_name} has no namespace; expected a B2MML namespace ({})",
                supported_namespaces()
            )));
        }
    };

    // Before any lookup: a B2MML element outside the document's namespace would be skipped by
    // every lookup, and its events lost without a word.
    xml::check_namespaces(root)?;

    let (noun, nouns, created, document_id) = match xml::child(root, "DataArea") {
        Some(data_area) => {
            let (verb, noun) = split_verb(root, data_area)?;
            let application = xml::child(root, "ApplicationArea");
            let created = application.and_then(|area| xml::child(area, "CreationDateTime"));
            let document_id =
                application.and_then(|area| xml::text(area, "BODID").map(Cow::into_owned));
            let nouns: Vec<Node<'_, '_>> = xml::nouns(data_area, noun).collect();
            if nouns.is_empty() {
                return Err(MapError::malformed(format!(
                    "{}: a {verb}{noun} document has no {noun} element",
                    xml::at(data_area)
                )));
            }
            (noun, nouns, created, document_id)
        }
        None => (root_name, vec![root], None, None),
    };

    let v07 = version == "V07";
    if v07 && matches!(noun, "ProductionPerformance" | "ProductionSchedule") {
        let operations = noun.replace("Production", "Operations");
        return Err(MapError::unsupported(format!(
            "B2MML V07 has no {noun}: its production is reported as {operations}, with \
             OperationsType Production"
        )));
    }
    let mapping: for<'a, 'input> fn(
        Node<'a, 'input>,
        &Context<'a, 'input>,
        &mut Vec<CanonicalEvent>,
    ) -> Result<(), MapError> = match noun {
        "ProductionPerformance" => {
            |node, context, events| performance::map(&form::PRODUCTION, node, context, events)
        }
        "OperationsPerformance" => {
            |node, context, events| performance::map(&form::OPERATIONS, node, context, events)
        }
        "ProductionSchedule" => {
            |node, context, events| schedule::map(&form::PRODUCTION, node, context, events)
        }
        "OperationsSchedule" => {
            |node, context, events| schedule::map(&form::OPERATIONS, node, context, events)
        }
        "MaterialInformation" => |node, context, events| material::map(node, context, events),
        "MaterialDefinition" | "MaterialClass" => {
            // Master data carries no stock and no order: nothing to publish, and nothing
            // for an operator to fix, so it is not a dead letter.
            log::info(
                "material master data carries no stock; no events",
                &[("document", root_name)],
            );
            return Ok(Vec::new());
        }
        "BatchProductionRecord" => return Err(batch_record(root)),
        other => {
            return Err(MapError::unsupported(format!(
                "B2MML {other} documents are not mapped; this plugin maps ProductionPerformance, OperationsPerformance, ProductionSchedule, OperationsSchedule and MaterialInformation"
            )));
        }
    };

    let (uses, misspelt_uses) = match version {
        "V07" => (MATERIAL_USES_V07, &[][..]),
        "V0600" => (MATERIAL_USES, MATERIAL_USES_V0600_AS_PUBLISHED),
        _ => (MATERIAL_USES, &[][..]),
    };
    check_mixed_content(root)?;
    check_values(root, version, "MaterialUse", uses, misspelt_uses)?;
    check_values(
        root,
        version,
        "EquipmentElementLevel",
        EQUIPMENT_LEVELS,
        &[],
    )?;
    check_values(root, version, "EquipmentLevel", EQUIPMENT_LEVELS, &[])?;
    check_values(root, version, "OperationsType", form::OPERATIONS_TYPES, &[])?;
    check_repeats(root)?;
    let route = Route::load()?;
    check_times(root, &route)?;
    let context = Context {
        route,
        created,
        document_id,
        payload,
        balances: Default::default(),
        operations_types: Default::default(),
    };
    let mut events = Vec::new();
    for node in nouns {
        mapping(node, &context, &mut events)?;
    }
    if events.is_empty() {
        // Not an error (a report of samples only, a lot master update, a maintenance
        // schedule: see README.md), but worth a line where the events were expected.
        log::info(
            "the document maps to no events",
            &[("document", root_name), ("noun", noun)],
        );
    }
    Ok(events)
}

/// Splits a wrapped document's root name into its verb and noun, and checks the verb element.
fn split_verb<'a>(
    root: Node<'a, '_>,
    data_area: Node<'a, '_>,
) -> Result<(&'a str, &'a str), MapError> {
    let root_name = root.tag_name().name();
    let known = MAPPED_VERBS.iter().chain(OTHER_VERBS);
    let Some((verb, noun)) = known
        .filter_map(|verb| root_name.strip_prefix(verb).map(|noun| (*verb, noun)))
        .find(|(_, noun)| !noun.is_empty())
    else {
        return Err(MapError::unsupported(format!(
            "{root_name} has a DataArea but no B2MML verb (Sync, Process, Show, ...) in its name"
        )));
    };
    if !MAPPED_VERBS.contains(&verb) {
        return Err(MapError::unsupported(format!(
            "{root_name}: the verb {verb} is not mapped; only Sync, Process and Show documents state facts to publish"
        )));
    }
    let verb_element = xml::child(data_area, verb).ok_or_else(|| {
        MapError::malformed(format!(
            "{}: has no {verb} verb element",
            xml::at(data_area)
        ))
    })?;
    let deletes = verb_element
        .descendants()
        .filter(|node| node.tag_name().name() == "ActionExpression")
        .any(|node| node.attribute("actionCode") == Some("Delete"));
    if deletes {
        return Err(MapError::unsupported(format!(
            "{root_name}: actionCode Delete removes data from the receiver; a deletion is not a canonical event"
        )));
    }
    Ok((verb, noun))
}

/// Checks every element `name` of the document against the B2MML enumeration `allowed` before
/// anything is mapped, so an invalid value fails the document wherever it is. `also` are values
/// the version's published schema allowed under another spelling: accepted, not listed in the
/// message.
fn check_values(
    root: Node<'_, '_>,
    version: &str,
    name: &str,
    allowed: &[&str],
    also: &[&str],
) -> Result<(), MapError> {
    for node in xml::descendants(root, name) {
        let value = xml::own_text(node).unwrap_or_default();
        if !allowed.contains(&&*value) && !also.contains(&&*value) {
            return Err(MapError::malformed(format!(
                "{}: '{value}' is not a B2MML {version} {name} value (expected one of {})",
                xml::at(node),
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

/// Refuses text beside child elements in an element of the document's namespace: no B2MML
/// type is mixed, so `<MaterialDefinitionID>CRBN<x:ext/>0002</MaterialDefinitionID>` is not
/// B2MML, and reading its value as the text before the element (`CRBN`), or all its text
/// (`CRBN0002`), would each take a guess for what the sender meant.
fn check_mixed_content(root: Node<'_, '_>) -> Result<(), MapError> {
    let namespace = root.tag_name().namespace();
    for node in root
        .descendants()
        .filter(|node| node.is_element() && node.tag_name().namespace() == namespace)
    {
        let text = || {
            node.children()
                .filter(Node::is_text)
                .filter_map(|child| child.text())
                .map(str::trim)
                .filter(|text| !text.is_empty())
        };
        let Some(inside) = node.children().find(Node::is_element) else {
            continue;
        };
        if text().next().is_none() {
            continue;
        }
        return Err(MapError::malformed(format!(
            "{}: holds text ({}) and the element <{}> (line {}); a B2MML element holds a value \
             or elements, not both, so its value cannot be told",
            xml::at(node),
            text()
                .map(|text| format!("'{text}'"))
                .collect::<Vec<_>>()
                .join(", "),
            inside.tag_name().name(),
            xml::line(inside)
        )));
    }
    Ok(())
}

/// Checks, before anything is mapped, that no element the mapping reads as one value stands
/// twice in its parent ([`ONCE`], [`ONE_OF_SEVERAL`]).
fn check_repeats(root: Node<'_, '_>) -> Result<(), MapError> {
    let namespace = root.tag_name().namespace();
    for parent in root
        .descendants()
        .filter(|node| node.is_element() && node.tag_name().namespace() == namespace)
    {
        let parent_name = parent.tag_name().name();
        let is_root = parent == root;
        for (parents, names) in ONCE {
            let applies = parents.contains(&parent_name) || (is_root && parents.contains(&ROOT));
            if !applies {
                continue;
            }
            for name in *names {
                let mut found = xml::children(parent, name);
                if let (Some(first), Some(second)) = (found.next(), found.next()) {
                    let shown = |node: Node<'_, '_>| match xml::own_text(node) {
                        Some(text) => format!("'{text}' at line {}", xml::line(node)),
                        None => format!("one at line {}", xml::line(node)),
                    };
                    return Err(MapError::malformed(format!(
                        "{}: has {name} twice ({} and {}); the schema allows one, and which one \
                         holds cannot be told",
                        xml::at(parent),
                        shown(first),
                        shown(second)
                    )));
                }
            }
        }
        for (parent_of, names) in ONE_OF_SEVERAL {
            if parent_name != *parent_of {
                continue;
            }
            for name in *names {
                let mut values: Vec<Cow<'_, str>> = Vec::new();
                for value in xml::children(parent, name).filter_map(xml::own_text) {
                    if !values.contains(&value) {
                        values.push(value);
                    }
                }
                if values.len() > 1 {
                    return Err(MapError::rejected(format!(
                        "{}: names several {name} ({}); an event is of one item and one lot, so \
                         which one its quantity is of cannot be told (send one {parent_name} \
                         per {name})",
                        xml::at(parent),
                        values.join(", ")
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Checks every `dateTime` element of the document, whether a mapping reads it or not, and
/// that no span of time ends before it starts: a schedule or a report with a broken time is a
/// broken document, even where the events do not carry that time.
fn check_times(root: Node<'_, '_>, route: &Route) -> Result<(), MapError> {
    for name in TIMES {
        for node in xml::descendants(root, name) {
            if xml::own_text(node).is_none() {
                // Not a time, and not no time either: an empty xs:dateTime is invalid, and
                // skipping it would date the event by another element without a word.
                return Err(MapError::malformed(format!(
                    "{}: is empty, which is not an xs:dateTime; leave the element out when \
                     there is no time to state",
                    xml::at(node)
                )));
            }
            route.instant(node)?;
        }
    }
    for (start, end) in SPANS {
        for start in xml::descendants(root, start) {
            let Some(parent) = start.parent_element() else {
                continue;
            };
            let Some(end) = xml::child(parent, end) else {
                continue;
            };
            if xml::own_text(start).is_none() || xml::own_text(end).is_none() {
                continue;
            }
            if route.instant(end)? < route.instant(start)? {
                return Err(MapError::rejected(format!(
                    "{}: ends {}, before it starts {}",
                    xml::at(parent),
                    route.timestamp(end)?,
                    route.timestamp(start)?
                )));
            }
        }
    }
    Ok(())
}

/// Why a batch production record is not mapped (see README.md).
fn batch_record(root: Node<'_, '_>) -> MapError {
    let id = xml::text(root, "ID").unwrap_or(Cow::Borrowed("(no ID)"));
    MapError::unsupported(format!(
        "BatchProductionRecord {id} is not mapped: an electronic batch record lists recipe steps, exceptions and signatures, \
         but no material quantities and no statement that the batch is complete; send the batch's ProductionPerformance instead"
    ))
}

fn supported_namespaces() -> String {
    xml::NAMESPACES
        .iter()
        .map(|(_, version)| *version)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use millrace_sdk::config;

    const V0600: &str = "http://www.mesa.org/xml/B2MML-V0600";

    fn run(xml: &str) -> Result<Vec<CanonicalEvent>, MapError> {
        config::set_for_tests([("site", "PLANT1")]);
        map_document(xml.as_bytes())
    }

    fn error(xml: &str) -> String {
        let error = run(xml).unwrap_err();
        format!("{}: {}", error.kind(), error.message())
    }

    fn actual(body: &str) -> String {
        format!(
            r#"<ProductionPerformance xmlns="{V0600}"><PublishedDate>2026-03-02T06:00:00Z</PublishedDate>
<ProductionResponse><ID>R1</ID><SegmentResponse><ID>S1</ID><MaterialActual>{body}</MaterialActual>
</SegmentResponse></ProductionResponse></ProductionPerformance>"#
        )
    }

    const KG5: &str =
        "<Quantity><QuantityString>5</QuantityString><UnitOfMeasure>KG</UnitOfMeasure></Quantity>";

    #[test]
    fn material_actual_rules() {
        assert_eq!(
            error(&actual(&format!(
                "<MaterialDefinitionID>M</MaterialDefinitionID>{KG5}"
            ))),
            "rejected-by-rule: line 2, MaterialActual: has no MaterialUse, so it cannot tell a consumption from a production"
        );
        assert_eq!(
            error(&actual(
                "<MaterialDefinitionID>M</MaterialDefinitionID><MaterialUse>Consumed</MaterialUse>\
                 <Quantity><QuantityString>0</QuantityString><UnitOfMeasure>KG</UnitOfMeasure></Quantity>"
            )),
            "rejected-by-rule: line 2, MaterialActual: a consumption of 0 is not posted; it must be greater than zero"
        );
        assert_eq!(
            error(&actual(&format!(
                "<MaterialDefinitionID>M</MaterialDefinitionID><MaterialUse>Produced</MaterialUse>{KG5}\
                 <Quantity><QuantityString>1</QuantityString><UnitOfMeasure>EA</UnitOfMeasure><Key>Scrap</Key></Quantity>"
            ))),
            "rejected-by-rule: line 2, MaterialActual: the scrap quantity is in EA but the good quantity in KGM"
        );
        assert_eq!(
            error(&actual(&format!(
                "<MaterialUse>Consumed</MaterialUse>{KG5}"
            ))),
            "malformed-input: line 2, MaterialActual: has no MaterialDefinitionID"
        );
        assert_eq!(
            error(&actual(&format!(
                "<MaterialDefinitionID>M</MaterialDefinitionID><MaterialUse>Consumed</MaterialUse>{KG5}{KG5}"
            ))),
            "rejected-by-rule: line 2, MaterialActual: has more than one Quantity that is an amount; cannot tell which one to map"
        );
    }

    /// V0401 to V0600 keep the production form's `MaterialProducedActual` and
    /// `MaterialConsumedActual` beside `MaterialActual`: they are Produced and Consumed actuals
    /// read by the same rules, their events in document order among the `MaterialActual`s'. A
    /// `MaterialUse` in one (the schema gives them none) that says otherwise than its name is
    /// refused; a `ConsumableActual` is skipped as a `Consumable` `MaterialActual` is. The
    /// operations form has none of them.
    #[test]
    fn material_produced_and_consumed_actuals_are_read() {
        let performance = |namespace: &str, inside: &str| {
            format!(
                r#"<ProductionPerformance xmlns="{namespace}"><PublishedDate>2026-03-02T06:00:00Z</PublishedDate>
<ProductionResponse><ID>R1</ID><SegmentResponse><ID>S1</ID>{inside}</SegmentResponse></ProductionResponse></ProductionPerformance>"#
            )
        };
        let element = |name: &str, item: &str, extra: &str| {
            format!(
                "<{name}><MaterialDefinitionID>{item}</MaterialDefinitionID>{extra}{KG5}</{name}>"
            )
        };
        let scrap = "<Quantity><QuantityString>1</QuantityString><UnitOfMeasure>KG</UnitOfMeasure>\
                     <Key>Scrap</Key></Quantity>";
        let inside = [
            element("MaterialConsumedActual", "C1", "<MaterialLotID>L1</MaterialLotID>"),
            element("MaterialActual", "C2", "<MaterialUse>Consumed</MaterialUse>"),
            element("MaterialProducedActual", "P1", scrap),
            element("ConsumableActual", "GREASE", ""),
            element("MaterialActual", "P2", "<MaterialUse>Produced</MaterialUse>"),
            element(
                "MaterialConsumedActual",
                "C3",
                "<Location><EquipmentID>BIN-3</EquipmentID></Location><MaterialUse>Consumed</MaterialUse>",
            ),
        ]
        .concat();
        let summary = |events: Vec<CanonicalEvent>| {
            events
                .into_iter()
                .map(|event| match event.data {
                    EventData::MaterialConsumption(used) => format!(
                        "consumed {} {} {} lot {:?} at {:?}",
                        used.item, used.quantity.amount, used.quantity.uom, used.lot, used.location
                    ),
                    EventData::ProductionCompletion(made) => format!(
                        "produced {} {} scrap {} {}",
                        made.item,
                        made.good_quantity.amount,
                        made.scrap_quantity.amount,
                        made.scrap_quantity.uom
                    ),
                    other => panic!("{other:?}"),
                })
                .collect::<Vec<_>>()
        };
        for namespace in [
            "http://www.wbf.org/xml/B2MML-V0401",
            "http://www.mesa.org/xml/B2MML-V0500",
            V0600,
        ] {
            assert_eq!(
                summary(run(&performance(namespace, &inside)).unwrap()),
                [
                    "consumed C1 5 KGM lot Some(\"L1\") at None",
                    "consumed C2 5 KGM lot None at None",
                    "produced P1 5 scrap 1 KGM",
                    "produced P2 5 scrap 0 KGM",
                    "consumed C3 5 KGM lot None at Some(\"BIN-3\")",
                ],
                "{namespace}"
            );
        }
        // A MaterialUse that contradicts the element's name: which holds cannot be told.
        assert_eq!(
            error(&performance(
                V0600,
                &element(
                    "MaterialProducedActual",
                    "P1",
                    "<MaterialUse>Consumed</MaterialUse>"
                )
            )),
            "malformed-input: line 2, MaterialProducedActual: has MaterialUse 'Consumed', but \
             MaterialProducedActual stands for MaterialUse 'Produced' (the schema gives it no \
             MaterialUse of its own); which of the two holds cannot be told"
        );
        assert_eq!(
            error(&performance(
                V0600,
                &element(
                    "ConsumableActual",
                    "GREASE",
                    "<MaterialUse>Consumed</MaterialUse>"
                )
            )),
            "malformed-input: line 2, ConsumableActual: has MaterialUse 'Consumed', but \
             ConsumableActual stands for MaterialUse 'Consumable' (the schema gives it no \
             MaterialUse of its own); which of the two holds cannot be told"
        );
        // The rules of a MaterialActual hold: one item and one lot, one MaterialUse.
        assert_eq!(
            error(&performance(
                V0600,
                &element(
                    "MaterialConsumedActual",
                    "C1",
                    "<MaterialLotID>L1</MaterialLotID><MaterialLotID>L2</MaterialLotID>"
                )
            )),
            "rejected-by-rule: line 2, MaterialConsumedActual: names several MaterialLotID (L1, L2); \
             an event is of one item and one lot, so which one its quantity is of cannot be told \
             (send one MaterialConsumedActual per MaterialLotID)"
        );
        assert!(
            error(&performance(
                V0600,
                &element(
                    "MaterialProducedActual",
                    "P1",
                    "<MaterialUse>Produced</MaterialUse><MaterialUse>Consumed</MaterialUse>"
                )
            ))
            .starts_with("malformed-input: line 2, MaterialProducedActual: has MaterialUse twice")
        );
        // The operations form has no such elements: nothing in them is read.
        let operations = format!(
            r#"<OperationsPerformance xmlns="{V0600}"><PublishedDate>2026-03-02T06:00:00Z</PublishedDate>
<OperationsResponse><ID>R1</ID><SegmentResponse><ID>S1</ID>{}</SegmentResponse></OperationsResponse></OperationsPerformance>"#,
            element("MaterialProducedActual", "P1", "")
        );
        assert_eq!(run(&operations).map(|events| events.len()), Ok(0));
    }

    #[test]
    fn a_completion_of_scrap_alone_says_so() {
        assert_eq!(
            error(&actual(
                "<MaterialDefinitionID>M</MaterialDefinitionID><MaterialUse>Produced</MaterialUse>\
                 <Quantity><QuantityString>5</QuantityString><UnitOfMeasure>KG</UnitOfMeasure><Key>ScrapQty</Key></Quantity>"
            )),
            "rejected-by-rule: line 2, MaterialActual: has only a scrap Quantity (Key 'ScrapQty'), no good \
             quantity beside it; a completion states both (write the good quantity, 0 when all was scrapped)"
        );
        assert_eq!(
            error(&actual(
                "<MaterialDefinitionID>M</MaterialDefinitionID><MaterialUse>Produced</MaterialUse>\
                 <Quantity><QuantityString>5</QuantityString><UnitOfMeasure>t/h</UnitOfMeasure></Quantity>"
            )),
            "rejected-by-rule: line 2, MaterialActual: has no Quantity that is an amount (rates such as t/h are not quantities)"
        );
    }

    /// Wherever the mapping looks for an element, one outside the document's namespace is
    /// refused, never skipped: unqualified, in another B2MML version's namespace, or an
    /// extension element named as a B2MML one. Other extension elements, and what is inside
    /// them, are left alone.
    #[test]
    fn namespace_slips_are_refused_wherever_they_are() {
        let slipped = |inside: &str| {
            format!(
                r#"<b:ProductionPerformance xmlns:b="{V0600}" xmlns:x="urn:x" xmlns:o="http://www.mesa.org/xml/B2MML-V0500">
<b:PublishedDate>2026-03-02T06:00:00Z</b:PublishedDate><b:ProductionResponse><b:ID>R1</b:ID>
<b:SegmentResponse><b:ID>S1</b:ID><b:MaterialActual><b:MaterialDefinitionID>M</b:MaterialDefinitionID>
<b:MaterialUse>Consumed</b:MaterialUse>{inside}</b:MaterialActual></b:SegmentResponse></b:ProductionResponse>
</b:ProductionPerformance>"#
            )
        };
        let quantity = |prefix: &str| {
            format!(
                "<{prefix}Quantity><b:QuantityString>5</b:QuantityString><b:UnitOfMeasure>KG</b:UnitOfMeasure></{prefix}Quantity>"
            )
        };
        assert_eq!(
            run(&slipped(&quantity("b:"))).map(|events| events.len()),
            Ok(1)
        );
        assert_eq!(
            error(&slipped(&quantity(""))),
            format!(
                "malformed-input: line 4, Quantity: the element is in no namespace, but the document's \
                 ProductionPerformance is in namespace {V0600}: B2MML children share their document's \
                 namespace (declare it as the default namespace, or prefix the children too)"
            )
        );
        assert_eq!(
            error(&slipped(&quantity("o:"))),
            format!(
                "malformed-input: line 4, Quantity: the element is in namespace \
                 http://www.mesa.org/xml/B2MML-V0500, but the document's ProductionPerformance is in \
                 namespace {V0600}: B2MML children share their document's namespace (declare it as \
                 the default namespace, or prefix the children too)"
            )
        );
        assert_eq!(
            error(&slipped(&format!("{}{}", quantity("b:"), quantity("x:")))),
            format!(
                "malformed-input: line 4, Quantity: the element is in namespace urn:x, but the \
                 document's ProductionPerformance is in namespace {V0600}: an element the mapping \
                 reads must be in the document's namespace; an extension element may not take the \
                 name of a B2MML element"
            )
        );
        // An extension element of another name, with anything inside it, is ignored.
        let extension = format!(
            "{}<x:Weighing><x:Quantity>7</x:Quantity><Quantity/><b:Quantity/></x:Weighing>",
            quantity("b:")
        );
        assert_eq!(run(&slipped(&extension)).map(|events| events.len()), Ok(1));
        // So is an unqualified element of a name the mapping does not read: nothing in it is.
        let note = format!("{}<Note>checked</Note>", quantity("b:"));
        assert_eq!(run(&slipped(&note)).map(|events| events.len()), Ok(1));
    }

    /// MESA's V0600 schema spelled two MaterialUse values `Replaced Assetn` and `Resurned
    /// Sample` until 2016: V0600 documents written from it are read, those values as the ones
    /// they stand for (not stock postings). No other version had them.
    #[test]
    fn v0600_material_uses_as_first_published_are_read() {
        let actuals = |namespace: &str, material_use: &str| {
            format!(
                r#"<ProductionPerformance xmlns="{namespace}"><PublishedDate>2026-03-02T06:00:00Z</PublishedDate>
<ProductionResponse><ID>R1</ID><SegmentResponse><ID>S1</ID><MaterialActual><MaterialDefinitionID>M</MaterialDefinitionID>
<MaterialUse>Consumed</MaterialUse>{KG5}</MaterialActual><MaterialActual><MaterialDefinitionID>M</MaterialDefinitionID>
<MaterialUse>{material_use}</MaterialUse>{KG5}</MaterialActual></SegmentResponse></ProductionResponse></ProductionPerformance>"#
            )
        };
        for material_use in ["Resurned Sample", "Replaced Assetn"] {
            assert_eq!(
                run(&actuals(V0600, material_use)).map(|events| events.len()),
                Ok(1)
            );
            assert_eq!(
                error(&actuals(
                    "http://www.mesa.org/xml/B2MML-V0500",
                    material_use
                )),
                format!(
                    "malformed-input: line 4, MaterialUse: '{material_use}' is not a B2MML V0500 MaterialUse \
                     value (expected one of Consumed, Produced, Consumable, Replaced Asset, Replacement Asset, \
                     Sample, Returned Sample, Carrier, Returned Carrier, Other)"
                )
            );
        }
    }

    /// An empty dateTime element is not an xs:dateTime: it is named, not passed over for the
    /// next time the event could be dated by.
    #[test]
    fn an_empty_time_element_is_named() {
        let response = |end: &str| {
            format!(
                r#"<ProductionPerformance xmlns="{V0600}"><PublishedDate>2026-03-02T06:00:00Z</PublishedDate>
<ProductionResponse><ID>R1</ID>{end}<SegmentResponse><ID>S1</ID><MaterialActual><MaterialDefinitionID>M</MaterialDefinitionID>
<MaterialUse>Consumed</MaterialUse>{KG5}</MaterialActual></SegmentResponse></ProductionResponse></ProductionPerformance>"#
            )
        };
        for end in ["<EndTime></EndTime>", "<EndTime/>", "<EndTime> </EndTime>"] {
            assert_eq!(
                error(&response(end)),
                "malformed-input: line 2, EndTime: is empty, which is not an xs:dateTime; leave the \
                 element out when there is no time to state"
            );
        }
        assert_eq!(
            run(&response("")).unwrap()[0].occurred_at,
            "2026-03-02T06:00:00Z"
        );
    }

    /// Without a BODID a schedule is its request ID at the document's time: a re-planned
    /// schedule of the same order is a new transaction, a resend (the same document) is not.
    #[test]
    fn a_schedule_without_bodid_is_identified_by_request_and_time() {
        let schedule = |bodid: &str, published: &str| {
            format!(
                r#"<SyncProductionSchedule xmlns="{V0600}"><ApplicationArea>{bodid}<CreationDateTime>2026-03-01T00:00:00Z</CreationDateTime></ApplicationArea>
<DataArea><Sync/><ProductionSchedule><PublishedDate>{published}</PublishedDate><ProductionRequest><ID>WO1</ID></ProductionRequest>
<ProductionRequest><ID>WO2</ID></ProductionRequest></ProductionSchedule></DataArea></SyncProductionSchedule>"#
            )
        };
        let transactions = |xml: &str| {
            run(xml)
                .unwrap()
                .into_iter()
                .map(|event| event.source_transaction.unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            transactions(&schedule("", "2026-03-02T06:00:00Z")),
            ["WO1@2026-03-02T06:00:00Z", "WO2@2026-03-02T06:00:00Z"]
        );
        assert_eq!(
            transactions(&schedule("", "2026-03-02T07:30:00+01:00")),
            [
                "WO1@2026-03-02T07:30:00+01:00",
                "WO2@2026-03-02T07:30:00+01:00"
            ]
        );
        assert_eq!(
            transactions(&schedule("<BODID>PS-1</BODID>", "2026-03-02T06:00:00Z")),
            ["PS-1", "PS-1"]
        );
    }

    /// Every skipped material actual logs its line: 20,000 of them (1.3 MB) map in linear time
    /// (the line numbers come from one index of the document's lines, not a count from its
    /// start for each; that took minutes here).
    #[test]
    fn many_skipped_actuals_map_in_linear_time() {
        let sample = "<MaterialActual><MaterialUse>Sample</MaterialUse></MaterialActual>\n";
        let xml = actual(&format!(
            "<MaterialDefinitionID>M</MaterialDefinitionID><MaterialUse>Consumed</MaterialUse>{KG5}</MaterialActual>\n{}<MaterialActual>\
             <MaterialDefinitionID>M</MaterialDefinitionID><MaterialUse>Produced</MaterialUse>{KG5}",
            sample.repeat(20_000)
        ));
        let started = std::time::Instant::now();
        assert_eq!(run(&xml).map(|events| events.len()), Ok(2));
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(20), "{took:?}");
    }

    #[test]
    fn envelope_rules() {
        let wrapped = |root: &str, verb: &str, noun: &str| {
            format!(
                r#"<{root} xmlns="{V0600}"><ApplicationArea><CreationDateTime>2026-03-02T06:00:00Z</CreationDateTime></ApplicationArea>
<DataArea>{verb}{noun}</DataArea></{root}>"#
            )
        };
        assert_eq!(
            error(&wrapped(
                "GetProductionSchedule",
                "<Get/>",
                "<ProductionSchedule/>"
            )),
            "unsupported-document: GetProductionSchedule: the verb Get is not mapped; only Sync, Process and Show documents state facts to publish"
        );
        assert_eq!(
            error(&wrapped(
                "SyncProductionSchedule",
                r#"<Sync><ActionCriteria><ActionExpression actionCode="Delete"/></ActionCriteria></Sync>"#,
                "<ProductionSchedule/>"
            )),
            "unsupported-document: SyncProductionSchedule: actionCode Delete removes data from the receiver; a deletion is not a canonical event"
        );
        assert_eq!(
            error(&wrapped("SyncProductionSchedule", "<Sync/>", "")),
            "malformed-input: line 2, DataArea: a SyncProductionSchedule document has no ProductionSchedule element"
        );
        assert_eq!(
            error(&wrapped(
                "SyncEquipmentInformation",
                "<Sync/>",
                "<EquipmentInformation/>"
            )),
            "unsupported-document: B2MML EquipmentInformation documents are not mapped; this plugin maps ProductionPerformance, OperationsPerformance, ProductionSchedule, OperationsSchedule and MaterialInformation"
        );
        assert_eq!(
            error("<ProductionSchedule/>"),
            "unsupported-document: root element ProductionSchedule has no namespace; expected a B2MML namespace (V0401, V0500, V0600, V07)"
        );
        let events = run(&wrapped(
            "ShowMaterialDefinition",
            "<Show/>",
            "<MaterialDefinition><ID>M</ID></MaterialDefinition>",
        ))
        .unwrap();
        assert!(events.is_empty());
    }

    #[test]
    fn co_products_leave_item_and_quantity_out() {
        let requirement = |item: &str| {
            format!(
                "<MaterialRequirement><MaterialDefinitionID>{item}</MaterialDefinitionID><MaterialUse>Produced</MaterialUse>{KG5}</MaterialRequirement>"
            )
        };
        let schedule = |items: &[&str]| {
            format!(
                r#"<ProductionSchedule xmlns="{V0600}"><PublishedDate>2026-03-02T06:00:00Z</PublishedDate><ProductionRequest><ID>WO1</ID>
<SegmentRequirement>{}</SegmentRequirement></ProductionRequest></ProductionSchedule>"#,
                items
                    .iter()
                    .map(|item| requirement(item))
                    .collect::<String>()
            )
        };
        let status = |events: Vec<CanonicalEvent>| match events.into_iter().next().unwrap().data {
            EventData::WorkOrderStatus(status) => status,
            other => panic!("{other:?}"),
        };
        let two = status(run(&schedule(&["A", "B"])).unwrap());
        assert_eq!((two.item, two.planned_quantity), (None, None));
        let same = status(run(&schedule(&["A", "A"])).unwrap());
        assert_eq!(same.item.as_deref(), Some("A"));
        assert_eq!(same.planned_quantity.unwrap().amount, "10");
    }

    /// A segment restates what the segments inside it produce: the outermost statement of an
    /// item counts, statements at one level add up.
    #[test]
    fn nested_restatements_of_the_product_count_once() {
        let produced = |amount: &str| {
            format!(
                "<MaterialRequirement><MaterialDefinitionID>A</MaterialDefinitionID><MaterialUse>Produced</MaterialUse>\
                 <Quantity><QuantityString>{amount}</QuantityString><UnitOfMeasure>KG</UnitOfMeasure></Quantity></MaterialRequirement>"
            )
        };
        let planned = |segments: &str| {
            let xml = format!(
                r#"<ProductionSchedule xmlns="{V0600}"><PublishedDate>2026-03-02T06:00:00Z</PublishedDate><ProductionRequest><ID>WO1</ID>
{segments}</ProductionRequest></ProductionSchedule>"#
            );
            match run(&xml).unwrap().into_iter().next().unwrap().data {
                EventData::WorkOrderStatus(status) => status.planned_quantity.unwrap().amount,
                other => panic!("{other:?}"),
            }
        };
        let segment = |inside: &str| format!("<SegmentRequirement>{inside}</SegmentRequirement>");
        // The parent's 1 is the order; its child's 1 and grandchild's 0.4 restate it.
        let restated = segment(&format!(
            "{}{}",
            produced("1"),
            segment(&format!("{}{}", produced("1"), segment(&produced("0.4"))))
        ));
        assert_eq!(planned(&restated), "1");
        // Sibling segments, and siblings inside a segment that states nothing, add up.
        let siblings = format!(
            "{}{}",
            segment(&produced("0.5")),
            segment(&format!(
                "{}{}",
                segment(&produced("0.25")),
                segment(&produced("0.25"))
            ))
        );
        assert_eq!(planned(&siblings), "1");
        // Two requirements in one segment add up; a restatement below them does not.
        let pair = segment(&format!(
            "{}{}{}",
            produced("2"),
            produced("3"),
            segment(&produced("5"))
        ));
        assert_eq!(planned(&pair), "5");
    }

    /// Comments, processing instructions and CDATA inside values, a lot with both a
    /// StorageLocation and a Location, and a time of 24:00:00: each fixture is
    /// ok-material-lots.xml written so, and maps as it does.
    #[test]
    fn material_lots_written_otherwise_map_the_same() {
        config::set_for_tests([("site", "PLANT1"), ("utc_offset", "+01:00")]);
        let plain = map_document(include_bytes!("../fixtures/ok-material-lots.xml")).unwrap();
        assert_eq!(plain.len(), 3);
        for variant in [
            &include_bytes!("../fixtures/ok-material-lots-comments.xml")[..],
            include_bytes!("../fixtures/ok-material-lots-storage-location.xml"),
        ] {
            assert_eq!(map_document(variant).unwrap(), plain);
        }
        let end_of_day = map_document(include_bytes!(
            "../fixtures/ok-material-lots-end-of-day.xml"
        ))
        .unwrap();
        assert_eq!(end_of_day.len(), plain.len());
        for (event, plain) in end_of_day.into_iter().zip(&plain) {
            assert_eq!(event.occurred_at, "2026-03-03T00:00:00+01:00");
            assert_eq!(event.data, plain.data);
        }
    }

    /// Truncating or corrupting a good document gives events or an error, never a panic.
    #[test]
    fn damaged_documents_never_panic() {
        config::set_for_tests([("site", "PLANT1")]);
        let documents: [(&[u8], usize); 4] = [
            (
                include_bytes!("../fixtures/PES-20121229115825-53107.xml"),
                1,
            ),
            (
                include_bytes!("../fixtures/ok-operations-performance.xml"),
                4,
            ),
            (
                include_bytes!("../fixtures/ok-v07-operations-performance.xml"),
                3,
            ),
            (include_bytes!("../fixtures/ok-v07-material-lots.xml"), 2),
        ];
        for (good, events) in documents {
            assert_eq!(map_document(good).map(|mapped| mapped.len()), Ok(events));
            for position in 0..good.len() {
                for byte in [b'<', b'>', b'/', b'"', b' ', b'0', b'A', 0x00, 0xFF] {
                    let mut bytes = good.to_vec();
                    bytes[position] = byte;
                    let _ = map_document(&bytes);
                }
                let _ = map_document(&good[..position]);
            }
        }
    }
}
