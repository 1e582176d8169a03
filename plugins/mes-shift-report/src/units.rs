//! The legacy MES unit codes and their UN/ECE Recommendation 20 equivalents.

/// Legacy code → UN/ECE Rec 20 code. The MES writes units in upper case; lower case is accepted.
const UNITS: &[(&str, &str)] = &[
    ("EA", "EA"),  // each
    ("PC", "PCE"), // piece
    ("ST", "PCE"), // Stück (piece), from the German MES installations
    ("G", "GRM"),
    ("KG", "KGM"),
    ("T", "TNE"), // metric tonne
    ("MM", "MMT"),
    ("CM", "CMT"),
    ("M", "MTR"),
    ("M2", "MTK"),
    ("M3", "MTQ"),
    ("ML", "MLT"),
    ("L", "LTR"),
];

/// Returns the UN/ECE Rec 20 code for a legacy unit code, or none when the code is unknown.
pub(crate) fn rec20(legacy: &str) -> Option<&'static str> {
    UNITS
        .iter()
        .find(|(code, _)| code.eq_ignore_ascii_case(legacy))
        .map(|(_, rec20)| *rec20)
}

#[cfg(test)]
mod tests {
    use super::rec20;

    #[test]
    fn maps_known_codes() {
        assert_eq!(rec20("PC"), Some("PCE"));
        assert_eq!(rec20("kg"), Some("KGM"));
        assert_eq!(rec20("M"), Some("MTR"));
        assert_eq!(rec20("BOX"), None);
        assert_eq!(rec20(""), None);
    }
}
