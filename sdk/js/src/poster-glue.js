// The component glue of an outbound plugin (used by the entry module build.mjs generates for
// the `poster` world): converts the jco binding form (camelCase fields, { tag, val } variants,
// bigint u64) of the event into the kit's plain form (the canonical JSON form: snake_case,
// absent options left out), calls the plugin's `render` / `interpret`, and converts the
// requests and verdict back. A thrown RenderError (or MapError, from config.require) becomes
// the WIT `render-error` (componentize-js lowers an export's `result` error from the thrown
// value's `payload`).

import { MapError, bug, log } from './millrace.js';
import { METHODS, RenderError, Request, Response, VERDICTS } from './posting.js';

const snake = (name) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** A jco value in the canonical JSON form. */
function plain(value) {
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Uint8Array) return value;
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined && v !== null)
      .map(([k, v]) => [snake(k), plain(v)]));
  }
  return value;
}

function toEvent(event) {
  return { envelope: plain(event.envelope), data: plain(event.data.val) };
}

function refusal(error) {
  const wrapped = new Error(error.message);
  wrapped.payload = { tag: error.kind, val: error.reason };
  return wrapped;
}

function toWitRequest(request, where) {
  if (!(request instanceof Request)) {
    throw new TypeError(`${where}: expected a Request from posting.post(...), got ${typeof request}`);
  }
  if (!METHODS.includes(request.method)) throw new TypeError(`${where}: unknown method '${request.method}'`);
  return { target: request.target, method: request.method, path: request.path, headers: request.headers, body: request.body };
}

/** The `render` and `interpret` exports, wrapping the plugin's plain functions. */
export function exportPoster(pluginRender, pluginInterpret) {
  if (typeof pluginRender !== 'function' || typeof pluginInterpret !== 'function') {
    throw new TypeError('the plugin module must export the functions `render(event)` and `interpret(event, request, response)`');
  }
  return {
    render(event) {
      let produced;
      try {
        produced = pluginRender(toEvent(event));
      } catch (error) {
        if (RenderError.is(error)) throw refusal(error);
        if (MapError.is(error)) throw refusal(RenderError.fromMapError(error));
        throw refusal(RenderError.other(bug('render()', error)));
      }
      if (!Array.isArray(produced)) throw new TypeError(`render() must return an array of requests, got ${typeof produced}`);
      return produced.map((request, n) => toWitRequest(request, `request ${n}`));
    },
    interpret(event, request, response) {
      let verdict;
      try {
        verdict = pluginInterpret(
          toEvent(event),
          new Request(request.target, request.method, request.path, request.headers, request.body),
          new Response(response.target, response.status, response.headers, response.body),
        );
      } catch (error) {
        log.error(`interpret() threw: ${error && error.stack ? `${error}\n${error.stack}` : error}`);
        throw error;
      }
      if (!verdict || !VERDICTS.includes(verdict.kind)) {
        throw new TypeError('interpret() must return posting.posted(...), posting.rejected(...) or posting.tryAgain(...)');
      }
      return { tag: verdict.kind, val: verdict.text };
    },
  };
}
