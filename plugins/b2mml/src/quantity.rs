//! B2MML `Quantity` elements: amounts, units of measure (to UN/ECE Rec 20) and the choice of the
//! stock amount among keyed quantities. Rates (units with `/`, such as `t/h`) are never amounts.

use std::borrow::Cow;

use millrace_sdk::decimal::{self, Decimal};
use millrace_sdk::{MapError, ResultExt, config};
use roxmltree::Node;

use crate::xml;

/// Source unit → UN/ECE Rec 20 code, matched case-insensitively. Rec 20 codes themselves pass
/// through. The route key `uom.<source-unit>` overrides or extends this table.
const UNITS: &[(&str, &str)] = &[
    ("KG", "KGM"),
    ("KGM", "KGM"),
    ("G", "GRM"),
    ("GRM", "GRM"),
    ("T", "TNE"), // metric tonne, as the COCOP smelter documents write it
    ("TNE", "TNE"),
    ("LB", "LBR"),
    ("LBR", "LBR"),
    ("L", "LTR"),
    ("LTR", "LTR"),
    ("M3", "MTQ"),
    ("MTQ", "MTQ"),
    ("M", "MTR"),
    ("MTR", "MTR"),
    ("EA", "EA"),
    ("PC", "PCE"),
    ("PCE", "PCE"),
    ("C62", "C62"),
];

/// One amount read from a `Quantity` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Amount {
    /// The exact amount.
    pub(crate) value: Decimal,
    /// The Rec 20 unit code.
    pub(crate) uom: String,
    /// The `Key` of the quantity, when it has one.
    pub(crate) key: Option<String>,
}

impl Amount {
    /// The canonical quantity.
    pub(crate) fn quantity(&self) -> millrace_sdk::canonical::Quantity {
        decimal::quantity(self.value, &self.uom)
    }
}

/// Whether a quantity key marks scrap (`Scrap`, `ScrapQuantity`, ...).
pub(crate) fn is_scrap(amount: &Amount) -> bool {
    amount
        .key
        .as_deref()
        .is_some_and(|key| key.to_ascii_lowercase().contains("scrap"))
}

/// Reads every `Quantity` child of `owner` that is an amount (rates are skipped).
pub(crate) fn amounts(owner: Node<'_, '_>) -> Result<Vec<Amount>, MapError> {
    let mut amounts = Vec::new();
    for quantity in xml::children(owner, "Quantity") {
        // Only an error names the line (a message with the element, built when needed).
        let context = || xml::at(quantity);
        let unit = xml::text(quantity, "UnitOfMeasure").ok_or_else(|| {
            MapError::malformed(format!(
                "{}: has no UnitOfMeasure, so the amount cannot be mapped",
                context()
            ))
        })?;
        if unit.contains('/') {
            // A rate (t/h, kg/min) plans or reports a speed, not an amount of stock.
            continue;
        }
        let uom = rec20(&unit).ok_or_else(|| {
            MapError::malformed(format!(
                "{}: unknown unit of measure '{unit}'; map it with the route config key 'uom.{unit}'",
                context()
            ))
        })?;
        let text = xml::require(quantity, "QuantityString")?;
        let value = decimal::parse(&text, '.')
            .malformed_with(|| format!("{}/QuantityString", context()))?;
        amounts.push(Amount {
            value,
            uom,
            key: xml::text(quantity, "Key").map(Cow::into_owned),
        });
    }
    Ok(amounts)
}

/// The single amount of `owner` (ignoring rates and amounts `skip` selects); none when it has
/// none; an error when it has several, because the mapping cannot tell which one is meant.
pub(crate) fn single(
    owner: Node<'_, '_>,
    amounts: &[Amount],
    skip: impl Fn(&Amount) -> bool,
) -> Result<Option<Amount>, MapError> {
    let mut chosen = amounts.iter().filter(|amount| !skip(amount));
    let first = chosen.next().cloned();
    if chosen.next().is_some() {
        // The keys tell the operator which amounts the sender means (a planned and a
        // delivered one, say), where the sender gives them.
        let keys: Vec<String> = amounts
            .iter()
            .filter(|amount| !skip(amount))
            .filter_map(|amount| amount.key.as_deref().map(|key| format!("'{key}'")))
            .collect();
        let keys = if keys.is_empty() {
            String::new()
        } else {
            format!(" (Key {})", keys.join(", "))
        };
        return Err(MapError::rejected(format!(
            "{}: has more than one Quantity that is an amount{keys}; cannot tell which one to map",
            xml::at(owner)
        )));
    }
    Ok(first)
}

/// Maps a source unit to its Rec 20 code: the route key `uom.<unit>` first, then the table.
fn rec20(unit: &str) -> Option<String> {
    if let Some(mapped) = config::get(&format!("uom.{unit}")) {
        return Some(mapped);
    }
    UNITS
        .iter()
        .find(|(code, _)| code.eq_ignore_ascii_case(unit))
        .map(|(_, rec20)| (*rec20).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: &str) -> Result<Vec<Amount>, MapError> {
        let text = format!("<M>{body}</M>");
        let doc = xml::parse(&text).unwrap();
        amounts(doc.root_element())
    }

    #[test]
    fn maps_units_and_skips_rates() {
        config::set_for_tests([("uom.BAG", "BG")]);
        let amounts = read(
            "<Quantity><QuantityString>41.9</QuantityString><UnitOfMeasure>t/h</UnitOfMeasure></Quantity>\
             <Quantity><QuantityString>11.90</QuantityString><UnitOfMeasure>t</UnitOfMeasure><Key>ProdAmount</Key></Quantity>\
             <Quantity><QuantityString>2</QuantityString><UnitOfMeasure>BAG</UnitOfMeasure></Quantity>",
        )
        .unwrap();
        assert_eq!(amounts.len(), 2);
        assert_eq!(amounts[0].quantity().amount, "11.9");
        assert_eq!(amounts[0].uom, "TNE");
        assert_eq!(amounts[0].key.as_deref(), Some("ProdAmount"));
        assert_eq!(amounts[1].uom, "BG");
    }

    #[test]
    fn errors_name_the_quantity() {
        config::set_for_tests([("site", "X")]);
        assert_eq!(
            read("<Quantity><QuantityString>1</QuantityString><UnitOfMeasure>BOX</UnitOfMeasure></Quantity>")
                .unwrap_err()
                .message(),
            "line 1, Quantity: unknown unit of measure 'BOX'; map it with the route config key 'uom.BOX'"
        );
        assert_eq!(
            read("<Quantity><QuantityString>1</QuantityString></Quantity>")
                .unwrap_err()
                .message(),
            "line 1, Quantity: has no UnitOfMeasure, so the amount cannot be mapped"
        );
        assert_eq!(
            read("<Quantity><QuantityString>1e3</QuantityString><UnitOfMeasure>KG</UnitOfMeasure></Quantity>")
                .unwrap_err()
                .message(),
            "line 1, Quantity/QuantityString: '1e3' is not a decimal number"
        );
    }

    #[test]
    fn single_refuses_ambiguous_amounts() {
        config::set_for_tests([("site", "X")]);
        let text = "<M><Quantity><QuantityString>1</QuantityString><UnitOfMeasure>KG</UnitOfMeasure></Quantity>\
                    <Quantity><QuantityString>2</QuantityString><UnitOfMeasure>KG</UnitOfMeasure><Key>Scrap</Key></Quantity></M>";
        let doc = xml::parse(text).unwrap();
        let owner = doc.root_element();
        let amounts = amounts(owner).unwrap();
        assert_eq!(
            single(owner, &amounts, is_scrap).unwrap().unwrap().value,
            Decimal::from(1)
        );
        assert_eq!(
            single(owner, &amounts, |_| false).unwrap_err().kind(),
            "rejected-by-rule"
        );
    }
}
