// The bench's JavaScript port of the two Rust mappings (plugins/mes-shift-report and
// plugins/x12-856), for the records the bench sends: a SHIFTRPT v02 report with PRD and MAT
// records, and an X12 856 with shipment, order and item levels. Shared, unchanged, by the
// JavaScript plugin (app.js, in the sandbox) and the Node.js service (bench/node-service): the
// same mapping code in both arms. No imports, so it runs in both places; errors are thrown as
// { mapError: kind, message } and each side turns them into its own error.
// The bench checks that its events equal the Rust plugins' before it measures.

const fail = (kind, message) => { throw { mapError: kind, message }; };
const malformed = (message) => fail('malformed-input', message);

// Decimal text without leading zeros in the integer part or trailing zeros in the fraction.
function normalise(integer, fraction) {
  const whole = integer.replace(/^0+(?=\d)/, '') || '0';
  const frac = fraction.replace(/0+$/, '');
  return frac ? `${whole}.${frac}` : whole;
}

function date(text) {
  if (!/^\d{8}$/.test(text)) malformed(`'${text}' is not a YYYYMMDD date`);
  return `${text.slice(0, 4)}-${text.slice(4, 6)}-${text.slice(6, 8)}`;
}

function time(text) {
  if (!/^\d{4}(\d{2})?$/.test(text)) malformed(`'${text}' is not an HHMM[SS] time`);
  return `${text.slice(0, 2)}:${text.slice(2, 4)}:${text.slice(4, 6) || '00'}`;
}

const rfc3339 = (day, at, offset) => `${date(day)}T${time(at)}${offset === '+00:00' ? 'Z' : offset}`;

const SHIFT_UNITS = { EA: 'EA', PC: 'PCE', ST: 'PCE', G: 'GRM', KG: 'KGM', T: 'TNE', MM: 'MMT', CM: 'CMT', M: 'MTR', M2: 'MTK', M3: 'MTQ', ML: 'MLT', L: 'LTR' };

function shiftQuantity(text, field) {
  if (!/^\d{9}$/.test(text)) malformed(`field ${field}: '${text}' is not a 9-digit quantity`);
  return normalise(text.slice(0, 6), text.slice(6));
}

/** A SHIFTRPT v02 shift report (Latin-1 text) to canonical events. */
export function mapShiftReport(text, configGet) {
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  if (lines[lines.length - 1] === '') lines.pop();
  const header = lines[0].split('|');
  if (header[0] !== 'HDR' || header[1] !== 'SHIFTRPT' || header[2] !== '02') fail('unsupported-document', 'not a SHIFTRPT v02 report');
  const plant = header[3];
  const offset = header[7];
  const site = configGet(`site.${plant}`) ?? configGet('site') ?? plant;
  const events = [];
  for (let n = 1; n < lines.length; n += 1) {
    const f = lines[n].split('|');
    const opt = (i) => (f[i] === '' ? undefined : f[i]);
    const unit = (i) => SHIFT_UNITS[f[i].toUpperCase()] ?? malformed(`line ${n + 1}: unknown unit code '${f[i]}'`);
    const common = (dateAt) => ({
      site,
      occurred_at: rfc3339(f[dateAt], f[dateAt + 1], offset),
      source_sequence: Number(f[1]),
      source_transaction: f[2],
    });
    if (f[0] === 'PRD') {
      if (f.length !== 13) malformed(`line ${n + 1}: PRD has ${f.length} fields, expected 13`);
      const uom = unit(9);
      events.push({ kind: 'production-completion', ...common(10), data: {
        work_order: f[3], operation: opt(4), item: f[5], lot: opt(6),
        good_quantity: { amount: shiftQuantity(f[7], 'good-qty'), uom },
        scrap_quantity: { amount: shiftQuantity(f[8], 'scrap-qty'), uom },
        location: opt(12),
      } });
    } else if (f[0] === 'MAT') {
      if (f.length !== 12) malformed(`line ${n + 1}: MAT has ${f.length} fields, expected 12`);
      events.push({ kind: 'material-consumption', ...common(9), data: {
        work_order: f[3], operation: opt(4), item: f[5], lot: opt(6),
        quantity: { amount: shiftQuantity(f[7], 'qty'), uom: unit(8) },
        location: opt(11),
      } });
    } else if (f[0] === 'TRL') {
      if (Number(f[1]) !== events.length) malformed(`line ${n + 1}: the trailer counts ${Number(f[1])} detail records, the report has ${events.length}`);
      return events;
    } else {
      fail('malformed-input', `line ${n + 1}: record type '${f[0]}' is not in the bench port`);
    }
  }
  return malformed('the report ends without a TRL trailer record');
}

const X12_UNITS = { EA: 'EA', PC: 'PCE', PCS: 'PCE', LB: 'LBR', KG: 'KGM', GR: 'GRM', CS: 'XCS', CA: 'XCS', BX: 'XBX' };

/** An X12 856 interchange (text) to one shipment-notice per transaction set. */
export function mapShipNotice(text, configGet) {
  const site = configGet('site') ?? malformed("the route configuration has no key 'site'");
  const offset = configGet('utc-offset') ?? '+00:00';
  if (!text.startsWith('ISA') || text.length < 106) malformed('not an X12 interchange');
  const element = text[3];
  const terminator = text[105];
  const segments = text.split(terminator).map((s) => s.replace(/^\s+/, '')).filter((s) => s !== '').map((s) => s.split(element));
  const isa = segments[0];
  const sender = isa[6].trim();
  // The Rust plugin's identity: ISA05/ISA06:ISA13, then GS06:ST02 of each set.
  const interchange = `${isa[5].trim()}/${sender}:${isa[13]}`;
  const events = [];
  let group = '';
  let set = null;
  for (const segment of segments.slice(1)) {
    if (segment[0] === 'GS') {
      group = segment[6];
    } else if (segment[0] === 'ST') {
      set = { control: `${group}:${segment[2]}`, header: [], levels: [] };
    } else if (segment[0] === 'SE') {
      events.push(shipNotice(set, site, offset, sender, interchange));
      set = null;
    } else if (set && segment[0] === 'HL') {
      set.levels.push({ id: segment[1], parent: segment[2] ?? '', code: segment[3], segments: [] });
    } else if (set) {
      (set.levels.length ? set.levels[set.levels.length - 1].segments : set.header).push(segment);
    }
  }
  if (events.length === 0) malformed('the interchange holds no transaction set');
  return events;
}

function shipNotice(set, site, offset, sender, interchange) {
  const e = (segment, i) => (segment[i] ?? '').trim();
  const bsn = set.header.find((s) => s[0] === 'BSN') ?? malformed('there is no BSN segment');
  const shipment = set.levels.find((l) => l.code === 'S');
  const all = set.header.concat(shipment ? shipment.segments : []);
  const dtm = (q) => all.find((s) => s[0] === 'DTM' && e(s, 1) === q);
  const ship = dtm('011');
  const shipDate = ship ? rfc3339(e(ship, 2), e(ship, 3) || '000000', offset) : rfc3339(e(bsn, 3), e(bsn, 4), offset);
  const delivery = dtm('017');
  let supplier;
  for (const code of ['SF', 'SU']) {
    const n1 = all.find((s) => s[0] === 'N1' && e(s, 1) === code);
    if (n1) { supplier = e(n1, 4) || e(n1, 2); break; }
  }
  const lines = [];
  for (const item of set.levels.filter((l) => l.code === 'I')) {
    const lin = item.segments.find((s) => s[0] === 'LIN') ?? malformed(`HL ${item.id} (item level): there is no LIN segment`);
    const pairs = [];
    for (let i = 2; i + 1 < lin.length; i += 2) if (e(lin, i) && e(lin, i + 1)) pairs.push([e(lin, i), e(lin, i + 1)]);
    const pick = (q) => pairs.find(([k]) => k === q)?.[1];
    const refs = (level, q) => level.segments.filter((s) => s[0] === 'REF' && e(s, 1) === q && e(s, 2)).map((s) => e(s, 2));
    const ancestors = [];
    for (let parent = item.parent; parent; ) {
      const found = set.levels.find((l) => l.id === parent);
      if (!found) break;
      ancestors.push(found);
      parent = found.parent;
    }
    const prf = ancestors.map((l) => l.segments.find((s) => s[0] === 'PRF' && e(s, 1))).find((s) => s);
    const sn1 = item.segments.find((s) => s[0] === 'SN1') ?? malformed(`HL ${item.id}: there is no SN1 quantity`);
    const amount = e(sn1, 2);
    if (!/^\d+(\.\d+)?$/.test(amount) || Number(amount) <= 0) malformed(`SN102 quantity '${amount}' is not positive`);
    const [integer, fraction = ''] = amount.split('.');
    const uom = X12_UNITS[e(sn1, 3)] ?? malformed(`SN103 unit '${e(sn1, 3)}' is not a known X12 unit of measure`);
    lines.push({
      item: pick('BP') ?? pick('VP') ?? pairs[0]?.[1],
      quantity: { amount: normalise(integer, fraction), uom },
      lot: pick('LT') ?? refs(item, 'LT')[0],
      serials: pairs.filter(([k]) => k === 'SN').map(([, v]) => v).concat(refs(item, 'SE'), refs(item, 'LS')),
      purchase_order: pick('PO') ?? pick('ON') ?? refs(item, 'PO')[0] ?? (prf ? e(prf, 1) : undefined),
    });
  }
  if (lines.length === 0) malformed('the ship notice has no item (HL level I) with a quantity');
  return {
    kind: 'shipment-notice', site, occurred_at: shipDate,
    source_transaction: `${interchange}:${set.control}`,
    data: { shipment_id: e(bsn, 2), supplier: supplier || sender, ship_date: shipDate, expected_delivery: delivery ? rfc3339(e(delivery, 2), e(delivery, 3) || '000000', offset) : undefined, lines },
  };
}

/** Maps by the raw subject's format token: `raw.<system>.<site>.<format>`. */
export function mapMessage(subject, text, configGet) {
  return subject.endsWith('.856') ? mapShipNotice(text, configGet) : mapShiftReport(text, configGet);
}
