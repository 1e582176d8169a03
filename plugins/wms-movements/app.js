// wms-movements: a WMS stock movement journal (CSV with a header row) to inventory-movement
// events, one per data row, in file order. See README.md for the columns, codes and config.

import { MapError, config, decimal, events, log, malformedAt, text, timestamp } from '../../sdk/js/src/millrace.js';

const COLUMNS = [
  'seq', 'movement_id', 'posted_at', 'warehouse', 'movement_code', 'item', 'quantity', 'uom',
  'lot', 'serials', 'from_bin', 'to_bin', 'stock_status', 'reference',
];

// WMS movement codes: the canonical movement type and which bins it needs.
const MOVEMENTS = {
  GR: { type: 'receipt', needs: ['to_bin'] },
  GI: { type: 'issue', needs: ['from_bin'] },
  TR: { type: 'transfer', needs: ['from_bin', 'to_bin'] },
  ADJ: { type: 'adjustment', needs: [] },
  SCR: { type: 'scrap', needs: ['from_bin'] },
};

const STOCK_STATUS = { AV: 'unrestricted', QI: 'quality-inspection', BL: 'blocked', IT: 'in-transit' };

// WMS units to UN/ECE Recommendation 20 codes.
const UNITS = { EA: 'EA', PC: 'PCE', PCS: 'PCE', KG: 'KGM', G: 'GRM', T: 'TNE', L: 'LTR', ML: 'MLT', M: 'MTR', M2: 'MTK', M3: 'MTQ' };

export function map(message) {
  const delimiter = config.get('delimiter', ',');
  const mark = config.get('decimal-mark', '.');
  if (delimiter.length !== 1 || !['.', ','].includes(mark)) {
    throw MapError.other(`route config: 'delimiter' must be one character and 'decimal-mark' '.' or ','`);
  }
  const source = text.utf8(message.payload);
  if (source.trim() === '') throw MapError.malformed('empty payload: expected a header row');
  // Rows are read one at a time and blank and padding rows are skipped as they are read (none is
  // kept): a file of a few movements and a megabyte of empty rows costs no more than the movements.
  // The header's column names, once read: the reader names a data row's column by them.
  const header = { names: [] };
  const rows = csvRows(source, delimiter, header);
  const first = rows.next();
  if (first.done) {
    throw MapError.malformed('no header row: the payload holds only blank lines and empty rows');
  }
  const { index, width } = headerIndex(first.value, delimiter);
  header.names = first.value.cells.map((name) => name.trim());

  const siteOf = sites();
  const result = [];
  // Where each movement id and journal sequence number was first seen: a journal posts each
  // movement once, so one given twice in a file would post its stock twice.
  const movementLine = new Map();
  const seqLine = new Map();
  for (const row of rows) {
    if (row.cells.length !== width) {
      throw MapError.malformed(`line ${row.line}: ${row.cells.length} fields, the header has ${width}`);
    }
    const event = movement(row, index, mark, siteOf);
    const id = event.source_transaction;
    if (movementLine.has(id)) {
      throw MapError.malformed(`line ${row.line}, column movement_id: movement '${id}' is also on line ${movementLine.get(id)}; a journal posts each movement once`);
    }
    movementLine.set(id, row.line);
    const seq = event.source_sequence;
    if (seq !== undefined) {
      if (seqLine.has(seq)) {
        throw MapError.malformed(`line ${row.line}, column seq: journal sequence number ${seq} is also on line ${seqLine.get(seq)}; a journal numbers each posting once`);
      }
      seqLine.set(seq, row.line);
    }
    result.push(event);
  }
  log.debug('mapped movement journal', { rows: result.length });
  return result;
}

// The column of each field in the header row (names trimmed, any case, any order). A column this
// plugin reads that the header names twice (`lot` and `LOT`, a second `quantity`) is refused: which
// of the two holds the value is unknowable. Extra columns (even repeated, even unnamed) are ignored.
function headerIndex(row, delimiter) {
  const at = `line ${row.line}`;
  // A CR that is no line end (a CRLF's is one) in the header: the file's lines end with CR alone
  // (classic Mac OS), so the whole file reads as one line and a column would look missing.
  const cr = row.cells.findIndex((name) => name.includes('\r'));
  if (cr >= 0) {
    throw MapError.malformed(`${at}, column ${cr + 1}: the header holds a carriage return (CR) not followed by a line feed ('${row.cells[cr].split('\r')[0].trim()}' then a CR); lines must end with LF or CRLF, and a file whose lines end with CR alone reads as one line`);
  }
  const names = row.cells.map((name) => name.trim().toLowerCase());
  const index = {};
  for (const column of COLUMNS) {
    const first = names.indexOf(column);
    if (first < 0) {
      throw MapError.malformed(`${at}: the header has no column '${column}'${separatorHint(row, delimiter)}`);
    }
    const second = names.indexOf(column, first + 1);
    if (second >= 0) {
      throw MapError.malformed(`${at}: the header names the column '${column}' twice, as '${row.cells[first].trim()}' (column ${first + 1}) and '${row.cells[second].trim()}' (column ${second + 1}); it must name each column once`);
    }
    index[column] = first;
  }
  return { index, width: row.cells.length };
}

// A hint for a header that lacks a column because the file is separated by another character
// than the route's delimiter (a spreadsheet's `;`, a tab export).
function separatorHint(row, delimiter) {
  const other = [';', '\t'].find((separator) => separator !== delimiter && row.cells.some((name) => name.includes(separator)));
  if (other === undefined) return '';
  const shown = other === '\t' ? 'tabs' : `'${other}'`;
  return `; the header is separated by ${shown}, not '${delimiter}': set the route config key 'delimiter' to ${other === '\t' ? 'a tab' : `'${other}'`} or export the file with '${delimiter}'`;
}

// What a cell of a row with no data holds: white space, NUL, the DOS end-of-file mark (Ctrl-Z).
const PADDING = /^[\s\u0000\u001a]*$/;

// C0 and C1 control characters (line breaks, tabs, NUL...): the host refuses them in every key and
// reference of an event, so a value holding one (a quoted field with a line break) is refused here,
// naming its line and column.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

// What no identifier (movement id, warehouse, item, lot, serial, bin, reference) may hold beside
// control characters: invisible format characters (category Cf: zero-width space and joiners,
// word joiner, byte-order mark, soft hyphen, bidi controls...) and spaces other than the ASCII
// space (NBSP, thin space, ideographic space, line and paragraph separators). Each makes a key
// that looks like another and is not: `RM\u200b-200` is no stock of `RM-200`.
// (Category Cf as of Unicode 15, listed: the component's regular expressions know no `\p{..}`.)
const FORMAT = '\\u00ad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890\\u0891\\u08e2\\u180e\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u2064\\u2066-\\u206f\\ufeff\\ufff9-\\ufffb\\u{110bd}\\u{110cd}\\u{13430}-\\u{1343f}\\u{1bca0}-\\u{1bca3}\\u{1d173}-\\u{1d17a}\\u{e0001}\\u{e0020}-\\u{e007f}';
const FORMAT_CHARACTER = new RegExp(`[${FORMAT}]`, 'u');
// The spaces: Unicode's Zs but the ASCII space, and Zl and Zp.
const INVISIBLE = new RegExp(`[${FORMAT}\\u00a0\\u1680\\u2000-\\u200a\\u202f\\u205f\\u3000\\u2028\\u2029]`, 'u');

// The columns that hold identifiers.
const IDENTIFIERS = new Set(['movement_id', 'warehouse', 'item', 'lot', 'serials', 'from_bin', 'to_bin', 'reference']);

// `U+200B`: a code point as Unicode writes it.
function codePoint(character) {
  return `U+${character.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
}

// The value with every character other than printable ASCII written as \u{...}, for a message.
function visible(value) {
  return value.replace(/[^\u0020-\u007e]/gu, (c) => `\\u{${c.codePointAt(0).toString(16)}}`);
}

// Only ASCII white space is padding around a value; another space at an identifier's ends is
// refused as it is inside (shown, not silently dropped).
const ASCII_PADDING = /^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g;

function movement(row, index, mark, siteOf) {
  const at = (column) => `line ${row.line}, column ${column}`;
  const cell = (column) => {
    const value = row.cells[index[column]].replace(ASCII_PADDING, '') || undefined;
    const control = value === undefined ? null : CONTROL.exec(value);
    if (control) {
      const what = control[0] === '\n' || control[0] === '\r' ? 'a line break' : `the control character ${codePoint(control[0])}`;
      throw MapError.malformed(`${at(column)}: the value holds ${what}, which no movement field may hold`);
    }
    const invisible = value === undefined || !IDENTIFIERS.has(column) ? null : INVISIBLE.exec(value);
    if (invisible) {
      const what = FORMAT_CHARACTER.test(invisible[0]) ? 'an invisible format character' : 'a space other than the ASCII space';
      throw MapError.malformed(`${at(column)}: '${visible(value)}' holds ${codePoint(invisible[0])}, ${what}; an identifier may hold neither: it would not match the ${column} it looks like`);
    }
    return value;
  };
  const required = (column) => {
    const value = cell(column);
    if (value === undefined) throw MapError.malformed(`${at(column)}: required value is missing`);
    return value;
  };

  const code = required('movement_code').toUpperCase();
  const kind = MOVEMENTS[code];
  if (!kind) {
    throw MapError.malformed(`${at('movement_code')}: unknown movement code '${code}'; expected one of ${Object.keys(MOVEMENTS).join(', ')}`);
  }
  for (const bin of kind.needs) required(bin);

  const amount = malformedAt(at('quantity'), () => decimal.parse(withDigits(required('quantity'), mark), mark));
  if (amount === '0' || (amount.startsWith('-') && kind.type !== 'adjustment')) {
    throw MapError.rejected(`${at('quantity')}: ${/^[aeiou]/.test(kind.type) ? 'an' : 'a'} ${kind.type} of ${amount} is not posted; only an adjustment may be negative, none may be zero`);
  }
  const unitCode = required('uom').toUpperCase();
  const uom = UNITS[unitCode];
  if (!uom) throw MapError.malformed(`${at('uom')}: unknown unit '${unitCode}'`);

  let status;
  const statusCode = cell('stock_status');
  if (statusCode !== undefined) {
    status = STOCK_STATUS[statusCode.toUpperCase()];
    if (!status) throw MapError.malformed(`${at('stock_status')}: unknown stock status '${statusCode}'; expected one of ${Object.keys(STOCK_STATUS).join(', ')}`);
  }

  let seq;
  if (cell('seq') !== undefined) {
    if (!/^[0-9]{1,19}$/.test(cell('seq'))) throw MapError.malformed(`${at('seq')}: '${cell('seq')}' is not a journal sequence number`);
    seq = BigInt(cell('seq'));
  }

  const postedAt = malformedAt(at('posted_at'), () => postingTime(required('posted_at')));
  const serials = (cell('serials') || '').split('|').map((s) => s.trim()).filter((s) => s !== '');
  // Every value is read (and refused for a control character) before the rules between values.
  const [warehouse, movementId, item] = ['warehouse', 'movement_id', 'item'].map(required);
  const [lot, fromBin, toBin, reference] = ['lot', 'from_bin', 'to_bin', 'reference'].map(cell);
  // A transfer moves stock from one bin to another: the same bin on both sides moves nothing.
  if (kind.type === 'transfer' && fromBin === toBin) {
    throw MapError.rejected(`${at('to_bin')}: a transfer from bin '${fromBin}' to the same bin moves nothing; from_bin and to_bin must differ`);
  }
  // Each serial number is one piece: more serials than pieces, or one serial twice, cannot be.
  const seen = new Set();
  for (const serial of serials) {
    if (seen.has(serial)) {
      throw MapError.rejected(`${at('serials')}: serial '${serial}' is listed twice; a serial number names one piece`);
    }
    seen.add(serial);
  }
  if (serials.length > 0 && moreThan(serials.length, amount)) {
    throw MapError.rejected(`${at('serials')}: ${serials.length} serial numbers for a quantity of ${amount}; each serial number is one piece, so there cannot be more serials than the quantity`);
  }

  return events.event('inventory-movement', {
    site: siteOf(warehouse),
    occurred_at: postedAt,
    source_sequence: seq,
    source_transaction: movementId,
    data: {
      movement_type: kind.type,
      item,
      quantity: events.quantity(amount, uom),
      from_location: fromBin,
      to_location: toBin,
      lot,
      serials,
      stock_status: status,
      reference_document: reference,
    },
  });
}

// A quantity written without the digit before or after the mark (`.5`, `5.`, as the Rust kit
// and XML Schema's decimal allow) with it, for the JS kit's parser: `0.5`, `5`.
function withDigits(value, mark) {
  const at = value.indexOf(mark);
  if (at < 0 || value.indexOf(mark, at + 1) >= 0) return value;
  const before = value.slice(0, at);
  const after = value.slice(at + 1);
  if (/^[+-]?$/.test(before) && /^[0-9]+$/.test(after)) return `${before}0${mark}${after}`;
  if (/^[+-]?[0-9]+$/.test(before) && after === '') return before;
  return value;
}

// Whether the count `count` is more than the absolute value of the decimal text `amount` (`12.5`,
// `-3`): for whole counts, exactly when it is more than the amount's whole part.
function moreThan(count, amount) {
  const whole = amount.replace(/^-/, '').split('.')[0];
  return BigInt(count) > BigInt(whole || '0');
}

// The WMS writes local time without an offset unless configured to write UTC; the route's
// `utc-offset` says which offset a bare local time has.
function postingTime(value) {
  if (/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?$/.test(value)) {
    const offset = config.get('utc-offset');
    if (offset === undefined) {
      return timestamp.parse(value); // refused with a clear message: no offset
    }
    return timestamp.parse(`${value.replace(' ', 'T')}${offset}`);
  }
  return timestamp.parse(value.replace(' ', 'T'));
}

// The site of a warehouse code: `site.<warehouse>` (exactly; else ignoring case, as movement codes
// and units are), else `site`, else the code itself. One resolver per message: the route's
// configuration is read once, and only when an exact key is missing.
function sites() {
  let folded;
  const ignoringCase = (warehouse) => {
    if (folded === undefined) {
      folded = new Map();
      for (const [key, value] of config.all()) {
        if (!key.startsWith('site.')) continue;
        const code = key.slice(5).toUpperCase();
        folded.set(code, [...(folded.get(code) || []), [key, value]]);
      }
    }
    const matches = folded.get(warehouse.toUpperCase()) || [];
    if (new Set(matches.map(([, value]) => value)).size > 1) {
      throw MapError.other(`warehouse '${warehouse}' matches the route config keys ${matches.map(([key]) => `'${key}'`).join(', ')} (ignoring case) with different sites; set 'site.${warehouse}'`);
    }
    return matches.length ? matches[0][1] : undefined;
  };
  return (warehouse) => {
    const value = config.get(`site.${warehouse}`) ?? ignoringCase(warehouse) ?? config.get('site') ?? warehouse;
    if (!/^[A-Za-z0-9_-]+$/.test(value)) {
      throw MapError.other(`site '${value}' (for warehouse '${warehouse}') may hold only letters, digits, '-' and '_'; set the route config key 'site.${warehouse}' or 'site'`);
    }
    return value;
  };
}

// RFC 4180 CSV: fields may be double-quoted (holding delimiters, quotes as "" and line ends);
// lines end with LF or CRLF. A quote in a field that is not quoted (RFC 4180 2.5: `PO 12" pipe`,
// Excel's `="00200"`, a space before the opening quote) is refused naming its line and column:
// what the writer meant by it cannot be known. Yields the rows one at a time, each with the line number it starts
// on, and skips rows of padding (a blank line, a row of delimiters only, NUL or Ctrl-Z padding)
// as it reads them: a run of blank lines or padding rows is passed over by one regular
// expression, never built into rows.
function* csvRows(source, delimiter, header) {
  const d = classEscape(delimiter);
  // Padding characters, delimiters and line ends: one character class, so the engine matches a
  // run of them, a megabyte of blank lines, in one pass with no backtracking state (a run of
  // rows, `(?:...\n)+`, kept a backtracking entry per row and ran the component out of memory).
  const paddingRun = new RegExp(`[${PADDING_CHARS}${d}\\n]+`, 'y');
  // The rest of an unquoted field: up to a delimiter or a line end.
  const plain = new RegExp(`[^${d}\\r\\n]*`, 'y');
  let line = 1;
  let i = 0;
  while (i < source.length) {
    // Whole rows of padding are passed over: the run up to its last line end, or to the end of
    // the text (a run may end in the leading white space of a row with data, which is kept).
    paddingRun.lastIndex = i;
    const run = paddingRun.exec(source);
    if (run !== null) {
      const end = i + run[0].length;
      const skipped = end === source.length ? run[0] : run[0].slice(0, run[0].lastIndexOf('\n') + 1);
      if (skipped !== '') {
        line += newlines(skipped);
        i += skipped.length;
        continue;
      }
    }
    const rowLine = line;
    const cells = [];
    for (;;) {
      // One field, starting at i.
      let cell = '';
      if (source[i] === '"') {
        const start = line;
        i += 1;
        for (;;) {
          const close = source.indexOf('"', i);
          if (close < 0) throw MapError.malformed(`line ${start}: a quoted field is not closed`);
          const chunk = source.slice(i, close);
          line += newlines(chunk);
          cell += chunk;
          if (source[close + 1] === '"') {
            cell += '"';
            i = close + 2;
            continue;
          }
          i = close + 1;
          break;
        }
        if (i < source.length && source[i] !== delimiter && source[i] !== '\n' && !source.startsWith('\r\n', i)) {
          throw MapError.malformed(`line ${line}: text after a closing quote`);
        }
      } else {
        for (;;) {
          plain.lastIndex = i;
          cell += plain.exec(source)[0];
          i = plain.lastIndex;
          if (cell.includes('"')) throw strayQuote(cell, line, cells.length, header);
          // A CR not before an LF is text (as it was), not a line end.
          if (source[i] === '\r' && source[i + 1] !== '\n') {
            cell += '\r';
            i += 1;
            continue;
          }
          break;
        }
      }
      cells.push(cell);
      if (i < source.length && source[i] === delimiter) {
        i += 1;
        continue;
      }
      break;
    }
    // The row ends at a line end or the end of the text.
    if (source[i] === '\r') i += 1;
    if (source[i] === '\n') {
      i += 1;
      line += 1;
    }
    // A row of padding the run above did not pass over (a quoted empty field, `"",""`).
    if (cells.every((cell) => PADDING.test(cell))) continue;
    yield { line: rowLine, cells };
  }
}

// The error for a quote in an unquoted field: the `cells`-th column (from 0) of the row at `line`.
function strayQuote(cell, line, column, header) {
  const name = header.names[column] || String(column + 1);
  const value = cell.split('\r')[0].trim();
  const excel = /^=\s*"/.test(value)
    ? ` looks like an Excel formula (="..." keeps leading zeros in Excel): export the value itself, quoted as "${value.replace(/^=\s*"|"$/g, '')}" if need be, not a formula`
    : ' holds a quote but is not quoted: RFC 4180 allows a quote only in a field in quotes, written twice (`"PO 12"" pipe"`), with nothing before the opening quote';
  return MapError.malformed(`line ${line}, column ${name}: '${value}'${excel}`);
}

// The characters of a padding row but LF, for a regular expression's class: JavaScript's white
// space (`\s`) without LF, NUL and Ctrl-Z.
const PADDING_CHARS = '\\t\\v\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff\\u0000\\u001a';

// A character escaped for a regular expression's class.
function classEscape(character) {
  return character.replace(/[\\\]^\-]/g, '\\$&');
}

// The number of LFs in a text.
function newlines(chunk) {
  // A string pattern, not a regular expression: replaced natively, not one match at a time.
  return chunk.length === 0 ? 0 : chunk.length - chunk.replaceAll('\n', '').length;
}
