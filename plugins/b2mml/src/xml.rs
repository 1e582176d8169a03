//! Parsing the payload and reading B2MML elements: namespace-aware lookups, trimmed text and
//! the line of every element for error messages.

use std::borrow::Cow;
use std::cell::RefCell;

use millrace_sdk::MapError;
use roxmltree::{Document, Node};

/// The namespace of B2MML V07 (V0700, V0701): no longer versioned.
pub(crate) const V07: &str = "http://www.mesa.org/xml/B2MML";

/// The B2MML namespaces this plugin reads, with the version name used in messages.
pub(crate) const NAMESPACES: &[(&str, &str)] = &[
    ("http://www.wbf.org/xml/B2MML-V0401", "V0401"),
    ("http://www.mesa.org/xml/B2MML-V0500", "V0500"),
    ("http://www.mesa.org/xml/B2MML-V0600", "V0600"),
    (V07, "V07"),
];

/// The deepest element nesting a document may have. B2MML never needs more than about 20
/// levels (nested segment responses and sub-lots included); the cap is checked before parsing,
/// because the parser recurses per level and a deeply nested document would exhaust the
/// plugin's call stack.
pub(crate) const MAX_DEPTH: usize = 256;

/// Every element name the mapping looks up (as a child, a descendant or a nested element):
/// an element of one of these names that stands in a B2MML element but outside the document's
/// namespace is a namespace slip the mapping would silently skip, so [`check_namespaces`]
/// refuses it.
pub(crate) const READ: &[&str] = &[
    // The envelope.
    "ApplicationArea",
    "BODID",
    "CreationDateTime",
    "DataArea",
    "Sync",
    "Process",
    "Show",
    "Get",
    "Acknowledge",
    "Respond",
    "Confirm",
    "Change",
    "Cancel",
    "ActionCriteria",
    "ActionExpression",
    // The nouns.
    "ProductionPerformance",
    "OperationsPerformance",
    "ProductionSchedule",
    "OperationsSchedule",
    "MaterialInformation",
    "MaterialDefinition",
    "MaterialClass",
    "BatchProductionRecord",
    // Their content.
    "ID",
    "PublishedDate",
    "StartTime",
    "EndTime",
    "EarliestStartTime",
    "LatestEndTime",
    "ActualStartTime",
    "ActualEndTime",
    "ProductionResponse",
    "OperationsResponse",
    "ProductionRequestID",
    "OperationsRequestID",
    "ProductionRequest",
    "OperationsRequest",
    "SegmentResponse",
    "SegmentResponseChild",
    "SegmentRequirement",
    "SegmentRequirementChild",
    "ProcessSegmentID",
    "MaterialActual",
    "MaterialProducedActual",
    "MaterialConsumedActual",
    "ConsumableActual",
    "MaterialRequirement",
    "MaterialProducedRequirement",
    "MaterialUse",
    "MaterialDefinitionID",
    "MaterialLotID",
    "MaterialLot",
    "MaterialSubLot",
    "MaterialSubLotChild",
    "Status",
    "Quantity",
    "QuantityString",
    "UnitOfMeasure",
    "Key",
    "OperationsType",
    "EquipmentElementLevel",
    "EquipmentLevel",
    "HierarchyScope",
    "HierarchyScopeChild",
    "EquipmentID",
    "Location",
    "LocationChild",
    "StorageLocation",
];

/// Decodes the payload as text in the encoding it is written in: UTF-8 unless its byte-order
/// mark or XML declaration names another (UTF-16, ISO-8859-1...; see
/// [`millrace_sdk::text::xml_document`]).
pub(crate) fn decode(payload: &[u8]) -> Result<Cow<'_, str>, MapError> {
    let bytes = payload.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(payload);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(MapError::malformed("empty payload"));
    }
    millrace_sdk::text::xml_document(payload)
}

/// Parses the text as XML; a syntax error names its line and column. A document nested more
/// than [`MAX_DEPTH`] levels deep is refused before it is parsed.
pub(crate) fn parse(text: &str) -> Result<Document<'_>, MapError> {
    check_depth(text)?;
    Document::parse(text).map_err(|error| {
        let message = match error {
            // These carry no position: the problem is where the payload ends.
            roxmltree::Error::UnclosedRootNode | roxmltree::Error::UnexpectedEndOfStream => {
                let (row, col) = end_position(text);
                format!(
                    "not well-formed XML: the payload ends at line {row}, column {col} before the root element is closed (truncated?)"
                )
            }
            roxmltree::Error::NoRootNode => "not well-formed XML: there is no root element".to_owned(),
            roxmltree::Error::DtdDetected => {
                "a DTD is not accepted in a B2MML document (entity expansion risk)".to_owned()
            }
            _ => {
                let pos = error.pos();
                let full = error.to_string();
                let what = full.strip_suffix(&format!(" at {pos}")).unwrap_or(&full);
                format!(
                    "not well-formed XML at line {}, column {}: {what}",
                    pos.row, pos.col
                )
            }
        };
        MapError::malformed(message)
    })
}

/// Refuses a document whose elements nest more than [`MAX_DEPTH`] levels deep, by a scan of
/// its markup that needs no stack: comments, CDATA sections and processing instructions are
/// skipped whole, a start tag is read to its `>` outside quoted attribute values, and a
/// self-closing tag opens no level. What the scan cannot follow (a DTD, a tag that is never
/// closed) is left to the parser to report.
fn check_depth(text: &str) -> Result<(), MapError> {
    let bytes = text.as_bytes();
    let find = |from: usize, pattern: &[u8]| {
        bytes
            .get(from..)
            .and_then(|rest| rest.windows(pattern.len()).position(|w| w == pattern))
            .map(|at| from + at + pattern.len())
    };
    let mut depth = 0_usize;
    let mut at = 0;
    while let Some(start) = bytes
        .get(at..)
        .and_then(|rest| rest.iter().position(|&b| b == b'<'))
        .map(|offset| at + offset)
    {
        let rest = &bytes[start..];
        let next = if rest.starts_with(b"<!--") {
            find(start + 4, b"-->")
        } else if rest.starts_with(b"<![CDATA[") {
            find(start + 9, b"]]>")
        } else if rest.starts_with(b"<?") {
            find(start + 2, b"?>")
        } else if rest.starts_with(b"<!") {
            // A DOCTYPE: the parser refuses it.
            return Ok(());
        } else if rest.starts_with(b"</") {
            depth = depth.saturating_sub(1);
            find(start + 2, b">")
        } else {
            let mut quote = None;
            let end = rest.iter().enumerate().skip(1).find_map(|(i, &b)| {
                match quote {
                    Some(q) if b == q => quote = None,
                    Some(_) => {}
                    None if b == b'"' || b == b'\'' => quote = Some(b),
                    None if b == b'>' => return Some(i),
                    None => {}
                }
                None
            });
            let Some(end) = end else {
                return Ok(());
            };
            if rest[end - 1] != b'/' {
                depth += 1;
                if depth > MAX_DEPTH {
                    let name: String = text[start + 1..]
                        .chars()
                        .take_while(|c| !c.is_whitespace() && !matches!(c, '/' | '>'))
                        .collect();
                    let (line, _) = end_position(&text[..start]);
                    return Err(MapError::malformed(format!(
                        "line {line}, {name}: the elements are nested more than {MAX_DEPTH} \
                         levels deep; no B2MML document needs that many (about 20 at most), so \
                         the document is refused before it is parsed"
                    )));
                }
            }
            Some(start + end + 1)
        };
        let Some(next) = next else {
            return Ok(());
        };
        at = next;
    }
    Ok(())
}

/// The 1-based line and column just past the last character of `text`.
fn end_position(text: &str) -> (usize, usize) {
    let line = text.matches('\n').count() + 1;
    let last = text.rsplit('\n').next().unwrap_or("");
    (line, last.chars().count() + 1)
}

/// The line index of the document being mapped: the byte offsets of its line feeds, found
/// once, on the first line number asked for.
struct Lines {
    /// The address and length of the document's text, to tell it from any other.
    text: (usize, usize),
    /// The offsets of the text's `\n`s, ascending; built when first needed.
    feeds: Option<Vec<usize>>,
}

thread_local! {
    static LINES: RefCell<Option<Lines>> = const { RefCell::new(None) };
}

/// While it lives, [`line`] finds the lines of `text` by a binary search in an index of its
/// line feeds built once, instead of counting them from the start of the document for every
/// line asked for (a log line per skipped element of a large document would be quadratic).
pub(crate) struct LineIndex(());

impl LineIndex {
    /// Indexes the lines of `text` (lazily) until the returned guard is dropped.
    pub(crate) fn install(text: &str) -> Self {
        LINES.with(|lines| {
            *lines.borrow_mut() = Some(Lines {
                text: (text.as_ptr() as usize, text.len()),
                feeds: None,
            });
        });
        Self(())
    }
}

impl Drop for LineIndex {
    fn drop(&mut self) {
        LINES.with(|lines| lines.borrow_mut().take());
    }
}

/// The 1-based line an element starts on: from the [`LineIndex`] when one is installed for the
/// element's document, else counted from the start of the document.
pub(crate) fn line(node: Node<'_, '_>) -> u32 {
    let input = node.document().input_text();
    let position = node.range().start;
    let indexed = LINES.with(|lines| {
        let mut lines = lines.borrow_mut();
        let lines = lines
            .as_mut()
            .filter(|lines| lines.text == (input.as_ptr() as usize, input.len()))?;
        let feeds = lines.feeds.get_or_insert_with(|| {
            input
                .bytes()
                .enumerate()
                .filter_map(|(at, b)| (b == b'\n').then_some(at))
                .collect()
        });
        u32::try_from(feeds.partition_point(|&feed| feed < position) + 1).ok()
    });
    indexed.unwrap_or_else(|| node.document().text_pos_at(position).row)
}

/// The error context `line <n>, <Element>` for an element.
pub(crate) fn at(node: Node<'_, '_>) -> String {
    format!("line {}, {}", line(node), node.tag_name().name())
}

/// The B2MML version a namespace is, if it is one this plugin reads.
pub(crate) fn version(namespace: &str) -> Option<&'static str> {
    NAMESPACES
        .iter()
        .find(|(known, _)| *known == namespace)
        .map(|(_, version)| *version)
}

/// The namespace of an element, for a message: `namespace <uri>`, or `no namespace`.
pub(crate) fn namespace(node: Node<'_, '_>) -> String {
    node.tag_name().namespace().map_or_else(
        || "no namespace".to_owned(),
        |uri| format!("namespace {uri}"),
    )
}

/// Refuses a namespace slip wherever the mapping looks for elements: the lookups read only
/// the children of a B2MML element that are in its namespace, so a child that should be
/// there and is not (a prefixed root with unprefixed children) would be skipped and its
/// events silently lost. Every child of an element in the document's namespace must be in that
/// namespace too when it is named as an element the mapping reads ([`READ`]) or is in another
/// B2MML namespace. Other elements (extensions in other namespaces, or a stray unqualified one
/// of another name), and everything inside them, are left alone: nothing in them is read. The first such element in document order is named, with its namespace and the
/// document's.
pub(crate) fn check_namespaces(root: Node<'_, '_>) -> Result<(), MapError> {
    let Some(expected) = root.tag_name().namespace() else {
        return Ok(());
    };
    let in_document = |node: Node<'_, '_>| node.tag_name().namespace() == Some(expected);
    let stray = root.descendants().find(|node| {
        node.is_element()
            && !in_document(*node)
            && node.parent_element().is_some_and(in_document)
            && (READ.contains(&node.tag_name().name())
                || node
                    .tag_name()
                    .namespace()
                    .is_some_and(|namespace| version(namespace).is_some()))
    });
    if let Some(stray) = stray {
        let root_name = root.tag_name().name();
        let hint = if stray
            .tag_name()
            .namespace()
            .is_none_or(|ns| version(ns).is_some())
        {
            "B2MML children share their document's namespace (declare it as the default \
             namespace, or prefix the children too)"
        } else {
            "an element the mapping reads must be in the document's namespace; an extension \
             element may not take the name of a B2MML element"
        };
        return Err(MapError::malformed(format!(
            "{}: the element is in {}, but the document's {root_name} is in namespace \
             {expected}: {hint}",
            at(stray),
            namespace(stray),
        )));
    }
    Ok(())
}

/// The elements of `nodes` named `name` in `namespace`.
fn named<'n, 'a: 'n, 'input: 'a>(
    nodes: impl Iterator<Item = Node<'a, 'input>> + 'n,
    name: &'n str,
    namespace: Option<&'n str>,
) -> impl Iterator<Item = Node<'a, 'input>> + 'n {
    nodes.filter(move |node| {
        node.is_element()
            && node.tag_name().name() == name
            && node.tag_name().namespace() == namespace
    })
}

/// The elements nested in `node` as its own kind: `name` (up to V0600: a `SegmentResponse` in a
/// `SegmentResponse`), then `child` (V07 names them `SegmentResponseChild`).
pub(crate) fn nested<'a, 'input: 'a>(
    node: Node<'a, 'input>,
    name: &'a str,
    child: &'a str,
) -> impl Iterator<Item = Node<'a, 'input>> + 'a {
    children(node, name).chain(children(node, child))
}

/// Checks, in tests, that a B2MML element the mapping looks up is one [`check_namespaces`]
/// guards: a slip in any other would go unnoticed.
fn guarded(node: Node<'_, '_>, name: &str) {
    debug_assert!(
        node.tag_name()
            .namespace()
            .is_none_or(|namespace| version(namespace).is_none())
            || READ.contains(&name),
        "{name} is looked up but not listed in xml::READ"
    );
}

/// The noun elements of a verb-wrapped document's `DataArea`: named `noun` (the noun its root
/// names, whichever that is) in the `DataArea`'s namespace.
pub(crate) fn nouns<'a, 'input: 'a>(
    data_area: Node<'a, 'input>,
    noun: &'a str,
) -> impl Iterator<Item = Node<'a, 'input>> + 'a {
    named(data_area.children(), noun, data_area.tag_name().namespace())
}

/// The child elements of `node` named `name` in `node`'s own namespace (B2MML children share
/// their parent's namespace; extension elements in other namespaces are skipped).
pub(crate) fn children<'a, 'input: 'a>(
    node: Node<'a, 'input>,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'input>> + 'a {
    guarded(node, name);
    named(node.children(), name, node.tag_name().namespace())
}

/// The elements under `node`, at any depth, named `name` in `node`'s own namespace.
pub(crate) fn descendants<'a, 'input: 'a>(
    node: Node<'a, 'input>,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'input>> + 'a {
    guarded(node, name);
    named(node.descendants(), name, node.tag_name().namespace())
}

/// The first child element named `name`.
pub(crate) fn child<'a, 'input>(node: Node<'a, 'input>, name: &str) -> Option<Node<'a, 'input>> {
    guarded(node, name);
    named(node.children(), name, node.tag_name().namespace()).next()
}

/// The trimmed text of the first child element named `name`; none when absent or blank.
pub(crate) fn text<'a>(node: Node<'a, '_>, name: &str) -> Option<Cow<'a, str>> {
    child(node, name).and_then(own_text)
}

/// The trimmed text content of an element; none when blank.
///
/// XML lets comments and processing instructions stand in content: the value of an element
/// of simple content is all its text (and CDATA) children joined, so
/// `<QuantityString>1<!-- c -->12.5</QuantityString>` is `112.5`. An element with child
/// elements keeps to the text before its first child: a mapped document has none but
/// whitespace there, because text beside child elements (mixed content, which no B2MML type
/// allows) is refused before anything is read (`document::check_mixed_content`).
pub(crate) fn own_text<'a>(node: Node<'a, '_>) -> Option<Cow<'a, str>> {
    let whole = if node.children().any(|child| child.is_element()) {
        Cow::Borrowed(node.text()?)
    } else {
        let mut parts = node
            .children()
            .filter(Node::is_text)
            .filter_map(|child| child.text());
        let first = parts.next()?;
        match parts.next() {
            None => Cow::Borrowed(first),
            Some(second) => {
                let mut joined = format!("{first}{second}");
                joined.extend(parts);
                Cow::Owned(joined)
            }
        }
    };
    let trimmed = match whole {
        Cow::Borrowed(text) => Cow::Borrowed(text.trim()),
        Cow::Owned(text) => Cow::Owned(text.trim().to_owned()),
    };
    (!trimmed.is_empty()).then_some(trimmed)
}

/// The trimmed text of the child `name`, or a malformed-input error naming the parent.
pub(crate) fn require<'a>(node: Node<'a, '_>, name: &str) -> Result<Cow<'a, str>, MapError> {
    text(node, name).ok_or_else(|| MapError::malformed(format!("{}: has no {name}", at(node))))
}

/// The elements whose `Location` is their hierarchy scope up to V0600. V0401 names the
/// hierarchy scope of a schedule, request, segment, performance, response or material
/// information `Location`; V0500 renamed it `HierarchyScope` and kept `Location` beside it,
/// deprecated, for the documents still written so. The `Location` of a material actual,
/// requirement or lot is not among them: it says where the material is (see [`location`]).
const LOCATION_IS_SCOPE: &[&str] = &[
    "ProductionSchedule",
    "ProductionRequest",
    "SegmentRequirement",
    "ProductionPerformance",
    "ProductionResponse",
    "SegmentResponse",
    "MaterialInformation",
];

/// The equipment ids of the element's hierarchy scope (outermost first, nested scopes after),
/// for the `site.<equipment-id>` route configuration lookup: its `HierarchyScope` (nested
/// `HierarchyScope`, in V07 `HierarchyScopeChild`), else, up to V0600, the `Location` that
/// states it in V0401 (nested `Location`; see [`LOCATION_IS_SCOPE`]).
pub(crate) fn hierarchy_scope(node: Node<'_, '_>) -> Vec<String> {
    let (mut scope, inner, inner_child) = match child(node, "HierarchyScope") {
        Some(scope) => (Some(scope), "HierarchyScope", "HierarchyScopeChild"),
        None if node.tag_name().namespace() != Some(V07)
            && LOCATION_IS_SCOPE.contains(&node.tag_name().name()) =>
        {
            (child(node, "Location"), "Location", "LocationChild")
        }
        None => (None, "HierarchyScope", "HierarchyScopeChild"),
    };
    let mut ids = Vec::new();
    while let Some(current) = scope {
        if let Some(id) = text(current, "EquipmentID") {
            ids.push(id.into_owned());
        }
        scope = nested(current, inner, inner_child).next();
    }
    ids
}

/// Where a material actual is: the equipment id of its `Location`, else its `StorageLocation`
/// (see [`equipment_location`], [`storage_location`]).
pub(crate) fn location(node: Node<'_, '_>) -> Result<Option<String>, MapError> {
    Ok(match equipment_location(node)? {
        Some(location) => Some(location),
        None => storage_location(node)?,
    })
}

/// Where a material lot or sub-lot is: its `StorageLocation` (the storage place, a bin or a
/// silo), else the equipment id of its `Location` (the equipment hierarchy it sits in).
pub(crate) fn lot_location(node: Node<'_, '_>) -> Result<Option<String>, MapError> {
    Ok(match storage_location(node)? {
        Some(location) => Some(location),
        None => equipment_location(node)?,
    })
}

/// The equipment id of the element's `Location` (the innermost nested one that has one). A
/// `Location` that names no `EquipmentID` at any depth is an error: the element says where the
/// material is, and reading it as absent would take another place (or none) without a word.
fn equipment_location(node: Node<'_, '_>) -> Result<Option<String>, MapError> {
    let Some(outer) = child(node, "Location") else {
        return Ok(None);
    };
    let mut found = None;
    let mut location = Some(outer);
    while let Some(current) = location {
        if let Some(id) = text(current, "EquipmentID") {
            found = Some(id.into_owned());
        }
        location = child(current, "Location");
    }
    found.map(Some).ok_or_else(|| {
        MapError::malformed(format!(
            "{}: names no place: neither it nor a Location nested in it has an EquipmentID{}",
            at(outer),
            found_children(outer)
        ))
    })
}

/// The element's `StorageLocation`: text up to V0600, in V07 a resource location whose
/// `Location` names it (the innermost of its `LocationChild`ren). One that is there but names
/// nothing in either form (empty, or holding other elements, `<EquipmentID>`) is an error naming
/// what it holds.
fn storage_location(node: Node<'_, '_>) -> Result<Option<String>, MapError> {
    let Some(storage) = child(node, "StorageLocation") else {
        return Ok(None);
    };
    if let Some(text) = own_text(storage) {
        return Ok(Some(text.into_owned()));
    }
    let mut found = None;
    let mut resource = Some(storage);
    while let Some(current) = resource {
        found = text(current, "Location").map(Cow::into_owned).or(found);
        resource = child(current, "LocationChild");
    }
    found.map(Some).ok_or_else(|| {
        MapError::malformed(format!(
            "{}: names no place: a StorageLocation is its text (up to V0600) or a resource \
             location with a Location (V07){}",
            at(storage),
            found_children(storage)
        ))
    })
}

/// `; it holds <A>, <B>` naming the child elements of `node`, or `; it is empty`.
fn found_children(node: Node<'_, '_>) -> String {
    let names: Vec<String> = node
        .children()
        .filter(Node::is_element)
        .map(|child| format!("<{}>", child.tag_name().name()))
        .collect();
    if names.is_empty() {
        "; it is empty".to_owned()
    } else {
        format!("; it holds {}", names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_name_line_and_column() {
        let error = parse("<a>\n  <b>\n</a>").unwrap_err();
        assert_eq!(error.kind(), "malformed-input");
        assert!(
            error
                .message()
                .starts_with("not well-formed XML at line 3, column"),
            "{error:?}"
        );
    }

    /// `depth` nested elements inside a root, each written by `open` and closed by `close`.
    fn nested_text(depth: usize, open: &str, close: &str) -> String {
        format!("<r>{}{}</r>", open.repeat(depth), close.repeat(depth))
    }

    #[test]
    fn refuses_documents_nested_deeper_than_the_cap() {
        // The root is a level: MAX_DEPTH levels in all are read, one more is refused.
        let ok = nested_text(MAX_DEPTH - 1, "<e>", "</e>");
        assert!(parse(&ok).is_ok());
        let deep = nested_text(MAX_DEPTH, "<e>", "</e>");
        assert_eq!(
            parse(&deep).unwrap_err().message(),
            "line 1, e: the elements are nested more than 256 levels deep; no B2MML document \
             needs that many (about 20 at most), so the document is refused before it is parsed"
        );
        // Far deeper than the parser's stack would take: refused, not a stack overflow.
        let very = nested_text(100_000, "<x:e>", "</x:e>");
        assert_eq!(parse(&very).unwrap_err().kind(), "malformed-input");
    }

    #[test]
    fn the_depth_scan_follows_markup_that_opens_no_level() {
        // Self-closing tags, '>' and "/>" in quoted attributes, comments, CDATA and processing
        // instructions that look like tags: none of them opens a level.
        let noise = "<s a=\"x>y\" b='/>'/><t c='1'\n/><!-- <e><e><e> --><![CDATA[<e><e>]]>\
                     <?pi <e><e> ?>";
        let ok = format!(
            "<?xml version=\"1.0\"?><!-- <e> -->{}",
            nested_text(MAX_DEPTH - 1, &format!("<e f='>'>{noise}"), "</e>")
        );
        assert!(parse(&ok).is_ok());
        // Each level's noise holds a line feed: the level over the cap is on line 257.
        let deep = format!(
            "<?xml version=\"1.0\"?>\n{}",
            nested_text(MAX_DEPTH, &format!("<e f='>'>{noise}"), "</e>")
        );
        assert_eq!(
            parse(&deep).unwrap_err().message().split(':').next(),
            Some("line 257, e")
        );
        // What the scan cannot follow is left to the parser.
        assert!(
            parse("<r><!DOCTYPE x>")
                .unwrap_err()
                .message()
                .starts_with("not well-formed XML")
        );
        assert!(
            parse("<r><e a='")
                .unwrap_err()
                .message()
                .starts_with("not well-formed XML")
        );
    }

    #[test]
    fn the_line_index_finds_the_lines_the_parser_counts() {
        let text = "<r>\r\n<a>é</a>\n\n<b\n x='1'/><!-- \n --><c>\r\n</c>\n<d/></r>\n";
        let doc = parse(text).unwrap();
        let lines = || doc.descendants().filter(Node::is_element).map(line);
        assert_eq!(lines().collect::<Vec<_>>(), [1, 2, 4, 6, 8]);
        let _lines = LineIndex::install(text);
        assert_eq!(lines().collect::<Vec<_>>(), [1, 2, 4, 6, 8]);
        // An index of another text is not used.
        let other = parse("<r>\n<a/></r>").unwrap();
        let a = other.root_element().first_element_child().unwrap();
        assert_eq!(line(a), 2);
    }

    #[test]
    fn decode_strips_the_bom_and_rejects_what_is_not_its_encoding() {
        assert_eq!(decode(b"\xEF\xBB\xBF<a/>").unwrap(), "<a/>");
        assert_eq!(decode(b"  \n").unwrap_err().message(), "empty payload");
        assert_eq!(
            decode(b"<a>\xE9</a>").unwrap_err().message(),
            "the payload is not valid UTF-8 (the encoding of an XML document whose declaration \
             names none): the bytes at offset 3 are not a UTF-8 character"
        );
        assert_eq!(
            decode(b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>\xE9</a>").unwrap(),
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>\u{e9}</a>"
        );
    }

    #[test]
    fn values_join_their_text_around_comments_and_instructions() {
        let doc = parse(
            "<r><q>1<!-- gross 120 -->12.070</q><i>CONC<?erp x?>-CU</i><c><!-- net -->112.070</c>\
             <d> <![CDATA[11]]><!-- a --><?b?>2. <!-- c --><![CDATA[5]]> </d><e><!-- only --></e>\
             <m>A<x>B</x>C</m><n><!-- n -->A<x>B</x></n><p>112.070</p></r>",
        )
        .unwrap();
        let root = doc.root_element();
        let value = |name| text(root, name);
        assert_eq!(value("q").as_deref(), Some("112.070"));
        assert_eq!(value("i").as_deref(), Some("CONC-CU"));
        assert_eq!(value("c").as_deref(), Some("112.070"));
        assert_eq!(value("d").as_deref(), Some("112. 5"));
        assert_eq!(value("e"), None);
        assert!(matches!(value("p"), Some(Cow::Borrowed("112.070"))));
        // With child elements: the text before the first child, as before.
        assert_eq!(value("m").as_deref(), Some("A"));
        assert_eq!(value("n"), None);
        assert_eq!(
            require(root, "q").as_deref().map_err(MapError::message),
            Ok("112.070")
        );
    }

    #[test]
    fn a_lot_is_at_its_storage_location_an_actual_at_its_location() {
        let doc = parse(
            "<r><StorageLocation>BIN-3</StorageLocation>\
             <Location><EquipmentID>YARD</EquipmentID></Location></r>",
        )
        .unwrap();
        let root = doc.root_element();
        assert_eq!(lot_location(root).unwrap().as_deref(), Some("BIN-3"));
        assert_eq!(location(root).unwrap().as_deref(), Some("YARD"));
        let doc = parse("<r><Location><EquipmentID>YARD</EquipmentID></Location></r>").unwrap();
        assert_eq!(
            lot_location(doc.root_element()).unwrap().as_deref(),
            Some("YARD")
        );
    }

    #[test]
    fn a_location_that_names_no_place_is_an_error_naming_what_it_holds() {
        let doc =
            parse("<r><StorageLocation><EquipmentID>BIN-3</EquipmentID></StorageLocation></r>")
                .unwrap();
        let error = lot_location(doc.root_element())
            .unwrap_err()
            .message()
            .to_owned();
        assert!(error.contains("StorageLocation: names no place"), "{error}");
        assert!(error.contains("it holds <EquipmentID>"), "{error}");
        let doc = parse(
            "<r><Location><EquipmentElementLevel>Site</EquipmentElementLevel></Location></r>",
        )
        .unwrap();
        let error = location(doc.root_element())
            .unwrap_err()
            .message()
            .to_owned();
        assert!(error.contains("Location: names no place"), "{error}");
    }

    #[test]
    fn lookups_stay_in_the_parent_namespace() {
        let doc = parse(
            r#"<r xmlns="urn:b" xmlns:x="urn:x"><x:ID>no</x:ID><ID> yes </ID>
               <Location><EquipmentID>A</EquipmentID><Location><EquipmentID>B</EquipmentID></Location></Location>
               <HierarchyScope><EquipmentID>S</EquipmentID><HierarchyScope><EquipmentID>C</EquipmentID></HierarchyScope></HierarchyScope></r>"#,
        )
        .unwrap();
        let root = doc.root_element();
        assert_eq!(text(root, "ID").as_deref(), Some("yes"));
        assert_eq!(location(root).unwrap().as_deref(), Some("B"));
        assert_eq!(hierarchy_scope(root), ["S", "C"]);

        // V07: nested scopes are HierarchyScopeChild, a storage location is a resource
        // location whose innermost LocationChild is the most precise.
        let doc = parse(
            r#"<r xmlns="http://www.mesa.org/xml/B2MML">
               <HierarchyScope><EquipmentID>S</EquipmentID><HierarchyScopeChild><EquipmentID>C</EquipmentID></HierarchyScopeChild></HierarchyScope>
               <StorageLocation><Location>WH1</Location><LocationType>OperationalLocation</LocationType>
                 <LocationChild><Location>WH1-A-01</Location><LocationType>OperationalLocation</LocationType></LocationChild>
               </StorageLocation></r>"#,
        )
        .unwrap();
        let root = doc.root_element();
        assert_eq!(hierarchy_scope(root), ["S", "C"]);
        assert_eq!(location(root).unwrap().as_deref(), Some("WH1-A-01"));

        // Up to V0600, the Location of a schedule, request, segment, performance, response or
        // material information is its hierarchy scope (V0401's name for it), when it states no
        // HierarchyScope; a material actual's, requirement's or lot's is where the material is.
        let scope = |namespace: &str, element: &str, inside: &str| {
            let text = format!(
                r#"<{element} xmlns="{namespace}">{inside}<Location><EquipmentID>XX01</EquipmentID>
                   <Location><EquipmentID>0</EquipmentID></Location></Location></{element}>"#
            );
            hierarchy_scope(parse(&text).unwrap().root_element())
        };
        let v0401 = "http://www.wbf.org/xml/B2MML-V0401";
        for element in LOCATION_IS_SCOPE {
            assert_eq!(scope(v0401, element, ""), ["XX01", "0"], "{element}");
        }
        assert_eq!(
            scope(
                "http://www.mesa.org/xml/B2MML-V0600",
                "ProductionRequest",
                ""
            ),
            ["XX01", "0"]
        );
        assert!(scope(v0401, "MaterialActual", "").is_empty());
        assert!(scope(v0401, "MaterialLot", "").is_empty());
        assert!(scope(V07, "ProductionRequest", "").is_empty());
        let stated = "<HierarchyScope><EquipmentID>S</EquipmentID></HierarchyScope>";
        assert_eq!(scope(v0401, "ProductionRequest", stated), ["S"]);
        assert_eq!(
            require(root, "Status").unwrap_err().message(),
            "line 1, r: has no Status"
        );
    }
}
