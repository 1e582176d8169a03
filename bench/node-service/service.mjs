// Arm (e) of the millrace bench: a Node.js service with the `nats` npm package that does what a
// millrace route does, written the way a team would write it instead: subscribe (core NATS) or
// consume the route's durable pull consumers (JetStream), map with the same JavaScript mapping
// the bench's JavaScript plugin runs (../plugins/bench-js/mapping.js), wrap each event in the
// same CloudEvents envelope, publish. Messages of one subject are handled in order (a promise
// chain per subject), different subjects concurrently. On JetStream the raw message is acked
// only after JetStream stored every event: at-least-once, as the millrace host.
//
//   node service.mjs <nats-url> core|jetstream <site> [consumer...]
// Prints `ready` once it consumes.

import { createHash } from 'node:crypto';
import { connect, headers as natsHeaders } from 'nats';
import { mapMessage } from '../plugins/bench-js/mapping.js';

const [url, mode, site, ...consumers] = process.argv.slice(2);
const config = { site };
const configGet = (key) => config[key];
const nc = await connect({ servers: url, name: 'bench-node-service' });

function eventId(rawId, plugin, version, index) {
  const hash = createHash('sha256');
  for (const part of [rawId, plugin, version, String(index)]) {
    hash.update(part);
    hash.update('\0');
  }
  const hex = hash.digest('hex').slice(0, 32);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

function businessKey(event) {
  const d = event.data;
  if (event.kind === 'shipment-notice') return `${d.supplier}/${d.shipment_id}@${event.site}`;
  return `${d.work_order}@${event.site}${d.operation ? `/${d.operation}` : ''}`;
}

function outputs(subject, msgHeaders, payload, sequence) {
  const rawId = msgHeaders?.get('Nats-Msg-Id') || `RAW:${sequence}`;
  const system = subject.split('.')[1];
  const asn = subject.endsWith('.856');
  const [route, plugin] = asn ? ['asn', 'x12-856'] : ['shift', 'mes-shift-report'];
  const events = mapMessage(subject, Buffer.from(payload).toString('latin1'), configGet);
  return events.map((event, index) => {
    const id = eventId(rawId, plugin, '1.0.0', index);
    const envelope = {
      specversion: '1.0', id, source: `/${event.site}/${system}`, type: `millrace.${event.kind}.v1`,
      time: event.occurred_at, subject: businessKey(event), datacontenttype: 'application/json',
      data: event.data, route, plugin, pluginversion: '1.0.0', rawsequence: sequence,
      sourcesequence: event.source_sequence, sourcetransaction: event.source_transaction,
    };
    const h = natsHeaders();
    h.set('Nats-Msg-Id', id);
    h.set('Content-Type', 'application/cloudevents+json');
    return { subject: `canonical.${event.kind}.${event.site}`, headers: h, body: JSON.stringify(envelope) };
  });
}

// One promise chain per subject: in order within a subject, concurrent across subjects.
const chains = new Map();
function inOrder(subject, work) {
  const next = (chains.get(subject) ?? Promise.resolve()).then(work).catch((e) => {
    console.error(`bench node service: ${e?.message ?? JSON.stringify(e)}`);
  });
  chains.set(subject, next);
}

if (mode === 'core') {
  const sub = nc.subscribe('raw.>');
  await nc.flush();
  console.log('ready');
  for await (const m of sub) {
    inOrder(m.subject, async () => {
      for (const o of outputs(m.subject, m.headers, m.data, 0)) nc.publish(o.subject, o.body, { headers: o.headers });
    });
  }
} else {
  const js = nc.jetstream();
  const loops = [];
  for (const name of consumers) {
    const consumer = await js.consumers.get('RAW', name);
    const messages = await consumer.consume({ max_messages: 1024 });
    loops.push((async () => {
      for await (const m of messages) {
        inOrder(m.subject, async () => {
          const acks = outputs(m.subject, m.headers, m.data, m.seq).map((o) => js.publish(o.subject, o.body, { headers: o.headers }));
          await Promise.all(acks);
          m.ack();
        });
      }
    })());
  }
  console.log('ready');
  await Promise.all(loops);
}
