//! Parsing the payload and reading B2MML elements: namespace-aware lookups, trimmed text and
//! the line of every element for error messages.

use std::borrow::Cow;

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

/// Parses the text as XML; a syntax error names its line and column.
pub(crate) fn parse(text: &str) -> Result<Document<'_>, MapError> {
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

/// The 1-based line and column just past the last character of `text`.
fn end_position(text: &str) -> (usize, usize) {
    let line = text.matches('\n').count() + 1;
    let last = text.rsplit('\n').next().unwrap_or("");
    (line, last.chars().count() + 1)
}

/// The 1-based line an element starts on. Finding it reads the document from its start, so it
/// is for naming an error, never for every element of a large document.
pub(crate) fn line(node: Node<'_, '_>) -> u32 {
    node.document().text_pos_at(node.range().start).row
}

/// The error context `line <n>, <Element>` for an element.
pub(crate) fn at(node: Node<'_, '_>) -> String {
    format!("line {}, {}", line(node), node.tag_name().name())
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

/// The child elements of `node` named `name` in `node`'s own namespace (B2MML children share
/// their parent's namespace; extension elements in other namespaces are skipped).
pub(crate) fn children<'a, 'input: 'a>(
    node: Node<'a, 'input>,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'input>> + 'a {
    named(node.children(), name, node.tag_name().namespace())
}

/// The elements under `node`, at any depth, named `name` in `node`'s own namespace.
pub(crate) fn descendants<'a, 'input: 'a>(
    node: Node<'a, 'input>,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'input>> + 'a {
    named(node.descendants(), name, node.tag_name().namespace())
}

/// The first child element named `name`.
pub(crate) fn child<'a, 'input>(node: Node<'a, 'input>, name: &str) -> Option<Node<'a, 'input>> {
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
/// elements keeps to the text before its first child, whatever stands there.
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

/// The equipment ids of the element's `HierarchyScope` (outermost first, nested scopes after:
/// `HierarchyScope`, in V07 `HierarchyScopeChild`), for the `site.<equipment-id>` route
/// configuration lookup.
pub(crate) fn hierarchy_scope(node: Node<'_, '_>) -> Vec<String> {
    let mut ids = Vec::new();
    let mut scope = child(node, "HierarchyScope");
    while let Some(current) = scope {
        if let Some(id) = text(current, "EquipmentID") {
            ids.push(id.into_owned());
        }
        scope = nested(current, "HierarchyScope", "HierarchyScopeChild").next();
    }
    ids
}

/// Where a material actual is: the equipment id of its `Location`, else its `StorageLocation`
/// (see [`equipment_location`], [`storage_location`]).
pub(crate) fn location(node: Node<'_, '_>) -> Option<String> {
    equipment_location(node).or_else(|| storage_location(node))
}

/// Where a material lot or sub-lot is: its `StorageLocation` (the storage place, a bin or a
/// silo), else the equipment id of its `Location` (the equipment hierarchy it sits in).
pub(crate) fn lot_location(node: Node<'_, '_>) -> Option<String> {
    storage_location(node).or_else(|| equipment_location(node))
}

/// The equipment id of the element's `Location` (the innermost nested one that has one).
fn equipment_location(node: Node<'_, '_>) -> Option<String> {
    let mut found = None;
    let mut location = child(node, "Location");
    while let Some(current) = location {
        if let Some(id) = text(current, "EquipmentID") {
            found = Some(id.into_owned());
        }
        location = child(current, "Location");
    }
    found
}

/// The element's `StorageLocation`: text up to V0600, in V07 a resource location whose
/// `Location` names it (the innermost of its `LocationChild`ren).
fn storage_location(node: Node<'_, '_>) -> Option<String> {
    let storage = child(node, "StorageLocation")?;
    if let Some(text) = own_text(storage) {
        return Some(text.into_owned());
    }
    let mut found = None;
    let mut resource = Some(storage);
    while let Some(current) = resource {
        found = text(current, "Location").map(Cow::into_owned).or(found);
        resource = child(current, "LocationChild");
    }
    found
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
        assert_eq!(lot_location(root).as_deref(), Some("BIN-3"));
        assert_eq!(location(root).as_deref(), Some("YARD"));
        let doc = parse("<r><Location><EquipmentID>YARD</EquipmentID></Location></r>").unwrap();
        assert_eq!(lot_location(doc.root_element()).as_deref(), Some("YARD"));
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
        assert_eq!(location(root).as_deref(), Some("B"));
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
        assert_eq!(location(root).as_deref(), Some("WH1-A-01"));
        assert_eq!(
            require(root, "Status").unwrap_err().message(),
            "line 1, r: has no Status"
        );
    }
}
