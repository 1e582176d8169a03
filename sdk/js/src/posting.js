// millrace kit for JavaScript: outbound plugins (the `poster` world of
// wit/outbound@1.0.0/posting.wit).
//
// A poster is an ES module (app.js) exporting two plain functions:
//
//   import { RenderError, posting } from '../../sdk/js/src/posting.js';
//   export function render(event) {               // one canonical event -> its requests
//     if (event.envelope.kind !== 'production-completion') return [];   // not posted
//     return [posting.post('erp', '/api/completions', { json: { order: event.data.work_order } })];
//   }
//   export function interpret(event, request, response) {   // a target's answer -> a verdict
//     if (response.isSuccess()) return posting.posted(response.jsonStr('id') ?? '');
//     if (response.isTransient()) return posting.tryAgain(response.summary());
//     return posting.rejected(response.errorMessage() ?? response.summary());
//   }
//
// `event` is { envelope: { id, kind, site, subject, time, lineage: {...} }, data: {...} }, the
// data in the JSON form of the canonical stream (snake_case fields, kebab-case enum values,
// absent options left out). Pure JavaScript: no Node APIs, so it runs inside the component
// and natively (check-fixtures.mjs runs a plugin's golden fixtures with it).

import { KindedError } from './millrace.js';

/** Why a poster cannot render requests for an event: a WIT `render-error` case (permanent). */
export class RenderError extends KindedError {
  static variant = 'render-error';
  static kinds = ['incomplete-event', 'rejected-by-rule', 'other'];
  static brand = Symbol.for('millrace.RenderError');
  /** The event lacks something the target needs (a lot, a unit the target knows). */
  static incomplete(message) { return new RenderError('incomplete-event', message); }
  /** The render error of the same meaning as a MapError (config.require and the format helpers throw those). */
  static fromMapError(error) {
    const kind = error.kind === 'rejected-by-rule' || error.kind === 'other' ? error.kind : 'incomplete-event';
    return new RenderError(kind, error.reason);
  }
}

/** The HTTP methods of the WIT `method` enum. */
export const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8');

/** Bytes from what a caller or the bindings hand over: a Uint8Array, any typed array or
 * ArrayBuffer, an array of numbers, or text (UTF-8). */
function bytes(body) {
  if (body instanceof Uint8Array) return body;
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  if (Array.isArray(body)) return Uint8Array.from(body);
  return encoder.encode(String(body));
}

function header(headers, name) {
  const wanted = name.toLowerCase();
  const found = headers.find(([n]) => n.toLowerCase() === wanted);
  return found ? found[1] : undefined;
}

/**
 * One request to one target: target (as the host's configuration names it), method ('post'...),
 * path (appended to the target's base URL), headers ([[name, value]]) and body (Uint8Array).
 * The host adds Idempotency-Key (the event id).
 */
export class Request {
  constructor(target, method, path, headers = [], body = new Uint8Array()) {
    if (!METHODS.includes(method)) throw new TypeError(`unknown method '${method}'; expected one of ${METHODS.join(', ')}`);
    this.target = String(target);
    this.method = method;
    this.path = String(path);
    this.headers = headers.map(([n, v]) => [String(n), String(v)]);
    this.body = bytes(body);
  }
  /** The first value of the header `name` (any case). */
  header(name) { return header(this.headers, name); }
}

/** A target's answer: target, status, headers ([[name, value]], names in lower case), body (Uint8Array). */
export class Response {
  constructor(target, status, headers = [], body = new Uint8Array()) {
    this.target = String(target);
    this.status = Number(status);
    this.headers = headers.map(([n, v]) => [String(n), String(v)]);
    this.body = bytes(body);
  }
  /** The first value of the header `name` (any case). */
  header(name) { return header(this.headers, name); }
  /** The body as text. */
  text() { return decoder.decode(this.body); }
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json() {
    try {
      return JSON.parse(this.text());
    } catch {
      return undefined;
    }
  }
  /** The text at `path` (keys and indexes) of the JSON body, when it is text or a number: jsonStr('d', 'MaterialDocument'). */
  jsonStr(...path) {
    let value = this.json();
    for (const step of path) {
      if (value === null || typeof value !== 'object') return undefined;
      value = value[step];
    }
    return typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;
  }
  /** 2xx. */
  isSuccess() { return this.status >= 200 && this.status < 300; }
  /** An answer that says "not now" rather than "no": 408, 423 (locked), 425, 429 and every 5xx. */
  isTransient() { return [408, 423, 425, 429].includes(this.status) || this.status >= 500; }
  /**
   * The verdict for a redirect (3xx: a sign-in page, a moved service) or refused credentials
   * (401, 403): the target's configuration to fix, never the event's fault, so try again naming
   * what to check; undefined for any other answer.
   */
  accessProblem() {
    if (this.status >= 300 && this.status < 400) {
      const to = this.header('location');
      return posting.tryAgain(`${this.target} redirected the request (HTTP ${this.status}${to ? ` to ${to}` : ''}): a sign-in page or a moved service; check the target's url and auth`);
    }
    if (this.status === 401 || this.status === 403) {
      const message = this.errorMessage();
      return posting.tryAgain(`${this.target} refused the credentials (HTTP ${this.status}${message ? `: ${message}` : ''}); check the target's auth`);
    }
    return undefined;
  }
  /**
   * The verdict for a success (2xx) without `proof` (what the service answers when it has booked
   * a request): an error body is rejected with its message; anything else (no body, a proxy's
   * HTML page) is try again: a retry with the same Idempotency-Key cannot book twice, and gets
   * the booked answer. A NATS target's answer (its `nats-stream` header: the request is stored on
   * the target's stream) is all such a target confirms: posted.
   */
  successWithout(proof) {
    if (this.header('nats-stream') !== undefined) return posting.posted('');
    const body = this.json();
    const message = this.errorMessage();
    if (body && typeof body === 'object' && 'error' in body && message) return posting.rejected(message);
    const text = this.text().trim();
    const shown = text ? `'${firstChars(text, 120)}'` : 'no body';
    return posting.tryAgain(`HTTP ${this.status} from ${this.target} without ${proof} (${shown}): not confirmed as booked; asked again with the same Idempotency-Key`);
  }
  /**
   * The target's own error message: '<code>: <message>' of an OData error body
   * ({"error": {"code", "message"}}), the `message` or text `error` of another JSON body, else
   * the body's first 200 characters; undefined when the body is empty.
   */
  errorMessage() {
    const body = this.json();
    if (body && typeof body === 'object') {
      const error = body.error;
      if (error && typeof error === 'object') {
        let message = error.message;
        if (message && typeof message === 'object') message = message.value;
        if (typeof message === 'string') {
          return typeof error.code === 'string' && error.code ? `${error.code}: ${message}` : message;
        }
      }
      if (typeof error === 'string') return error;
      if (typeof body.message === 'string') return body.message;
    }
    const text = this.text().trim();
    return text ? firstChars(text, 200) : undefined;
  }
  /** 'HTTP 503 from erp: <the target's error message>', for a verdict or a log. */
  summary() {
    const message = this.errorMessage();
    const head = `HTTP ${this.status} from ${this.target}`;
    return message ? `${head}: ${message}` : head;
  }
}

function refuseFloats(value, where) {
  if (typeof value === 'number' && !Number.isInteger(value)) {
    throw new TypeError(`${where}: the number ${value} in a JSON body; write quantities as decimal text`);
  }
  if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) refuseFloats(item, `${where}.${key}`);
  }
}

/** The verdict kinds. */
/** The first `n` characters (code points) of `text`, without spreading a large body whole. */
function firstChars(text, n) {
  return Array.from(text.slice(0, 2 * n)).slice(0, n).join('');
}

export const VERDICTS = ['posted', 'rejected', 'try-again'];

export const posting = {
  /**
   * A request. `{ json: value }` sends compact JSON with Content-Type: application/json;
   * `{ body, contentType }` sends bytes or text; `headers` adds headers ([[name, value]]).
   */
  request(method, target, path, { json, body, contentType, headers = [] } = {}) {
    let all = [...headers];
    let bytes = body === undefined ? new Uint8Array() : body;
    let type = contentType;
    if (json !== undefined) {
      refuseFloats(json, '$');
      bytes = encoder.encode(JSON.stringify(json));
      type = 'application/json';
    }
    if (type !== undefined) {
      all = all.filter(([n]) => n.toLowerCase() !== 'content-type');
      all.push(['Content-Type', type]);
    }
    return new Request(target, method, path, all, bytes);
  },
  get(target, path, options) { return posting.request('get', target, path, options); },
  post(target, path, options) { return posting.request('post', target, path, options); },
  put(target, path, options) { return posting.request('put', target, path, options); },
  patch(target, path, options) { return posting.request('patch', target, path, options); },
  delete(target, path, options) { return posting.request('delete', target, path, options); },
  /** The target booked it, under its document id (empty when it gives none). */
  posted(document = '') { return { kind: 'posted', text: String(document) }; },
  /** The target refused it for good (the event is dead-lettered with this reason). */
  rejected(reason) { return { kind: 'rejected', text: String(reason) }; },
  /** The target cannot take it now; the host retries with backoff. */
  tryAgain(why) { return { kind: 'try-again', text: String(why) }; },
};

function withoutNulls(value) {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => [k, withoutNulls(v)]));
  }
  return value;
}

/**
 * The event a poster receives, from a CloudEvent as on the canonical stream (as the host
 * converts it: subject canonical.<kind>.<site>, raw id raw:<rawsequence>, plugin
 * <plugin>@<pluginversion>).
 */
export function eventFromCloudevent(ce) {
  const kind = ce.type.replace(/^millrace\./, '').replace(/\.v1$/, '');
  const site = ce.source.split('/')[1];
  const lineage = {
    raw_id: `raw:${ce.rawsequence ?? 0}`,
    route: ce.route ?? '',
    plugin: `${ce.plugin ?? ''}@${ce.pluginversion ?? ''}`,
  };
  if (ce.sourcetransaction != null) lineage.source_transaction = ce.sourcetransaction;
  if (ce.sourcesequence != null) lineage.source_sequence = ce.sourcesequence;
  return {
    envelope: { id: ce.id, kind, site, subject: `canonical.${kind}.${site}`, time: ce.time, lineage },
    data: withoutNulls(ce.data),
  };
}

/** A request in the fixtures' JSON form. */
export function requestJson(request) {
  return {
    target: request.target,
    method: request.method,
    path: request.path,
    headers: request.headers.map(([n, v]) => [n, v]),
    body: bodyJson(request.body),
  };
}

function bodyJson(body) {
  if (body.length > 0) {
    try {
      return JSON.parse(decoder.decode(body));
    } catch {
      // not JSON: base64 below
    }
  }
  let binary = '';
  for (const byte of body) binary += String.fromCharCode(byte);
  return { base64: btoa(binary) };
}

/** The bytes a fixture's body stands for. */
export function bodyBytes(body) {
  if (body && typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length === 1 && typeof body.base64 === 'string') {
    return Uint8Array.from(atob(body.base64), (c) => c.charCodeAt(0));
  }
  return body === undefined || body === null ? new Uint8Array() : encoder.encode(JSON.stringify(body));
}
