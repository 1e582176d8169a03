// Runs an outbound plugin's golden fixtures natively (no component, no host), as the host's
// admission runs them in the sandbox:
//
//   node sdk/js/check-fixtures.mjs <plugin-dir> [module]
//
// <module> (default app.js) exports render(event) and interpret(event, request, response). The
// route configuration is the manifest's [fixtures.config] (string values), `log` writes to
// stderr. Prints one line per fixture; exits 1 when any differs.

import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { MapError, useHost } from './src/millrace.js';
import { RenderError, Response, bodyBytes, eventFromCloudevent, requestJson } from './src/posting.js';

const [pluginArg, moduleArg = 'app.js'] = process.argv.slice(2);
if (!pluginArg) {
  process.stderr.write('usage: node check-fixtures.mjs <plugin-dir> [module]\n');
  process.exit(2);
}
const plugin = path.resolve(pluginArg);

/** The [fixtures.config] table of plugin.toml: `"key" = "value"` or `key = "value"` lines. */
function fixtureConfig() {
  const config = {};
  let inTable = false;
  for (const line of fs.readFileSync(path.join(plugin, 'plugin.toml'), 'utf8').split('\n')) {
    const trimmed = line.trim();
    if (trimmed.startsWith('[')) {
      inTable = trimmed === '[fixtures.config]';
      continue;
    }
    const m = inTable && trimmed.match(/^"?([^"=]+?)"?\s*=\s*"((?:[^"\\]|\\.)*)"\s*(#.*)?$/);
    if (m) config[m[1]] = JSON.parse(`"${m[2]}"`);
  }
  return config;
}

const config = fixtureConfig();
useHost({
  getConfig: (key) => config[key],
  getConfigAll: () => Object.entries(config).sort(([a], [b]) => (a < b ? -1 : 1)),
  log: (level, message, fields) => process.stderr.write(`${level} ${message} ${JSON.stringify(fields)}\n`),
});
const { render, interpret } = await import(pathToFileURL(path.join(plugin, moduleArg)));

const same = (a, b) => JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));
function sorted(value) {
  if (Array.isArray(value)) return value.map(sorted);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sorted(value[k])]));
  }
  return value;
}

function check(fixture) {
  const event = eventFromCloudevent(fixture.event);
  let requests;
  try {
    requests = render(event);
  } catch (error) {
    const refusal = RenderError.is(error) ? error : MapError.is(error) ? RenderError.fromMapError(error) : null;
    if (!refusal) throw error;
    const actual = { [refusal.kind]: shown(refusal.reason) };
    return same(fixture.error, actual) ? [] : [`error differs:\n  expected ${JSON.stringify(fixture.error)}\n  got      ${JSON.stringify(actual)}`];
  }
  const rendered = requests.map(requestJson);
  if (fixture.error) return [`expected the error ${JSON.stringify(fixture.error)}, rendered ${JSON.stringify(rendered)}`];
  const problems = [];
  const expected = fixture.requests ?? [];
  if (expected.length !== rendered.length) {
    problems.push(`expected ${expected.length} request(s), rendered ${rendered.length}: ${JSON.stringify(rendered)}`);
  }
  expected.forEach((want, n) => {
    if (n < rendered.length && !same(want, rendered[n])) {
      problems.push(`request ${n} differs:\n  expected ${JSON.stringify(want)}\n  rendered ${JSON.stringify(rendered[n])}`);
    }
  });
  (fixture.answers ?? []).forEach((answer, n) => {
    const request = requests[answer.request];
    if (!request) {
      problems.push(`answer ${n}: no rendered request ${answer.request}`);
      return;
    }
    const r = answer.response;
    const verdict = interpret(event, request, new Response(r.target ?? request.target, r.status, r.headers ?? [], bodyBytes(r.body)));
    const got = { [verdict.kind]: shown(verdict.text) };
    if (!same(answer.verdict, got)) {
      problems.push(`answer ${n}: verdict differs:\n  expected ${JSON.stringify(answer.verdict)}\n  got      ${JSON.stringify(got)}`);
    }
  });
  return problems;
}

const folder = path.join(plugin, 'fixtures');
const names = fs.readdirSync(folder).filter((n) => n.endsWith('.json')).sort();
let failed = 0;
for (const name of names) {
  const problems = check(JSON.parse(fs.readFileSync(path.join(folder, name), 'utf8')));
  if (problems.length) failed += 1;
  process.stdout.write(problems.length ? `FAIL ${name}\n${problems.map((p) => `  ${p}`).join('\n')}\n` : `ok   ${name}\n`);
}
process.stdout.write(`${names.length - failed} passed, ${failed} failed\n`);
process.exit(failed || names.length === 0 ? 1 : 0);

// `text` as the host takes a plugin's text: its control characters but tab written as escapes
// (`\n`, `\u{0}`, `\u{1b}`), as Rust writes them (`millrace_core::posting::shown`), so these
// native checks judge what `millrace plugin test` judges.
function shown(text) {
  if (typeof text !== 'string') return text;
  const named = { '\n': '\\n', '\r': '\\r' };
  return Array.from(text, (c) => {
    const code = c.codePointAt(0);
    if (c === '\t' || !(code < 0x20 || (code >= 0x7f && code <= 0x9f))) return c;
    return named[c] ?? `\\u{${code.toString(16)}}`;
  }).join('');
}
