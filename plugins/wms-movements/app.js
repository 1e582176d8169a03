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
  const rows = parseCsv(source, delimiter);

  const header = rows[0].cells.map((name) => name.trim().toLowerCase());
  const index = {};
  for (const column of COLUMNS) {
    const at = header.indexOf(column);
    if (at < 0) throw MapError.malformed(`line 1: the header has no column '${column}'`);
    index[column] = at;
  }

  const siteOf = sites();
  const result = [];
  for (const row of rows.slice(1)) {
    // A blank line, a row of delimiters only (a spreadsheet's export of empty rows), or the NUL
    // and Ctrl-Z padding some systems end a file with: no movement, nothing to refuse.
    if (row.cells.every((cell) => PADDING.test(cell))) continue;
    if (row.cells.length !== header.length) {
      throw MapError.malformed(`line ${row.line}: ${row.cells.length} fields, the header has ${header.length}`);
    }
    result.push(movement(row, index, mark, siteOf));
  }
  log.debug('mapped movement journal', { rows: result.length });
  return result;
}

// What a cell of a row with no data holds: white space, NUL, the DOS end-of-file mark (Ctrl-Z).
const PADDING = /^[\s\u0000\u001a]*$/;

// C0 and C1 control characters (line breaks, tabs, NUL...): the host refuses them in every key and
// reference of an event, so a value holding one (a quoted field with a line break) is refused here,
// naming its line and column.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function movement(row, index, mark, siteOf) {
  const at = (column) => `line ${row.line}, column ${column}`;
  const cell = (column) => {
    const value = row.cells[index[column]].trim() || undefined;
    const control = value === undefined ? null : CONTROL.exec(value);
    if (control) {
      const what = control[0] === '\n' || control[0] === '\r' ? 'a line break' : `the control character U+${control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
      throw MapError.malformed(`${at(column)}: the value holds ${what}, which no movement field may hold`);
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

  const amount = malformedAt(at('quantity'), () => decimal.parse(required('quantity'), mark));
  if (amount === '0' || (amount.startsWith('-') && kind.type !== 'adjustment')) {
    throw MapError.rejected(`${at('quantity')}: a ${kind.type} of ${amount} is not posted; only an adjustment may be negative, none may be zero`);
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

  return events.event('inventory-movement', {
    site: siteOf(required('warehouse')),
    occurred_at: postedAt,
    source_sequence: seq,
    source_transaction: required('movement_id'),
    data: {
      movement_type: kind.type,
      item: required('item'),
      quantity: events.quantity(amount, uom),
      from_location: cell('from_bin'),
      to_location: cell('to_bin'),
      lot: cell('lot'),
      serials,
      stock_status: status,
      reference_document: cell('reference'),
    },
  });
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
// lines end with LF or CRLF. Returns rows with the line number each starts on.
function parseCsv(source, delimiter) {
  const rows = [];
  let cells = [];
  let cell = '';
  let line = 1;
  let rowLine = 1;
  let i = 0;
  const endRow = () => {
    cells.push(cell);
    rows.push({ line: rowLine, cells });
    cells = [];
    cell = '';
  };
  while (i < source.length) {
    const c = source[i];
    if (c === '"' && cell === '') {
      const start = line;
      i += 1;
      for (;;) {
        if (i >= source.length) throw MapError.malformed(`line ${start}: a quoted field is not closed`);
        if (source[i] === '"') {
          if (source[i + 1] === '"') {
            cell += '"';
            i += 2;
            continue;
          }
          i += 1;
          break;
        }
        if (source[i] === '\n') line += 1;
        cell += source[i];
        i += 1;
      }
      if (i < source.length && source[i] !== delimiter && source[i] !== '\n' && source[i] !== '\r') {
        throw MapError.malformed(`line ${line}: text after a closing quote`);
      }
      continue;
    }
    if (c === delimiter) {
      cells.push(cell);
      cell = '';
    } else if (c === '\n' || (c === '\r' && source[i + 1] === '\n')) {
      if (c === '\r') i += 1;
      endRow();
      line += 1;
      rowLine = line;
    } else {
      cell += c;
    }
    i += 1;
  }
  if (cell !== '' || cells.length > 0) endRow();
  return rows;
}
