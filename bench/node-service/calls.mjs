// `millrace-bench --calls`: the per-message cost of arm (e)'s mapping without its NATS work. Times
// the JavaScript mapping module the Node.js service runs (../plugins/bench-js/mapping.js) on the
// bench's two messages, decoded as the service decodes them, and prints
// {"shift_us": <mean µs>, "asn_us": <mean µs>}.
//
//   node calls.mjs <shift-report-file> <856-file> <seconds> <site>

import fs from 'node:fs';
import { mapMessage } from '../plugins/bench-js/mapping.js';

const [shiftFile, asnFile, seconds, site] = process.argv.slice(2);
const configGet = (key) => ({ site })[key];
const budget = Number(seconds) * 1000;

// The mean of the fastest of five rounds, as the Rust side measures.
function perCall(subject, payload) {
  for (let i = 0; i < 1000; i += 1) mapMessage(subject, payload.toString('latin1'), configGet);
  let best = Infinity;
  for (let round = 0; round < 5; round += 1) {
    const start = performance.now();
    let calls = 0;
    while (performance.now() - start < budget / 5) {
      for (let i = 0; i < 16; i += 1) mapMessage(subject, payload.toString('latin1'), configGet);
      calls += 16;
    }
    best = Math.min(best, ((performance.now() - start) * 1000) / calls);
  }
  return best;
}

const shift = perCall('raw.mes.plant0.shift-report', fs.readFileSync(shiftFile));
const asn = perCall('raw.edi.plant0.856', fs.readFileSync(asnFile));
process.stdout.write(`${JSON.stringify({ shift_us: shift, asn_us: asn })}\n`);
