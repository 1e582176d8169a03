// The component glue (used by the entry module build.mjs generates): calls the plugin's `map`,
// turns a thrown MapError into the WIT `map-error` (componentize-js lowers an export's
// `result` error from the thrown value's `payload`), and converts the kit's events (snake_case
// JSON form) into the jco binding form (camelCase fields, { tag, val } variants, bigint u64),
// checking every field against the WIT so a misspelt one fails loudly instead of vanishing.

import { KINDS_OF_EVENT, MapError, bug, log, requireUnicode } from './millrace.js';

const Q = 'quantity';
// The canonical model of millrace:mapping@1.0.0: field -> type ('?' = option). ADDED_IN lists
// what later versions added; a plugin targeting an older version has them left out.
const RECORDS_1_0 = {
  quantity: { amount: 'string', uom: 'string' },
  'inventory-movement': {
    movement_type: 'enum:receipt,issue,transfer,adjustment,scrap', item: 'string', quantity: Q,
    from_location: 'string?', to_location: 'string?', lot: 'string?', serials: 'list:string',
    stock_status: 'enum?:unrestricted,quality-inspection,blocked,in-transit', reference_document: 'string?',
  },
  'inventory-balance': {
    item: 'string', location: 'string', lot: 'string?', on_hand: Q, allocated: Q, blocked: Q,
  },
  'work-order-status': {
    work_order: 'string', operation: 'string?',
    state: 'enum:released,started,paused,completed,closed,cancelled,held', item: 'string?',
    planned_quantity: 'quantity?', completed_quantity: 'quantity?', scrapped_quantity: 'quantity?',
  },
  'material-consumption': {
    work_order: 'string', operation: 'string?', item: 'string', lot: 'string?', quantity: Q, location: 'string?',
  },
  'production-completion': {
    work_order: 'string', operation: 'string?', item: 'string', lot: 'string?', good_quantity: Q,
    scrap_quantity: Q, location: 'string?',
  },
  'hold-scope': { item: 'string?', lot: 'string?', location: 'string?', supplier: 'string?' },
  'quality-hold': {
    hold_id: 'string', action: 'enum:placed,released', scope: 'hold-scope', reason: 'string', disposition: 'string?',
  },
  'schedule-bucket': { date: 'string', end_date: 'string?', quantity: Q, level: 'enum:firm,forecast' },
  'supplier-commitment': {
    supplier: 'string', item: 'string', purchase_order: 'string?', buckets: 'list:schedule-bucket',
    cumulative_received: 'quantity?',
  },
  'shipment-line': {
    item: 'string', quantity: Q, lot: 'string?', serials: 'list:string', purchase_order: 'string?', package_id: 'string?',
  },
  'shipment-notice': {
    shipment_id: 'string', supplier: 'string', ship_date: 'string', expected_delivery: 'string?',
    lines: 'list:shipment-line',
  },
};
const EVENT = {
  site: 'string', occurred_at: 'string', source_sequence: 'u64?', source_transaction: 'string?',
};
const ADDED_IN = {
  'millrace:mapping@1.1.0': { 'inventory-movement': { expiry_date: 'string?' } },
};
/** The WIT packages the kit targets, oldest first. */
export const SERVED_WIT = ['millrace:mapping@1.0.0', 'millrace:mapping@1.1.0'];

/** The canonical model of `wit`: 1.0.0 plus what each later version up to it added. */
function recordsOf(wit) {
  const records = Object.fromEntries(Object.entries(RECORDS_1_0).map(([k, v]) => [k, { ...v }]));
  for (const version of SERVED_WIT.slice(1, SERVED_WIT.indexOf(wit) + 1)) {
    for (const [name, fields] of Object.entries(ADDED_IN[version] || {})) Object.assign(records[name], fields);
  }
  return records;
}
let RECORDS = recordsOf(SERVED_WIT[0]);
// Fields of a newer version an older plugin may set: left out and logged, not refused.
let DROPPED = {};

const camel = (name) => name.replace(/_([a-z])/g, (_, c) => c.toUpperCase());

/**
 * The `map` export: wraps the plugin's plain `map(message)` for the WIT version `wit` the
 * plugin's manifest names (build.mjs passes it).
 */
export function exportMap(pluginMap, wit = SERVED_WIT[0]) {
  if (typeof pluginMap !== 'function') {
    throw new TypeError('the plugin module must export a function `map(message)`');
  }
  if (!SERVED_WIT.includes(wit)) throw new TypeError(`unknown WIT version '${wit}'; the kit targets ${SERVED_WIT.join(', ')}`);
  RECORDS = recordsOf(wit);
  const newest = recordsOf(SERVED_WIT[SERVED_WIT.length - 1]);
  DROPPED = Object.fromEntries(Object.entries(newest).map(([name, fields]) => [
    name, Object.keys(fields).filter((field) => !(field in RECORDS[name])),
  ]));
  return function map(message) {
    try {
      const produced = pluginMap(message);
      if (!Array.isArray(produced)) {
        throw new TypeError(`map() must return an array of events, got ${typeof produced}`);
      }
      return produced.map((event, n) => toWitEvent(event, `event ${n}`));
    } catch (error) {
      if (MapError.is(error)) {
        const refusal = new Error(error.message);
        refusal.payload = { tag: error.kind, val: error.reason };
        throw refusal;
      }
      // A bug, or a message the plugin did not expect: refused as `other`, saying what and
      // where (a trap's dead letter said only that the call aborted).
      const refusal = new Error(String(error));
      refusal.payload = { tag: 'other', val: bug('map()', error) };
      throw refusal;
    }
  };
}

function toWitEvent(event, where) {
  if (!event || typeof event !== 'object') throw new TypeError(`${where}: expected an event object`);
  const { kind, data, ...rest } = event;
  if (!KINDS_OF_EVENT.includes(kind)) {
    throw new TypeError(`${where}: unknown event kind '${kind}'`);
  }
  const out = record(EVENT, rest, where);
  if (data === undefined || data === null) throw new TypeError(`${where}.data is required`);
  out.data = { tag: kind, val: record(RECORDS[kind], withoutNewer(kind, data), `${where}.data`) };
  return out;
}

function withoutNewer(kind, data) {
  const dropped = (DROPPED[kind] || []).filter((field) => data && data[field] !== undefined && data[field] !== null);
  if (dropped.length === 0) return data;
  log.info(`${dropped.join(', ')} not mapped: the plugin's WIT version has no such field; target a newer one in plugin.toml`,
    Object.fromEntries(dropped.map((field) => [field, String(data[field])])));
  const kept = { ...data };
  for (const field of dropped) delete kept[field];
  return kept;
}

function record(fields, value, where) {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`${where}: expected an object`);
  }
  for (const key of Object.keys(value)) {
    if (!(key in fields)) {
      throw new TypeError(`${where}: no field '${key}'; fields: ${Object.keys(fields).join(', ')}`);
    }
  }
  const out = {};
  for (const [name, type] of Object.entries(fields)) {
    out[camel(name)] = convert(type, value[name], `${where}.${name}`);
  }
  return out;
}

function convert(type, value, where) {
  const absent = value === undefined || value === null;
  if (type.startsWith('list:')) {
    if (absent) return [];
    if (!Array.isArray(value)) throw new TypeError(`${where}: expected an array`);
    return value.map((v, n) => convert(type.slice(5), v, `${where}[${n}]`));
  }
  const optional = type.includes('?');
  if (absent) {
    if (optional) return undefined;
    throw new TypeError(`${where} is required`);
  }
  const base = type.replace('?', '');
  if (base === 'string') {
    if (typeof value !== 'string') throw new TypeError(`${where}: expected a string, got ${typeof value}`);
    // A WIT string is UTF-8: componentize-js would write an unpaired surrogate as U+FFFD, so the
    // event would carry other text than the payload did. Input data, so malformed-input.
    return requireUnicode(value, where);
  }
  if (base === 'u64') {
    const n = typeof value === 'bigint' ? value : Number.isSafeInteger(value) ? BigInt(value) : -1n;
    if (n < 0n || n >= 2n ** 64n) throw new TypeError(`${where}: ${value} is not an unsigned 64-bit integer`);
    return n;
  }
  if (base.startsWith('enum:')) {
    const allowed = base.slice(5).split(',');
    if (!allowed.includes(value)) throw new TypeError(`${where}: '${value}' is not one of ${allowed.join(', ')}`);
    return value;
  }
  return record(RECORDS[base], value, where);
}
