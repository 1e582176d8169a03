// Builds a millrace plugin written in JavaScript into a WebAssembly component.
//
//   node sdk/js/build.mjs <plugin-dir> <out.wasm> [module]
//
// <module> (default app.js) is the plugin's ES module exporting `map(message)` (a mapping
// plugin) or `render(event)` and `interpret(event, request, response)` (an outbound plugin, whose
// plugin.toml names `wit = "millrace:outbound@1.0.0"`). An entry module in <plugin-dir>/.build
// wires it to the `mapper` (or `poster`) world's exports through the kit's glue,
// and componentize-js (pinned in package.json / package-lock.json, installed into
// sdk/js/node_modules with `npm ci` when missing) compiles it against the WIT package the
// plugin's plugin.toml names (`wit = "millrace:mapping@1.1.0"`; 1.0.0 when it names none). Does
// nothing when <out.wasm> is newer than every source, so `millrace plugin test` stays fast.
//
// WASI features the host does not grant are disabled (http, fetch-event, clocks, random); stdio
// stays, so a plugin's uncaught error reaches the host log before the call traps.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const kit = path.dirname(fileURLToPath(import.meta.url));
const DISABLED = ['http', 'fetch-event', 'clocks', 'random'];
const SKIP = new Set(['node_modules', '.build', 'fixtures', 'out']);

function fail(message) {
  process.stderr.write(`error: ${message}\n`);
  process.exit(1);
}

const [pluginArg, outArg, moduleArg = 'app.js'] = process.argv.slice(2);
if (!pluginArg || !outArg) fail('usage: node build.mjs <plugin-dir> <out.wasm> [module]');
const plugin = path.resolve(pluginArg);
const out = path.resolve(outArg);
const entryModule = path.join(plugin, moduleArg);

// The WIT version the manifest targets: its top-level `wit` key.
const manifestPath = path.join(plugin, 'plugin.toml');
let witPackage = 'millrace:mapping@1.0.0';
if (fs.existsSync(manifestPath)) {
  for (const line of fs.readFileSync(manifestPath, 'utf8').split('\n')) {
    if (line.trim().startsWith('[')) break;
    const m = line.match(/^\s*wit\s*=\s*"([^"]+)"/);
    if (m) { witPackage = m[1]; break; }
  }
}
const wit = path.resolve(kit, `../../wit/${witPackage.replace(/^millrace:/, '')}`);
if (!fs.existsSync(wit)) fail(`${manifestPath}: wit = "${witPackage}" is not a WIT package of this kit (no ${wit})`);
// The world: `mapper` of millrace:mapping, `poster` of millrace:outbound.
const poster = witPackage.startsWith('millrace:outbound@');
const worldName = poster ? 'poster' : 'mapper';
if (!fs.existsSync(entryModule)) {
  fail(`${entryModule} not found: the plugin module must export ${poster ? 'render(event) and interpret(event, request, response)' : 'map(message)'}`);
}

function newestSource() {
  let newest = 0;
  const visit = (dir, keep) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!SKIP.has(entry.name)) visit(full, keep);
      } else if (keep(entry.name)) {
        newest = Math.max(newest, fs.statSync(full).mtimeMs);
      }
    }
  };
  const js = (name) => /\.m?js$/.test(name);
  visit(plugin, js);
  visit(path.join(kit, 'src'), js);
  visit(wit, (name) => name.endsWith('.wit'));
  for (const file of ['build.mjs', 'package-lock.json']) {
    newest = Math.max(newest, fs.statSync(path.join(kit, file)).mtimeMs);
  }
  if (fs.existsSync(manifestPath)) newest = Math.max(newest, fs.statSync(manifestPath).mtimeMs);
  return newest;
}

if (fs.existsSync(out) && fs.statSync(out).mtimeMs > newestSource()) process.exit(0);

// The pinned tool; installed once per checkout. A lock directory keeps two plugins built at
// the same time from running npm twice.
const wanted = JSON.parse(fs.readFileSync(path.join(kit, 'package.json'), 'utf8')).devDependencies;
const pinned = wanted['@bytecodealliance/componentize-js'];
const installed = () => Object.entries(wanted).every(([name, version]) => {
  const manifest = path.join(kit, 'node_modules', name, 'package.json');
  return fs.existsSync(manifest) && JSON.parse(fs.readFileSync(manifest, 'utf8')).version === version;
});
if (!installed()) {
  const lock = path.join(kit, 'node_modules.lock');
  const started = Date.now();
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch {
      if (Date.now() - started > 600_000) fail(`${lock} is held for 10 minutes; remove it if no build runs`);
      spawnSync('sleep', ['1']);
    }
  }
  try {
    if (!installed()) {
      process.stderr.write(`installing @bytecodealliance/componentize-js@${pinned} into ${kit}/node_modules\n`);
      const npm = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: kit, stdio: ['ignore', 2, 2] });
      if (npm.status !== 0) fail('`npm ci` in sdk/js failed (see above); Node.js 18+ and npm are needed');
    }
  } finally {
    fs.rmdirSync(lock);
  }
}

const build = path.join(plugin, '.build');
fs.mkdirSync(build, { recursive: true });
fs.mkdirSync(path.dirname(out), { recursive: true });
const rel = (target) => {
  const r = path.relative(build, target).split(path.sep).join('/');
  return r.startsWith('.') ? r : `./${r}`;
};
const entry = path.join(build, 'entry.js');
// An outbound plugin's host interface is that of the mapping package its WIT depends on.
const hostImport = poster ? 'millrace:mapping/host@1.1.0' : witPackage.replace('@', '/host@');
if (poster) {
  fs.writeFileSync(entry, `// Generated by sdk/js/build.mjs: exports ${moduleArg}'s render and interpret as the poster world's.
import * as host from '${hostImport}';
import { useHost } from '${rel(path.join(kit, 'src/millrace.js'))}';
import { render as pluginRender, interpret as pluginInterpret } from '${rel(entryModule)}';
import { exportPoster } from '${rel(path.join(kit, 'src/poster-glue.js'))}';

useHost(host);

export const { render, interpret } = exportPoster(pluginRender, pluginInterpret);
`);
} else fs.writeFileSync(entry, `// Generated by sdk/js/build.mjs: exports ${moduleArg}'s map as the mapper world's \`map\`.
import * as host from '${witPackage.replace('@', '/host@')}';
import { useHost } from '${rel(path.join(kit, 'src/millrace.js'))}';
import { map as pluginMap } from '${rel(entryModule)}';
import { exportMap } from '${rel(path.join(kit, 'src/glue.js'))}';

useHost(host);

export const map = exportMap(pluginMap, ${JSON.stringify(witPackage)});
`);

const { componentize } = await import(pathToFileURL(path.join(kit, 'node_modules/@bytecodealliance/componentize-js/src/componentize.js')));
// componentize-js maps the working directory as the component's source root when the entry is
// inside it; modules outside that root cannot be loaded. Work from the deepest folder holding
// both the plugin and the kit, so the plugin's `../../sdk/js/src/millrace.js` import resolves.
const root = commonAncestor(plugin, kit);
if (root === path.sep) {
  // componentize-js cannot use / as that root (it strips one character too many).
  fail(`${plugin} and the kit ${kit} share no folder but /: keep plugins in the same tree as the kit`);
}
process.chdir(root);
let result;
try {
  result = await componentize({ sourcePath: entry, witPath: wit, worldName, disableFeatures: DISABLED });
} catch (error) {
  fail(`componentize-js could not build ${plugin}:\n${error && error.message ? error.message : error}`);
}
// Write beside the target and rename, so a failed build never leaves a fresh-looking component.
fs.writeFileSync(`${out}.tmp`, result.component);
fs.renameSync(`${out}.tmp`, out);

function commonAncestor(a, b) {
  const x = a.split(path.sep);
  const y = b.split(path.sep);
  let n = 0;
  while (n < x.length && n < y.length && x[n] === y[n]) n += 1;
  return x.slice(0, n).join(path.sep) || path.sep;
}
