// millrace kit for JavaScript: the helpers every mapping needs.
//
// A plugin is an ES module (app.js) exporting one plain function:
//
//   import { MapError, config, decimal, events, timestamp } from '../../sdk/js/src/millrace.js';
//   export function map(message) {   // message.subject, message.headers, message.payload (Uint8Array)
//     return [events.event('inventory-movement', { site, occurred_at, data: {...} })];
//   }
//
// Events are plain objects in the same JSON form the fixtures use (snake_case WIT names,
// kebab-case enum values, quantities as { amount: '12.5', uom: 'KGM' }). Quantities are decimal
// TEXT: never a JS number, which cannot hold 0.1 exactly. The build (sdk/js/build.mjs) wires
// `map` to the WIT export and turns a thrown MapError into the WIT `map-error`.

// The `host` import of the WIT version the plugin targets: the entry module build.mjs writes
// imports it (the version is the manifest's) and hands it over before the plugin runs.
let host = null;

/** Called by the generated entry module with the `host` interface of the plugin's WIT version. */
export function useHost(imports) {
  host = imports;
}

function hostImports() {
  if (host === null) throw new Error('the millrace host (config, log) is reachable only while map() runs');
  return host;
}

/**
 * A plugin's refusal as a case of a WIT error variant and its message; the glue lowers it into
 * the case of the same name. A subclass names its variant, its case names (`kinds`) and the
 * symbol `is` recognises it by: MapError here, RenderError in posting.js.
 */
export class KindedError extends Error {
  constructor(kind, message) {
    const { variant, kinds, brand } = new.target;
    if (!kinds.includes(kind)) {
      throw new TypeError(`unknown ${variant} kind '${kind}'; expected one of ${kinds.join(', ')}`);
    }
    super(`${kind}: ${message}`);
    this.name = new.target.name;
    this.kind = kind;
    this.reason = String(message);
    this[brand] = true;
  }
  /** A business rule refuses the message or event. */
  static rejected(message) { return new this('rejected-by-rule', message); }
  /** Any other reason, for example a route configuration the plugin cannot use. */
  static other(message) { return new this('other', message); }
  /** True for an error of this class, even one from another copy of this module. */
  static is(value) { return value != null && value[this.brand] === true; }
}

/** A mapping's refusal of a message: a WIT `map-error` case and its message. */
export class MapError extends KindedError {
  static variant = 'map-error';
  static kinds = ['malformed-input', 'unsupported-document', 'rejected-by-rule', 'other'];
  static brand = Symbol.for('millrace.MapError');
  /** The payload is not well-formed for its format (bad syntax, wrong encoding, truncated). */
  static malformed(message) { return new MapError('malformed-input', message); }
  /** The payload is well-formed but of a document type or version this mapping does not map. */
  static unsupported(message) { return new MapError('unsupported-document', message); }
}

/** A field value the kit's parsers refuse; `malformedAt` turns it into a located MapError. */
export class FieldError extends Error {
  constructor(message) {
    super(message);
    this.name = 'FieldError';
  }
}

function refusing(kind, context, fn) {
  try {
    return fn();
  } catch (error) {
    if (error instanceof FieldError) throw new MapError(kind, `${context}: ${error.message}`);
    throw error;
  }
}

/**
 * Runs `fn`; a FieldError it throws (from decimal.parse, timestamp.parse...) becomes
 * `MapError.malformed('<context>: <error>')`, so the message says where:
 *   const qty = malformedAt(`line ${n}, field quantity`, () => decimal.parse(cells[4]));
 * Any other exception passes through: it is a bug, and traps the call.
 */
export function malformedAt(context, fn) { return refusing('malformed-input', context, fn); }

/** Like malformedAt, but the error becomes MapError.rejected. */
export function rejectedAt(context, fn) { return refusing('rejected-by-rule', context, fn); }

const DIGITS = /^[0-9]+$/;

/** Exact decimals as text, in the WIT form `-?digits(.digits)?`. */
export const decimal = {
  /**
   * Parses a decimal written with decimal mark `mark` ('.' or ','): surrounding spaces, an
   * optional sign, digits, an optional mark followed by digits. Returns the normalised WIT
   * text. Rejects exponents, thousands separators and anything else with a FieldError.
   */
  parse(text, mark = '.') {
    if (typeof text !== 'string') throw new FieldError(`expected a number as text, got ${jsondoc.typeName(text)}`);
    let body = text.replace(/^ +| +$/g, '');
    if (body === '') throw new FieldError('empty number');
    let negative = false;
    if (body[0] === '-' || body[0] === '+') {
      negative = body[0] === '-';
      body = body.slice(1);
    }
    const at = body.indexOf(mark);
    const whole = at < 0 ? body : body.slice(0, at);
    const fraction = at < 0 ? '' : body.slice(at + 1);
    if (!DIGITS.test(whole) || (at >= 0 && !DIGITS.test(fraction))) {
      throw new FieldError(`'${text}' is not a decimal number`);
    }
    checkSize(text, whole, fraction);
    return normalise(negative, whole, fraction);
  },
  /** Reads a fixed-width digits field with `scale` implied decimals: ('000125', 2) is '1.25'. */
  implied(field, scale) {
    let body = String(field).replace(/^ +| +$/g, '');
    if (body === '') throw new FieldError('empty number');
    const negative = body[0] === '-';
    if (body[0] === '-' || body[0] === '+') body = body.slice(1);
    if (!DIGITS.test(body)) throw new FieldError(`'${field}' is not a decimal number`);
    const padded = body.padStart(scale + 1, '0');
    checkSize(field, padded.slice(0, padded.length - scale), padded.slice(padded.length - scale));
    return normalise(negative, padded.slice(0, padded.length - scale), padded.slice(padded.length - scale));
  },
  /**
   * Normalises a decimal given as WIT-form text, a bigint or a safe integer number:
   * '012.500' is '12.5', '-0.0' is '0'. A fractional JS number is refused (TypeError): it
   * cannot carry an exact quantity.
   */
  toWit(value) {
    if (typeof value === 'bigint') return value.toString();
    if (typeof value === 'number') {
      if (!Number.isSafeInteger(value)) {
        throw new TypeError(`${value} is a JS float; pass quantities as decimal text`);
      }
      return String(value);
    }
    return decimal.parse(value, '.');
  },
  /** True when `text` is in the WIT decimal form. */
  isWit(text) { return typeof text === 'string' && /^-?[0-9]+(\.[0-9]+)?$/.test(text); },
};

// What the host's decimals hold (as the Rust kit's): a 96-bit mantissa, 28 decimals. A larger
// amount is refused here, naming the field, rather than by the host as an invalid event.
const MAX_MANTISSA = (1n << 96n) - 1n;
const MAX_SCALE = 28;

function checkSize(text, whole, fraction) {
  const f = fraction.replace(/0+$/, '');
  if (f.length > MAX_SCALE) throw new FieldError(`'${text}' has more than ${MAX_SCALE} decimals`);
  if (BigInt(`${whole}${f}` || '0') > MAX_MANTISSA) throw new FieldError(`'${text}' has too many digits`);
}

function normalise(negative, whole, fraction) {
  const w = whole.replace(/^0+(?=.)/, '');
  const f = fraction.replace(/0+$/, '');
  const text = f ? `${w}.${f}` : w;
  return negative && /[1-9]/.test(text) ? `-${text}` : text;
}

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/** RFC 3339 timestamps and dates, as text (no Date, no clock: the sandbox has none). */
export const timestamp = {
  /**
   * Checks an RFC 3339 timestamp with an offset and returns it normalised: 'T' and 'Z' upper
   * case, '+00:00' written 'Z', trailing fractional zeros dropped. A FieldError otherwise.
   */
  parse(text) {
    const m = typeof text === 'string' ? TIMESTAMP.exec(text) : null;
    if (!m) throw new FieldError(`'${text}' is not an RFC 3339 timestamp with an offset`);
    const [, y, mo, d, h, mi, s, frac, off] = m;
    checkDate(y, mo, d, text);
    if (+h > 23 || +mi > 59 || +s > 59) throw new FieldError(`'${text}' is not a valid time of day`);
    const offset = parseOffset(off, text);
    const fraction = (frac || '').replace(/0+$/, '').replace(/^\.$/, '');
    return `${y}-${mo}-${d}T${h}:${mi}:${s}${fraction}${offset}`;
  },
  /** Checks YYYY-MM-DD or YYYYMMDD and returns RFC 3339 full-date text YYYY-MM-DD. */
  parseDate(text) {
    const m = /^(\d{4})-?(\d{2})-?(\d{2})$/.exec(String(text));
    if (!m) throw new FieldError(`'${text}' is not a valid date (expected YYYY-MM-DD)`);
    checkDate(m[1], m[2], m[3], text);
    return `${m[1]}-${m[2]}-${m[3]}`;
  },
  /** ('20260302', '061500', '+01:00') is '2026-03-02T06:15:00+01:00'. */
  fromCompact(date, time, offset) {
    const day = timestamp.parseDate(date);
    const m = /^(\d{2}):?(\d{2})(?::?(\d{2}))?$/.exec(String(time));
    if (!m || +m[1] > 23 || +m[2] > 59 || +(m[3] || 0) > 59) {
      throw new FieldError(`'${time}' is not a valid time (expected HHMMSS)`);
    }
    return `${day}T${m[1]}:${m[2]}:${m[3] || '00'}${parseOffset(offset, offset)}`;
  },
};

function checkDate(y, mo, d, text) {
  const days = [31, (+y % 4 === 0 && +y % 100 !== 0) || +y % 400 === 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  if (+mo < 1 || +mo > 12 || +d < 1 || +d > days[+mo - 1]) {
    throw new FieldError(`'${text}' is not a valid date`);
  }
}

function parseOffset(text, original) {
  const m = /^(?:([Zz])|([+-])(\d{2}):?(\d{2}))$/.exec(String(text));
  if (!m || (!m[1] && (+m[3] > 23 || +m[4] > 59))) {
    throw new FieldError(`'${original}' has no valid UTC offset (expected Z or +HH:MM)`);
  }
  if (m[1] || (m[3] === '00' && m[4] === '00')) return 'Z';
  return `${m[2]}${m[3]}:${m[4]}`;
}

/** The route's configuration (site code, partner id, unit tables...). */
export const config = {
  /** The value of `key`, or `fallback` when the route does not set it. */
  get(key, fallback = undefined) {
    const value = hostImports().getConfig(key);
    return value === undefined || value === null ? fallback : value;
  },
  /** The value of `key`, or a MapError.other telling the operator to set it. */
  require(key) {
    const value = hostImports().getConfig(key);
    if (value === undefined || value === null) {
      throw MapError.other(`the route configuration has no key '${key}'; set it in the route's config`);
    }
    return value;
  },
  /** Every [key, value] pair, sorted by key. */
  all() { return hostImports().getConfigAll(); },
};

function write(level, message, fields = {}) {
  hostImports().log(level, String(message), Object.entries(fields).map(([k, v]) => [String(k), String(v)]));
}

// A stack frame of the kit itself (or of the entry module componentize-js generates).
const KIT_FRAME = /(^|[/(@\s])src\/(millrace|glue|poster-glue|posting)\.js:|initializer\.js:/;

/**
 * The reason of the dead letter of an exception a plugin did not mean to throw (a bug, or a
 * message it did not expect): its name and text and the first frame of its stack. The glue
 * refuses the message with it as `other`, which the host dead-letters at once, since the same
 * message would throw again; the call trapped before, and the dead letter said only "Redirecting
 * call to abort() to mozalloc_abort". The whole stack goes to the host log (when the host is
 * there: a plugin's native tests have none).
 */
export function bug(what, error) {
  const name = error && error.name ? String(error.name) : typeof error;
  const message = error && error.message !== undefined ? String(error.message) : String(error);
  const stack = error && typeof error.stack === 'string' ? error.stack : '';
  if (host !== null) write('error', `${what} threw ${name}`, { stack });
  // V8 starts a stack with "Name: message" and "at" frames; SpiderMonkey (componentize-js)
  // lists frames only, as "fn@file:line:column".
  // The plugin's own frame that threw, or called the kit that did; none when the kit threw
  // checking what the plugin returned (the message names the field then).
  const frame = stack.split('\n').map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith(`${name}:`) && line !== name)
    .find((line) => !KIT_FRAME.test(line));
  // The file's name, not its path or URL: that is where the plugin was built, not where it runs.
  const where = frame ? ` (at ${frame.replace(/^at /, '').replace(/[^\s(@]*\//g, '')})` : '';
  // Text a WIT string cannot carry (an unpaired surrogate quoted from a payload) would trap
  // the call this reason is there to spare.
  return `${what} threw ${name}: ${message}${where}; a plugin refuses a message with MapError, so this is a bug in the plugin or a message it did not expect`
    .replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}

/** Structured logs to the host log: log.info('mapped', { rows: 3 }). */
export const log = {
  trace: (message, fields) => write('trace', message, fields),
  debug: (message, fields) => write('debug', message, fields),
  info: (message, fields) => write('info', message, fields),
  warn: (message, fields) => write('warn', message, fields),
  error: (message, fields) => write('error', message, fields),
};

/** Payload bytes to text. */
export const text = {
  /** UTF-8 (a leading byte-order mark dropped), or MapError.malformed naming the bad byte. */
  utf8(payload) {
    try {
      return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(payload);
    } catch {
      throw MapError.malformed(`payload is not UTF-8 (at byte ${firstBadUtf8(payload)})`);
    }
  },
  /**
   * ISO-8859-1: every byte is one character, never fails. A leading UTF-8 byte-order mark, which
   * an editor or a transfer may have added, is dropped: as Latin-1 it would read as `ï»¿`.
   */
  latin1(payload) {
    if (payload[0] === 0xef && payload[1] === 0xbb && payload[2] === 0xbf) {
      payload = payload.subarray(3);
    }
    let out = '';
    for (let i = 0; i < payload.length; i += 8192) {
      out += String.fromCharCode(...payload.subarray(i, i + 8192));
    }
    return out;
  },
};

function firstBadUtf8(bytes) {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let lo = 0;
  let hi = bytes.length;
  // The longest valid prefix, by bisection; a cut inside a character counts as invalid.
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    try {
      decoder.decode(bytes.subarray(0, mid));
      lo = mid;
    } catch {
      hi = mid - 1;
    }
  }
  return lo;
}

/** The event kinds of millrace:mapping@1.0.0. */
export const KINDS_OF_EVENT = [
  'inventory-movement', 'inventory-balance', 'work-order-status', 'material-consumption',
  'production-completion', 'quality-hold', 'supplier-commitment', 'shipment-notice',
];

/** Canonical events in the fixtures' JSON form. */
export const events = {
  /** One event: events.event('inventory-movement', { site, occurred_at, source_transaction, data }). */
  event(kind, { site, occurred_at, source_sequence, source_transaction, data }) {
    if (!KINDS_OF_EVENT.includes(kind)) throw new TypeError(`unknown event kind '${kind}'`);
    return compact({ kind, site, occurred_at, source_sequence, source_transaction, data });
  },
  /** A quantity: amount as decimal text (or bigint / safe integer), a UN/ECE Rec 20 unit code. */
  quantity(amount, uom) { return { amount: decimal.toWit(amount), uom }; },
};

/** `value` without null/undefined object entries, recursively: absent options are omitted. */
export function compact(value) {
  if (Array.isArray(value)) return value.map(compact);
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined && v !== null) out[k] = compact(v);
    return out;
  }
  return value;
}

// An unpaired surrogate: a high one not followed by a low one, or a low one not after a high one.
const UNPAIRED_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * The index of the first unpaired surrogate (U+D800 to U+DFFF) in `value`, or -1 when every
 * character is Unicode text a WIT string can carry. (A WIT string is UTF-8: componentize-js
 * writes such a surrogate as U+FFFD, so the host would get other text than the plugin sent.)
 */
export function unpairedSurrogate(value) {
  const m = UNPAIRED_SURROGATE.exec(value);
  return m ? m.index : -1;
}

/**
 * `value`, or MapError.malformed naming `where` when it holds an unpaired surrogate
 * (`where: text holds \ud800 at character 1, an unpaired surrogate escape that is no Unicode
 * character`).
 */
export function requireUnicode(value, where) {
  const at = unpairedSurrogate(value);
  if (at >= 0) {
    const unit = value.charCodeAt(at).toString(16).padStart(4, '0');
    throw MapError.malformed(`${where}: text holds \\u${unit} at character ${at}, an unpaired surrogate escape that is no Unicode character`);
  }
  return value;
}

const JSON_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Deeper documents are refused: a mapping's payload is never nested this deep, and the
// interpreter's stack is small.
const JSON_MAX_DEPTH = 512;

/** JSON payloads, read strictly: `jsondoc.parse(text.utf8(message.payload))`. */
export const jsondoc = {
  /**
   * The document, as `JSON.parse` gives it, but refusing with MapError.malformed naming the
   * JSON path what `JSON.parse` lets through and a mapping must not map: a key named twice in
   * one object (`JSON.parse` keeps the last, so `"event": "placed", "event": "released"` would
   * map as released): `$.data.scope.lots: the key is given twice in one object; ...`; and text
   * holding an unpaired surrogate escape (`"L\ud800"`): `$.lots[0]: text holds \ud800 ...`.
   * Text that is not JSON gives `not valid JSON: <the parser's reason>`.
   */
  parse(source) {
    let document;
    try {
      document = JSON.parse(source);
    } catch (error) {
      throw MapError.malformed(`not valid JSON: ${error.message}`);
    }
    checkJson(source);
    return document;
  },
  /**
   * The text at `key` of the object `parent` (whose JSON path is `path`), trimmed: a missing,
   * null or blank value is `MapError.malformed` naming the path when `required` (the default),
   * else `undefined`; any other JSON type is refused, never passed into an event (where it would
   * trap the call): `$.to_bin: expected text, got a number`.
   */
  text(parent, path, key, { required = true } = {}) {
    const value = parent[key];
    const where = jsondoc.path(path, key);
    if (value === undefined || value === null || (typeof value === 'string' && value.trim() === '')) {
      if (required) throw MapError.malformed(`${where}: required field is missing`);
      return undefined;
    }
    if (typeof value !== 'string') throw MapError.malformed(`${where}: expected text, got ${jsondoc.typeName(value)}`);
    return value.trim();
  },
  /** The object at `key` of `parent`, as `text` reads text. */
  object(parent, path, key, { required = true } = {}) {
    const value = parent[key];
    const where = jsondoc.path(path, key);
    if (value === undefined || value === null) {
      if (required) throw MapError.malformed(`${where}: required field is missing`);
      return undefined;
    }
    if (typeof value !== 'object' || Array.isArray(value)) throw MapError.malformed(`${where}: expected an object, got ${jsondoc.typeName(value)}`);
    return value;
  },
  /**
   * A value's type for an error: `null`, `a boolean`, `a number`, `text`, `a list`, `an
   * object` (and `a bigint`... for what JSON has not).
   */
  typeName(value) {
    if (value === null || value === undefined) return 'null';
    if (typeof value === 'string') return value.trim() ? 'text' : 'empty text';
    if (Array.isArray(value)) return 'a list';
    return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
  },
  /** The JSON path of `key` (an object key or an array index) under `parent`: `$.data`, `$.lots[1]`, `$["odd key"]`. */
  path(parent, key) {
    if (typeof key === 'number') return `${parent}[${key}]`;
    return JSON_NAME.test(key) ? `${parent}.${key}` : `${parent}[${JSON.stringify(key)}]`;
  },
};

/**
 * Walks JSON text that JSON.parse accepted, in document order and without recursion, for what
 * it lets through: a key given twice in one object, text with an unpaired surrogate escape.
 * Each open object or array is a frame; the path is written only for an error.
 */
function checkJson(source) {
  const frames = []; // an object: { keys: Set, key, expectKey }; an array: { keys: null, key: index }
  const where = () => frames.reduce((parent, frame) => (frame.key === undefined ? parent : jsondoc.path(parent, frame.key)), '$');
  const structural = /["{}[\],]/g;
  const stringEnd = /(?:[^"\\]|\\.)*"/y;
  for (let m = structural.exec(source); m !== null; m = structural.exec(source)) {
    const c = m[0];
    const frame = frames[frames.length - 1];
    if (c === '{' || c === '[') {
      if (frames.length >= JSON_MAX_DEPTH) throw MapError.malformed(`not valid JSON: arrays and objects nested deeper than ${JSON_MAX_DEPTH}`);
      frames.push(c === '{' ? { keys: new Set(), key: undefined, expectKey: true } : { keys: null, key: 0 });
    } else if (c === '}' || c === ']') {
      frames.pop();
    } else if (c === ',') {
      if (frame.keys === null) frame.key += 1;
      else frame.expectKey = true;
    } else {
      stringEnd.lastIndex = m.index + 1;
      stringEnd.exec(source);
      const end = stringEnd.lastIndex; // just after the closing quote
      const quoted = source.slice(m.index, end);
      // Only text with an escape differs from its source.
      const value = quoted.includes('\\') ? JSON.parse(quoted) : quoted.slice(1, -1);
      if (frame !== undefined && frame.keys !== null && frame.expectKey) {
        if (unpairedSurrogate(value) >= 0) {
          frame.key = undefined;
          requireUnicode(value, `${where()} (a key)`);
        }
        frame.key = value;
        if (frame.keys.has(value)) {
          throw MapError.malformed(`${where()}: the key is given twice in one object; a JSON object must name each key once`);
        }
        frame.keys.add(value);
        frame.expectKey = false;
      } else if (unpairedSurrogate(value) >= 0) {
        requireUnicode(value, where());
      }
      structural.lastIndex = end;
    }
  }
}
