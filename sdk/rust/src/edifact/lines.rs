//! What EANCOM messages with item lines (DESADV, RECADV, INVRPT) share: the header before the
//! first line, the line groups, qualified segments, and a line's quantity, batch and serials.

use super::{Interchange, Message, Segment};
use crate::canonical::Quantity;
use crate::{MapError, ResultExt};

/// The first of `segments` with tag `tag` and one of `qualifiers` (its first component), in the
/// order of `qualifiers`: `qualified(&header, "DTM", &["11", "137"])` is the despatch date, else
/// the document date.
pub fn qualified<'a, 'b>(
    segments: &[&'a Segment<'b>],
    tag: &str,
    qualifiers: &[&str],
) -> Option<&'a Segment<'b>> {
    qualifiers.iter().find_map(|qualifier| {
        segments
            .iter()
            .copied()
            .find(|s| s.tag == tag && s.value(1, 1) == *qualifier)
    })
}

/// [`qualified`] for a message header, where a document states each of its dates and parties
/// once: the first of `segments` with tag `tag` and one of `qualifiers` (in their order), and an
/// error naming both when that qualifier is stated again with other contents (two despatch
/// dates, two suppliers): which one holds cannot be told, and taking the first would be a guess.
/// A repeat with the same contents is the same statement and is accepted, as a header's repeated
/// order reference is ([`HeaderReference`]).
pub fn qualified_once<'a, 'b>(
    segments: &[&'a Segment<'b>],
    tag: &str,
    qualifiers: &[&str],
) -> Result<Option<&'a Segment<'b>>, MapError> {
    let Some(first) = qualified(segments, tag, qualifiers) else {
        return Ok(None);
    };
    let qualifier = first.value(1, 1);
    let differs = segments
        .iter()
        .copied()
        .find(|s| s.tag == tag && s.value(1, 1) == qualifier && !same_contents(s, first));
    if let Some(other) = differs {
        return Err(MapError::malformed(format!(
            "{}: the header states {tag} {qualifier} twice, differently ('{}', then '{}' in {}); \
             which one holds cannot be told",
            first.at(),
            written(first),
            written(other),
            other.at()
        )));
    }
    Ok(Some(first))
}

/// Whether two segments state the same: each component alike, but for surrounding blanks.
fn same_contents(a: &Segment<'_>, b: &Segment<'_>) -> bool {
    let trimmed = |s: &Segment<'_>| {
        let mut parts: Vec<(usize, String)> = s
            .components
            .iter()
            .map(|(element, text)| (*element, text.trim().to_owned()))
            .collect();
        // Trailing empty components say nothing.
        while parts.last().is_some_and(|(_, text)| text.is_empty()) {
            parts.pop();
        }
        parts
    };
    a.tag == b.tag && trimmed(a) == trimmed(b)
}

/// A segment as written with the default separators, for error messages: `DTM+11:20260714:102`.
fn written(segment: &Segment<'_>) -> String {
    let mut text = segment.tag.to_string();
    let mut last = None;
    for (element, component) in &segment.components {
        text.push(if last == Some(*element) { ':' } else { '+' });
        text.push_str(component);
        last = Some(*element);
    }
    text
}

/// The one segment of `segments` with tag `tag` and qualifier `qualifier` (its first component),
/// `None` when there is none. Two are an error naming both: a line stating its despatch
/// quantity, order or expiry twice cannot be booked with one of them.
pub fn sole<'a, 'b>(
    segments: &[&'a Segment<'b>],
    tag: &str,
    qualifier: &str,
) -> Result<Option<&'a Segment<'b>>, MapError> {
    let (first, second) = first_two(segments, tag, qualifier);
    if let (Some(first), Some(second)) = (first, second) {
        return Err(MapError::malformed(format!(
            "{}: {tag} {qualifier} is stated twice ('{}', then '{}' in {}); which one holds \
             cannot be told: send one line (or sub-line) per quantity, batch or order",
            first.at(),
            first.value(1, 2),
            second.value(1, 2),
            second.at()
        )));
    }
    Ok(first)
}

/// The first two segments of `segments` with tag `tag` and qualifier `qualifier`.
fn first_two<'a, 'b>(
    segments: &[&'a Segment<'b>],
    tag: &str,
    qualifier: &str,
) -> (Option<&'a Segment<'b>>, Option<&'a Segment<'b>>) {
    let mut found = segments
        .iter()
        .copied()
        .filter(|s| s.tag == tag && s.value(1, 1) == qualifier);
    (found.next(), found.next())
}

/// The `QTY` segment of `qualifier` in a line group (`LIN` and the segments after it); an error
/// names the line and `what` the quantity is ("despatch quantity") when the line has none, and
/// both segments when it has two.
pub fn line_qty<'a, 'b>(
    line: &[&'a Segment<'b>],
    qualifier: &str,
    what: &str,
) -> Result<&'a Segment<'b>, MapError> {
    let Some(lin) = line.first() else {
        return Err(MapError::malformed("an empty LIN group"));
    };
    sole(line, "QTY", qualifier)?.ok_or_else(|| {
        MapError::malformed(format!(
            "{}: the line has no {what} (QTY {qualifier})",
            lin.at()
        ))
    })
}

/// The header's references of one kind (`RFF+ON` orders), for the lines that state none of
/// their own. A despatch advice may cover several orders in its header; then only the lines can
/// say which is theirs, and a line that does not is an error rather than given the first.
pub struct HeaderReference<'a, 'b> {
    found: Vec<&'a Segment<'b>>,
}

impl<'a, 'b> HeaderReference<'a, 'b> {
    /// The header's `RFF` segments of the first of `qualifiers` it states.
    pub fn of(header: &[&'a Segment<'b>], qualifiers: &[&str]) -> Self {
        let found = qualifiers
            .iter()
            .map(|q| {
                header
                    .iter()
                    .copied()
                    .filter(|s| s.tag == "RFF" && s.value(1, 1) == *q)
                    .filter(|s| !s.value(1, 2).trim().is_empty())
                    .collect::<Vec<_>>()
            })
            .find(|found| !found.is_empty())
            .unwrap_or_default();
        Self { found }
    }

    /// The line's own reference of `qualifiers` (the first it states, once), else the header's
    /// when it states one; an error when the header states several different ones.
    pub fn for_line(
        &self,
        line: &[&Segment<'_>],
        qualifiers: &[&str],
    ) -> Result<Option<String>, MapError> {
        match own_reference(line, qualifiers)? {
            Some(own) => Ok(Some(own)),
            None => self.of_header(line, qualifiers),
        }
    }

    /// [`HeaderReference::for_line`] for a line in a packed message (DESADV, RECADV): the
    /// line's own reference, else the one marked on the package it lies in or the nearest
    /// package above ([`Packaging::reference`]), else the header's. A package's `PCI`-`RFF`
    /// group names what the goods in it are for: a pallet built for one order.
    pub fn for_packed_line(
        &self,
        line: &[&Segment<'_>],
        packaging: &Packaging<'_>,
        qualifiers: &[&str],
    ) -> Result<Option<String>, MapError> {
        if let Some(own) = own_reference(line, qualifiers)? {
            return Ok(Some(own));
        }
        if let Some(package) = packaging.reference(line, qualifiers)? {
            return Ok(Some(package));
        }
        self.of_header(line, qualifiers)
    }

    /// The header's reference, for `line`; an error when the header states several different
    /// ones.
    fn of_header(
        &self,
        line: &[&Segment<'_>],
        qualifiers: &[&str],
    ) -> Result<Option<String>, MapError> {
        let Some(first) = self.found.first() else {
            return Ok(None);
        };
        let value = first.value(1, 2).trim();
        if let Some(other) = self.found.iter().find(|s| s.value(1, 2).trim() != value) {
            return Err(MapError::malformed(format!(
                "{}: the line has no RFF {} of its own, and the header names two ('{value}' in \
                 {}, '{}' in {}); which one the line belongs to cannot be told",
                line.first().map_or_else(|| first.at(), |lin| lin.at()),
                qualifiers.join(", "),
                first.at(),
                other.value(1, 2).trim(),
                other.at()
            )));
        }
        Ok(Some(value.to_owned()))
    }
}

/// The line's own reference of `qualifiers`: the first it states (once), `None` when it states
/// none with a value.
fn own_reference(line: &[&Segment<'_>], qualifiers: &[&str]) -> Result<Option<String>, MapError> {
    for qualifier in qualifiers {
        if let Some(own) = sole(line, "RFF", qualifier)? {
            let value = own.value(1, 2).trim();
            if !value.is_empty() {
                return Ok(Some(value.to_owned()));
            }
        }
    }
    Ok(None)
}

impl<'b> Message<'b> {
    /// The message header: its segments before the first item line (`LIN`) or packaging level
    /// (`CPS`).
    pub fn header(&self) -> Vec<&Segment<'b>> {
        self.segments
            .iter()
            .take_while(|s| s.tag != "CPS" && s.tag != "LIN")
            .collect()
    }

    /// Every `LIN` with the segments after it, up to the next `LIN`, packaging level (`CPS`),
    /// control total (`CNT`) or section separator (`UNS`); lines that sub-lines break down too.
    fn groups(&self) -> Vec<Vec<&Segment<'b>>> {
        let mut groups: Vec<Vec<&Segment<'b>>> = Vec::new();
        let mut in_line = false;
        for segment in &self.segments {
            match segment.tag.as_ref() {
                "LIN" => {
                    groups.push(vec![segment]);
                    in_line = true;
                }
                "CPS" | "CNT" | "UNS" => in_line = false,
                _ if in_line => {
                    if let Some(group) = groups.last_mut() {
                        group.push(segment);
                    }
                }
                _ => {}
            }
        }
        groups
    }

    /// The item lines: each `LIN` with the segments after it, up to the next `LIN`, packaging
    /// level (`CPS`), control total (`CNT`) or section separator (`UNS`). A line that sub-lines
    /// break down is left out ([`Message::split_lines`]): its sub-lines carry its quantity, and
    /// each takes the references (`RFF`) and dates (`DTM`, an expiry) of the kinds it does not
    /// state itself from the line it splits, and so on up the split (a sub-line of a sub-line
    /// takes its grandparent's order): the nearest line stating a kind gives it. They follow the
    /// sub-line's own segments, nearest first.
    pub fn lines(&self) -> Result<Vec<Vec<&Segment<'b>>>, MapError> {
        self.lines_of(&self.groups())
    }

    /// [`Message::lines`] of `groups`, the message's [`Message::groups`].
    fn lines_of<'m>(
        &'m self,
        groups: &[Vec<&'m Segment<'b>>],
    ) -> Result<Vec<Vec<&'m Segment<'b>>>, MapError> {
        let split = self.split_lines()?;
        let parents: std::collections::BTreeMap<&str, &Vec<&Segment<'b>>> = groups
            .iter()
            .filter(|g| split.contains(line_number(g)))
            .map(|g| (line_number(g), g))
            .collect();
        let mut lines = Vec::new();
        for group in groups {
            if split.contains(line_number(group)) {
                continue;
            }
            let mut line = group.clone();
            // Up the split, nearest first. A parent always stands before its sub-line (else
            // `split_lines` refused the message), so the walk ends; the bound is a guard.
            let mut parent = sub_line_of(group).and_then(|p| parents.get(p));
            let mut steps = 0;
            while let Some(above) = parent
                && steps < groups.len()
            {
                let stated: std::collections::BTreeSet<(&str, &str)> = line
                    .iter()
                    .filter(|s| s.tag == "RFF" || s.tag == "DTM")
                    .map(|s| (s.tag.as_ref(), s.value(1, 1)))
                    .collect();
                line.extend(above.iter().copied().filter(|s| {
                    (s.tag == "RFF" || s.tag == "DTM")
                        && !stated.contains(&(s.tag.as_ref(), s.value(1, 1)))
                }));
                parent = sub_line_of(above).and_then(|p| parents.get(p));
                steps += 1;
            }
            lines.push(line);
        }
        Ok(lines)
    }

    /// The line numbers (`LIN` 1082) of the lines that sub-lines break down. A sub-line is a
    /// `LIN` whose C829 says `1` (sub-line information) and names its parent line: a batch split
    /// (`LIN+1++4000862141404:SRV'QTY+12:100'` then `LIN+2++4000862141404:SRV+1:1'QTY+12:60'`
    /// and `LIN+3++…+1:1'QTY+12:40'`) ships 100, not 200, so the parent's own quantity must
    /// not count beside its sub-lines'. A sub-line of another item than its parent (a
    /// configured item and its components) is `unsupported-document`: which of them is stock
    /// is the partner's convention, and guessing it would count goods twice or not at all. A
    /// sub-line of a line the message does not have before it is `malformed-input`, and so is a
    /// line number used twice: a sub-line could not say which line it splits.
    pub fn split_lines(&self) -> Result<std::collections::BTreeSet<&str>, MapError> {
        let mut items: std::collections::BTreeMap<&str, (&str, &Segment<'b>, usize)> =
            Default::default();
        let mut split = std::collections::BTreeSet::new();
        for lin in self.segments.iter().filter(|s| s.tag == "LIN") {
            let (number, item) = (lin.value(1, 1).trim(), lin.value(3, 1).trim());
            let mut depth = 0;
            if let Some(parent) = sub_line_of(&[lin]) {
                let Some((parent_item, _, parent_depth)) = items.get(parent) else {
                    return Err(MapError::malformed(format!(
                        "{}: line {number} is a sub-line of line '{parent}', which the message \
                         does not have before it",
                        lin.at()
                    )));
                };
                if !item.is_empty() && !parent_item.is_empty() && item != *parent_item {
                    return Err(MapError::unsupported(format!(
                        "{}: line {number} (item {item}) is a sub-line of line {parent} (item \
                         {parent_item}): a configured item with its components is not mapped; \
                         sub-lines are read only as a split of their parent's item (by batch, \
                         for example)",
                        lin.at()
                    )));
                }
                depth = parent_depth + 1;
                if depth > MAX_SPLIT_DEPTH {
                    return Err(MapError::malformed(format!(
                        "{}: line {number} is a sub-line {depth} levels below its top line; a \
                         split nests at most {MAX_SPLIT_DEPTH} levels",
                        lin.at()
                    )));
                }
                split.insert(parent);
            }
            if let Some((_, earlier, _)) = items.insert(number, (item, lin, depth))
                && !number.is_empty()
            {
                return Err(MapError::malformed(format!(
                    "{}: line number {number} is used twice (first in {}); each LIN needs its own \
                     number, or a sub-line cannot say which line it splits",
                    lin.at(),
                    earlier.at()
                )));
            }
        }
        Ok(split)
    }

    /// The beginning of message (`BGM`) in `header`; an error names the message when there is
    /// none.
    pub fn beginning<'a>(&self, header: &[&'a Segment<'b>]) -> Result<&'a Segment<'b>, MapError> {
        header
            .iter()
            .copied()
            .find(|s| s.tag == "BGM")
            .ok_or_else(|| {
                MapError::malformed(format!(
                    "message {} (segment {}): there is no BGM segment",
                    self.reference, self.position
                ))
            })
    }
}

/// The packaging levels (`CPS`) of a DESADV or RECADV and the level each line lies in: the
/// package a line's goods lie in (its SSCC), and the batch and references (its order) marked on
/// it.
pub struct Packaging<'m> {
    /// Per level id (`CPS` 7164): its parent and its own segments (those before its first
    /// `LIN`: `PAC`, `PCI`, `GIN`...).
    levels: std::collections::BTreeMap<&'m str, (Option<&'m str>, Vec<&'m Segment<'m>>)>,
    /// Per line, by the position of its `LIN`: the level it follows.
    line_level: std::collections::BTreeMap<usize, &'m str>,
}

impl<'m> Packaging<'m> {
    /// Reads the levels; a level whose id repeats, or whose parent is no earlier level, is an
    /// error: which package a line lies in could not be told. (The header, before the first
    /// `CPS` or `LIN`, belongs to no level.)
    pub fn read(message: &'m Message<'m>) -> Result<Self, MapError> {
        let mut packaging = Self {
            levels: std::collections::BTreeMap::new(),
            line_level: std::collections::BTreeMap::new(),
        };
        let (mut level, mut in_line) = (None, false);
        for segment in &message.segments {
            match segment.tag.as_ref() {
                "CPS" => {
                    let (id, parent) = (segment.value(1, 1).trim(), segment.value(2, 1).trim());
                    let parent = (!parent.is_empty()).then_some(parent);
                    if let Some(parent) = parent
                        && !packaging.levels.contains_key(parent)
                    {
                        return Err(MapError::malformed(format!(
                            "{}: packaging level {id} names parent level {parent}, which no CPS \
                             before it has",
                            segment.at()
                        )));
                    }
                    if packaging.levels.insert(id, (parent, Vec::new())).is_some() {
                        return Err(MapError::malformed(format!(
                            "{}: packaging level {id} is given twice (CPS 7164); which package \
                             its lines lie in cannot be told",
                            segment.at()
                        )));
                    }
                    (level, in_line) = (Some(id), false);
                }
                "LIN" => {
                    if let Some(level) = level {
                        packaging.line_level.insert(segment.position, level);
                    }
                    in_line = true;
                }
                "CNT" | "UNS" => (level, in_line) = (None, false),
                _ if !in_line => {
                    if let Some((_, segments)) = level.and_then(|id| packaging.levels.get_mut(id)) {
                        segments.push(segment);
                    }
                }
                _ => {}
            }
        }
        Ok(packaging)
    }

    /// The id and segments of the level `line` (a line group) lies in, then of each level
    /// above it.
    fn around(&self, line: &[&Segment]) -> Vec<(&'m str, &[&'m Segment<'m>])> {
        let mut id = line
            .first()
            .and_then(|lin| self.line_level.get(&lin.position).copied());
        let mut found = Vec::new();
        // Each level's parent is an earlier level (`read` refused any other), so the walk
        // ends; the bound is a guard.
        while let Some(level) = id
            && found.len() <= self.levels.len()
            && let Some((parent, segments)) = self.levels.get(level)
        {
            found.push((level, segments.as_slice()));
            id = *parent;
        }
        found
    }

    /// The reference of `qualifiers` marked on the package `line` lies in (the `RFF` of its
    /// `PCI` group: `PCI+33E'RFF+ON:4500000002'`), else on the nearest package above it (an
    /// order marked at the consignment level covers every pallet in it); at one level, the
    /// first of `qualifiers` it states. `None` when no package around the line names one. A
    /// level naming two different references of that kind is an error for a line naming none:
    /// which one its goods are for cannot be told.
    pub fn reference(
        &self,
        line: &[&Segment],
        qualifiers: &[&str],
    ) -> Result<Option<String>, MapError> {
        for (n, (level, segments)) in self.around(line).into_iter().enumerate() {
            let package = if n == 0 {
                format!("the package it lies in (CPS level {level})")
            } else {
                format!("a package it lies in (CPS level {level}, above its own)")
            };
            for qualifier in qualifiers {
                let mut found = segments
                    .iter()
                    .filter(|s| s.tag == "RFF" && s.value(1, 1) == *qualifier)
                    .filter(|s| !s.value(1, 2).trim().is_empty());
                let Some(first) = found.next() else {
                    continue;
                };
                let value = first.value(1, 2).trim();
                if let Some(other) = found.find(|s| s.value(1, 2).trim() != value) {
                    return Err(MapError::malformed(format!(
                        "{}: the line has no RFF {} of its own, and {package} names two RFF \
                         {qualifier} ('{value}' in {}, '{}' in {}); \
                         which one the line's goods are for cannot be told: send one packaging \
                         level per reference, or the reference in the line",
                        line.first().map_or_else(|| first.at(), |lin| lin.at()),
                        qualifiers.join(", "),
                        first.at(),
                        other.value(1, 2).trim(),
                        other.at()
                    )));
                }
                return Ok(Some(value.to_owned()));
            }
        }
        Ok(None)
    }

    /// The SSCC of the package `line` lies in: the line's own `GIN+BJ` (`PCI+33E` after the
    /// `LIN`), else its level's, else the nearest level's above it (a carton without its own
    /// label lies on its pallet). Segments naming several SSCCs (standard packs: three cartons
    /// alike, or a range) give none, since a line has one package.
    pub fn sscc(&self, line: &[&Segment]) -> Option<String> {
        std::iter::once(line)
            .chain(self.around(line).into_iter().map(|(_, segments)| segments))
            .map(ssccs)
            .find(|found| !found.is_empty())
            .and_then(|found| match found.as_slice() {
                [one] => Some((*one).to_owned()),
                _ => None,
            })
    }

    /// The batch of `line`: its own, else the one marked on the nearest package around it
    /// (`PCI+36E`, `GIN+BX` at a packaging level). A package marked with two batches is an error
    /// for a line naming none: which is its lot cannot be told.
    pub fn batch(&self, line: &[&Segment]) -> Result<Option<String>, MapError> {
        if let Some(own) = line_batch(line)? {
            return Ok(Some(own));
        }
        for (_, level) in self.around(line) {
            let mut segments = line.first().copied().into_iter().collect::<Vec<_>>();
            segments.extend(level.iter().copied());
            if let Some(batch) = line_batch(&segments)? {
                return Ok(Some(batch));
            }
        }
        Ok(None)
    }
}

/// The SSCCs the `GIN+BJ` segments of `segments` name, each once (both ends of a range).
fn ssccs<'a>(segments: &[&'a Segment]) -> Vec<&'a str> {
    let mut found = Vec::new();
    for gin in segments
        .iter()
        .filter(|s| s.tag == "GIN" && s.value(1, 1) == "BJ")
    {
        for n in 2..=6 {
            for m in 1..=2 {
                let sscc = gin.value(n, m).trim();
                if !sscc.is_empty() && !found.contains(&sscc) {
                    found.push(sscc);
                }
            }
        }
    }
    found
}

/// How many levels of sub-lines a line may be split into (a sub-line of a sub-line is two): a
/// bound on the walks up and down a split, which real documents stay far below.
const MAX_SPLIT_DEPTH: usize = 32;

/// The sub-lines of each split line, by its line number: what [`Interchange::item_lines`] adds
/// up.
struct SplitLines<'s, 'm, 'b> {
    groups: &'s std::collections::BTreeMap<&'s str, Vec<&'s [&'m Segment<'b>]>>,
}

impl<'m, 'b> SplitLines<'_, 'm, 'b> {
    /// The `QTY` of `qualifier` in `group`, `None` when it has none; an error when it has two,
    /// since which one adds up cannot be told. `sub_of` is the line `group` splits, when it is a
    /// sub-line being added up.
    fn stated_once(
        &self,
        group: &[&'m Segment<'b>],
        qualifier: &str,
        sub_of: Option<&str>,
    ) -> Result<Option<&'m Segment<'b>>, MapError> {
        match first_two(group, "QTY", qualifier) {
            (Some(first), Some(second)) => {
                let role = match sub_of {
                    Some(parent) => format!("a sub-line of line {parent}"),
                    None => "split into sub-lines".to_owned(),
                };
                Err(MapError::malformed(format!(
                    "{}: line {} ({role}) states QTY {qualifier} twice ({} and {}): it and its \
                     split cannot be checked to add up; send one quantity per line or sub-line",
                    group.first().map_or_else(|| first.at(), |lin| lin.at()),
                    line_number(group),
                    first.at(),
                    second.at()
                )))
            }
            (one, _) => Ok(one),
        }
    }

    /// What `group`, a sub-line of the line `target` names (its number and unit), counts
    /// towards that line's QTY `qualifier`: its own quantity, else the sum of its own
    /// sub-lines', else `None` when none of them states one. `Some(None)` is a sum too large to
    /// hold. A quantity in another unit than `target`'s is an error.
    fn amount(
        &self,
        interchange: &Interchange<'_>,
        group: &[&'m Segment<'b>],
        qualifier: &str,
        target: (&str, &str),
        depth: usize,
    ) -> Result<Option<Option<rust_decimal::Decimal>>, MapError> {
        let (top, unit) = target;
        let parent = sub_line_of(group).unwrap_or(top);
        if let Some(qty) = self.stated_once(group, qualifier, Some(parent))? {
            let own = interchange.quantity(qty)?;
            if own.uom != unit {
                return Err(MapError::malformed(format!(
                    "{}: line {} (a sub-line of line {parent}) states QTY {qualifier} in {}, line \
                     {top} in {unit}: they cannot be checked to add up; state the split in the \
                     line's unit",
                    group.first().map_or_else(|| qty.at(), |lin| lin.at()),
                    line_number(group),
                    own.uom
                )));
            }
            return Ok(Some(amount(&own.amount)));
        }
        // `split_lines` refused a split deeper than MAX_SPLIT_DEPTH; the bound is a guard.
        let below = match self.groups.get(line_number(group)) {
            Some(below) if depth <= MAX_SPLIT_DEPTH => below,
            _ => return Ok(None),
        };
        let mut sum: Option<Option<rust_decimal::Decimal>> = None;
        for sub in below {
            if let Some(own) = self.amount(interchange, sub, qualifier, target, depth + 1)? {
                sum = Some(match sum {
                    None => own,
                    Some(sum) => own.and_then(|own| sum?.checked_add(own)),
                });
            }
        }
        Ok(sum)
    }
}

/// A quantity's amount in the WIT decimal form (as [`Interchange::quantity`] gives it).
fn amount(text: &str) -> Option<rust_decimal::Decimal> {
    crate::decimal::parse(text, '.').ok()
}

/// The line number (`LIN` 1082) of a line group.
fn line_number<'a>(group: &[&'a Segment<'_>]) -> &'a str {
    group.first().map_or("", |lin| lin.value(1, 1).trim())
}

/// The parent line number of a sub-line group (`LIN` C829 `1:<parent>`), `None` for a line.
fn sub_line_of<'a>(group: &[&'a Segment<'_>]) -> Option<&'a str> {
    let lin = group.first()?;
    (lin.value(4, 1).trim() == "1").then(|| lin.value(4, 2).trim())
}

/// Refuses a message whose function (`BGM` 1225) withdraws what was sent before: `1`
/// cancellation, `3` deletion. Mapping it would publish the withdrawn data as live (a stock
/// balance, a receipt), and no canonical event says "withdrawn", so it is an
/// `unsupported-document` error naming the function; `what` names the message ("the inventory
/// report"). A report of levels (INVRPT) needs only this: its replacement or resend states the
/// same levels again, which changes nothing.
pub fn refuse_withdrawn(bgm: &Segment<'_>, what: &str) -> Result<(), MapError> {
    refuse_functions(bgm, what, false)
}

/// [`refuse_withdrawn`], and also a message that replaces or changes what was sent before
/// (`5`, `4`) or sends it again (`7` duplicate, `31` copy, `43` additional transmission): for
/// goods that move (a despatch, a receipt) it would book the same goods again, as a resend comes
/// in a new interchange whose identity is new. The original (`9`), a message without a function
/// and any other code are mapped.
pub fn refuse_not_original(bgm: &Segment<'_>, what: &str) -> Result<(), MapError> {
    refuse_functions(bgm, what, true)
}

fn refuse_functions(bgm: &Segment<'_>, what: &str, originals_only: bool) -> Result<(), MapError> {
    const WITHDRAWS: &str = "it withdraws what was sent before, which no canonical event can say";
    const INSTEAD: &str = "which no canonical event can say (mapped, its goods would count again \
                           beside the original's)";
    const AGAIN: &str = "it sends again what was sent before (mapped, its goods would count twice)";
    let (function, because) = match bgm.value(3, 1).trim() {
        "1" => ("a cancellation (1)", WITHDRAWS.to_owned()),
        "3" => ("a deletion (3)", WITHDRAWS.to_owned()),
        "4" if originals_only => (
            "a change (4)",
            format!("it changes what was sent before, {INSTEAD}"),
        ),
        "5" if originals_only => (
            "a replacement (5)",
            format!("it replaces what was sent before, {INSTEAD}"),
        ),
        "7" if originals_only => ("a duplicate (7)", AGAIN.to_owned()),
        "31" if originals_only => ("a copy (31)", AGAIN.to_owned()),
        "43" if originals_only => ("an additional transmission (43)", AGAIN.to_owned()),
        _ => return Ok(()),
    };
    Err(MapError::unsupported(format!(
        "{}, BGM 1225: {what} is {function}; {because}, so it is not mapped",
        bgm.at()
    )))
}

impl<'b> Interchange<'b> {
    /// The messages, each checked to be of `message_type` (`DESADV`); one of another type is an
    /// `unsupported-document` error that says it is not `what` ("a DESADV despatch advice").
    pub fn messages_of<'a>(
        &'a self,
        message_type: &'a str,
        what: &'a str,
    ) -> impl Iterator<Item = Result<&'a Message<'b>, MapError>> + 'a {
        self.messages.iter().map(move |message| {
            if message.message_type == message_type {
                Ok(message)
            } else {
                Err(MapError::unsupported(format!(
                    "message {} (segment {}) is an {} message, not {what}",
                    message.reference, message.position, message.message_type
                )))
            }
        })
    }

    /// The item lines of `message` ([`Message::lines`]), once its sub-lines are checked to add up
    /// to the lines they split, at every depth (a sub-line split again to its own sub-lines):
    /// for every quantity (qualifier) a split line states and its sub-lines state, the
    /// sub-lines' sum must be the line's. A batch split of 100 into 60 and 30 would otherwise
    /// ship 90 without a word. A sub-line that does not state the quantity counts what its own
    /// sub-lines state, else nothing. Where the sum cannot be told the message is refused, never
    /// passed unchecked: a split line stating the quantity twice (an INVRPT per location), a
    /// sub-line stating it twice, or a sub-line stating it in another unit than the line.
    pub fn item_lines<'m>(
        &self,
        message: &'m Message<'b>,
    ) -> Result<Vec<Vec<&'m Segment<'b>>>, MapError> {
        let groups = message.groups();
        let lines = message.lines_of(&groups)?;
        let mut subs: std::collections::BTreeMap<&str, Vec<&[&'m Segment<'b>]>> =
            Default::default();
        for group in &groups {
            if let Some(parent) = sub_line_of(group) {
                subs.entry(parent).or_default().push(group);
            }
        }
        let split = SplitLines { groups: &subs };
        for parent in &groups {
            let Some(direct) = subs.get(line_number(parent)) else {
                continue;
            };
            let mut qualifiers: Vec<&str> = Vec::new();
            for qty in parent.iter().filter(|s| s.tag == "QTY") {
                if !qualifiers.contains(&qty.value(1, 1)) {
                    qualifiers.push(qty.value(1, 1));
                }
            }
            for qualifier in qualifiers {
                let stated = split.stated_once(parent, qualifier, None)?;
                let Some(qty) = stated else { continue };
                let stated = self.quantity(qty)?;
                let target = (line_number(parent), stated.uom.as_str());
                let mut sum: Option<Option<rust_decimal::Decimal>> = None;
                for sub in direct {
                    if let Some(own) = split.amount(self, sub, qualifier, target, 0)? {
                        sum = Some(match sum {
                            None => own,
                            Some(sum) => own.and_then(|own| sum?.checked_add(own)),
                        });
                    }
                }
                // No sub-line states this quantity: it is not split.
                let Some(sum) = sum else { continue };
                if sum.is_none() || sum != amount(&stated.amount) {
                    return Err(MapError::malformed(format!(
                        "{}: line {} states QTY {} {} {}, its sub-lines add up to {} {}; they must \
                         add up, or the split ships another quantity than the line",
                        parent.first().map_or_else(|| qty.at(), |lin| lin.at()),
                        line_number(parent),
                        qualifier,
                        stated.amount,
                        stated.uom,
                        sum.map_or_else(|| "too much".to_owned(), crate::decimal::to_wit),
                        stated.uom
                    )));
                }
            }
        }
        Ok(lines)
    }

    /// The quantity of a `QTY` segment (`QTY+12:40:PCE`): its amount in this interchange's
    /// decimal mark, and its UN/ECE Recommendation 20 unit, `PCE` when none is given (EANCOM
    /// counts pieces then). An error names the segment and its qualifier.
    pub fn quantity(&self, qty: &Segment<'_>) -> Result<Quantity, MapError> {
        self.read_quantity(qty, false)
    }

    /// [`Interchange::quantity`] of stock, which cannot be negative: a negative amount is an
    /// error.
    pub fn stock_quantity(&self, qty: &Segment<'_>) -> Result<Quantity, MapError> {
        self.read_quantity(qty, true)
    }

    fn read_quantity(&self, qty: &Segment<'_>, not_negative: bool) -> Result<Quantity, MapError> {
        let qualifier = qty.value(1, 1);
        let amount = self
            .decimal(qty.value(1, 2))
            .malformed_at(format!("{}, QTY {qualifier} quantity", qty.at()))?;
        if not_negative && amount.starts_with('-') {
            return Err(MapError::malformed(format!(
                "{}, QTY {qualifier} quantity: '{}' is negative",
                qty.at(),
                qty.value(1, 2)
            )));
        }
        let uom = match qty.value(1, 3).trim() {
            "" => "PCE",
            unit if (1..=3).contains(&unit.len())
                && unit
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) =>
            {
                unit
            }
            unit => {
                return Err(MapError::malformed(format!(
                    "{}, QTY {qualifier} unit: '{unit}' is not a UN/ECE Recommendation 20 code",
                    qty.at()
                )));
            }
        };
        Ok(Quantity::new(amount, uom))
    }
}

/// The item number of a line group (`LIN` and the segments after it): from `LIN` 03 and the
/// `PIA` item ids, the one whose type code (e.g. `SA` supplier, `BP` buyer, `EN` EAN) is
/// `qualifier`, or the first one when no qualifier is asked for. An error names the segment.
///
/// `PIA` segments come in any order, and their function (4347) says what their ids name: `5`
/// (product identification) is the line's product, which EANCOM sends when `LIN` names none;
/// `1` (additional identification) and `12` (alternate product identification) are other
/// numbers of the same product. They are read in that order of preference, after the `LIN`
/// item number: a `PIA+1` before a `PIA+5` does not make its additional id the item. The other
/// functions name another product than the one on the line (`2` a potential substitute, `3`
/// the one substituting, `4` the one substituted, `6` successor, `7` predecessor, `8` an
/// expired number, `10` a defective part...), so their ids are never the item.
pub fn line_item(segments: &[&Segment<'_>], qualifier: Option<&str>) -> Result<String, MapError> {
    let Some(lin) = segments.first() else {
        return Err(MapError::malformed("an empty LIN group"));
    };
    // Each id with its type code and its rank: LIN first, then PIA by function.
    let mut ids: Vec<(usize, &str, &str)> = Vec::new();
    if !lin.value(3, 1).trim().is_empty() {
        ids.push((0, lin.value(3, 2), lin.value(3, 1).trim()));
    }
    let mut other_products: Vec<&Segment<'_>> = Vec::new();
    for pia in segments.iter().copied().filter(|s| s.tag == "PIA") {
        let Some(rank) = pia_rank(pia) else {
            other_products.push(pia);
            continue;
        };
        for n in 2..=6 {
            // A batch or serial number in a PIA names the units, not the item.
            if NOT_ITEM_IDS.contains(&pia.value(n, 2)) {
                continue;
            }
            if !pia.value(n, 1).trim().is_empty() {
                ids.push((rank, pia.value(n, 2), pia.value(n, 1).trim()));
            }
        }
    }
    // Stable: within a rank, the order of the message.
    ids.sort_by_key(|(rank, _, _)| *rank);
    let found = match qualifier {
        Some(q) => ids.iter().find(|(_, k, _)| *k == q),
        None => ids.first(),
    };
    found.map(|(_, _, id)| (*id).to_owned()).ok_or_else(|| {
        let mut reason = match qualifier {
            Some(q) => format!(
                "{}: the line has no item number with qualifier '{q}' (route config item-qualifier)",
                lin.at()
            ),
            None => format!("{}: the line has no item number", lin.at()),
        };
        if let Some(pia) = other_products.first() {
            reason.push_str(&format!(
                " (the PIA {} in {} names another product than the line's, not its item)",
                pia.value(1, 1).trim(),
                pia.at()
            ));
        }
        MapError::malformed(reason)
    })
}

/// The preference of a `PIA`'s ids as the line's item number, by its function (4347): `5`
/// product identification, then `1` additional identification, then `12` alternate product
/// identification (and a `PIA` without a function, read as before this was told); `None` for a
/// function naming another product (a substitute, a successor, a defective part...).
fn pia_rank(pia: &Segment<'_>) -> Option<usize> {
    match pia.value(1, 1).trim() {
        "5" => Some(1),
        "1" => Some(2),
        "12" | "" => Some(3),
        _ => None,
    }
}

/// `PIA` item number types (7143) that are not item numbers: batch (`NB`) and serial (`SN`).
const NOT_ITEM_IDS: [&str; 2] = ["NB", "SN"];

/// Whether a `PIA` speaks of the line's own product ([`pia_rank`]): its batch numbers are the
/// line's, those of a substitute or successor are not.
fn pia_of_the_line(pia: &Segment<'_>) -> bool {
    pia_rank(pia).is_some()
}

/// The batch (lot) number of a line group (`LIN` and the segments after it), read from every
/// place EANCOM and partners put it: `GIN+BX` (batch identity numbers), the marks of a `PCI+36E`
/// (marked with batch number), `RFF+BT` (batch number reference), `GIR` identity numbers
/// qualified `BX`, and `PIA` item numbers of type `NB` (of a `PIA` naming the line's product,
/// function `5`, `1` or `12`, not a substitute's or successor's). `None` when the line names no
/// batch.
///
/// A line naming two different batches is an error: its quantity cannot be given to one lot,
/// and picking one would book stock to the wrong lot. Split such lines per batch.
pub fn line_batch(segments: &[&Segment<'_>]) -> Result<Option<String>, MapError> {
    let mut found: Vec<(&str, &Segment<'_>, &str)> = Vec::new();
    let mut add = |value, segment, place| {
        let value: &str = str::trim(value);
        if !value.is_empty() {
            found.push((value, segment, place));
        }
    };
    for &segment in segments {
        match segment.tag.as_ref() {
            "GIN" if segment.value(1, 1) == "BX" => {
                for n in 2..=6 {
                    add(segment.value(n, 1), segment, "GIN BX");
                    // A range of batches (C208 first:last): two lots, as two ids are.
                    add(segment.value(n, 2), segment, "GIN BX range");
                }
            }
            "PCI" if segment.value(1, 1) == "36E" => {
                for m in 1..=10 {
                    add(segment.value(2, m), segment, "PCI 36E marks");
                }
            }
            "RFF" if segment.value(1, 1) == "BT" => add(segment.value(1, 2), segment, "RFF BT"),
            "GIR" => {
                for n in 2..=6 {
                    if segment.value(n, 2) == "BX" {
                        add(segment.value(n, 1), segment, "GIR BX");
                    }
                }
            }
            "PIA" if pia_of_the_line(segment) => {
                for n in 2..=6 {
                    if segment.value(n, 2) == "NB" {
                        add(segment.value(n, 1), segment, "PIA NB");
                    }
                }
            }
            _ => {}
        }
    }
    let Some((batch, first, first_place)) = found.first() else {
        return Ok(None);
    };
    if let Some((other, segment, place)) = found.iter().find(|(b, _, _)| b != batch) {
        return Err(MapError::malformed(format!(
            "{}: the line names two batches, '{batch}' ({first_place}, {}) and '{other}' ({place}, \
             {}); its quantity cannot be booked to one lot: send one line per batch",
            segments.first().map_or_else(|| first.at(), |lin| lin.at()),
            first.at(),
            segment.at()
        )));
    }
    Ok(Some((*batch).to_owned()))
}

/// Most serial numbers one `GIN+BN` range may stand for.
const MAX_SERIAL_RANGE: u64 = 1000;

/// The serial numbers of a line group: the identity numbers of its `GIN+BN` segments and those
/// of its `GIR` segments qualified `BN`. A `GIN` composite with two numbers (C208
/// `SN0001:SN0010`) is a range, first to last (EANCOM), and stands for every number in it when
/// both share a prefix and a numeric tail of one width, up to 1,000 numbers; another range is an
/// error naming it, never its first number alone. A serial number listed twice is an error: one
/// unit cannot ship twice, and the count would no longer match the quantity.
pub fn line_serials(segments: &[&Segment<'_>]) -> Result<Vec<String>, MapError> {
    let mut serials: Vec<(String, &Segment<'_>)> = Vec::new();
    for &segment in segments {
        match segment.tag.as_ref() {
            "GIN" if segment.value(1, 1) == "BN" => {
                for n in 2..=6 {
                    let (first, last) = (segment.value(n, 1).trim(), segment.value(n, 2).trim());
                    if first.is_empty() {
                        continue;
                    }
                    if last.is_empty() || last == first {
                        serials.push((first.to_owned(), segment));
                        continue;
                    }
                    let range = serial_range(first, last).ok_or_else(|| {
                        MapError::malformed(format!(
                            "{}: the serial number range '{first}' to '{last}' cannot be listed: \
                             its ends must share a prefix and a numeric tail of one width, first \
                             to last, at most {MAX_SERIAL_RANGE} numbers",
                            segment.at()
                        ))
                    })?;
                    serials.extend(range.into_iter().map(|serial| (serial, segment)));
                }
            }
            "GIR" => {
                for n in 2..=6 {
                    let serial = segment.value(n, 1).trim();
                    if segment.value(n, 2) == "BN" && !serial.is_empty() {
                        serials.push((serial.to_owned(), segment));
                    }
                }
            }
            _ => {}
        }
    }
    let mut seen = std::collections::BTreeMap::new();
    for (serial, segment) in &serials {
        if let Some(earlier) = seen.insert(serial.as_str(), *segment) {
            return Err(MapError::malformed(format!(
                "{}: serial number '{serial}' is listed twice in the line (first in {}); one unit \
                 cannot ship twice",
                segment.at(),
                earlier.at()
            )));
        }
    }
    Ok(serials.into_iter().map(|(serial, _)| serial).collect())
}

/// The numbers from `first` to `last`, when they are `<prefix><digits>` with one prefix and one
/// width, in order and at most [`MAX_SERIAL_RANGE`] of them.
fn serial_range(first: &str, last: &str) -> Option<Vec<String>> {
    let ((prefix, from), (other, to)) = (digits_tail(first), digits_tail(last));
    if prefix != other || from.is_empty() || from.len() != to.len() || from.len() > 18 {
        return None;
    }
    let (from, to): (u64, u64) = (from.parse().ok()?, to.parse().ok()?);
    if to < from || to - from >= MAX_SERIAL_RANGE {
        return None;
    }
    let width = first.len() - prefix.len();
    Some(
        (from..=to)
            .map(|n| format!("{prefix}{n:0width$}"))
            .collect(),
    )
}

/// `text` split before its trailing ASCII digits.
fn digits_tail(text: &str) -> (&str, &str) {
    let tail = text.len() - text.bytes().rev().take_while(u8::is_ascii_digit).count();
    text.split_at(tail)
}
