// Template mapping: a JSON stock receipt to one inventory-movement event.
//
// Input: {"receipt": "GR-1", "item": "MAT-100", "quantity": "12.5", "unit": "KG",
//         "to_bin": "WH1-A-01", "received_at": "2026-03-02T06:15:00+01:00"}

import { MapError, config, decimal, events, jsondoc, malformedAt, text, timestamp } from '../src/millrace.js';

// Source units to UN/ECE Recommendation 20 codes.
const UNITS = { EA: 'EA', PC: 'PCE', KG: 'KGM', M: 'MTR' };

export function map(message) {
  // Not JSON.parse: it keeps the last of a key given twice and lets unpaired surrogate escapes
  // through; jsondoc refuses both, naming the JSON path.
  const doc = jsondoc.parse(text.utf8(message.payload));
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw MapError.malformed('$: expected a JSON object');

  // Text or refused naming its path: a number or an object passed into an event would trap the
  // call.
  const field = (name, required = true) => jsondoc.text(doc, '$', name, { required });
  const amount = malformedAt('$.quantity', () => decimal.parse(field('quantity')));
  const unit = UNITS[field('unit').toUpperCase()];
  if (!unit) throw MapError.malformed(`$.unit: unknown unit '${field('unit')}'`);
  const receivedAt = malformedAt('$.received_at', () => timestamp.parse(field('received_at')));

  return [
    events.event('inventory-movement', {
      site: config.require('site'),
      occurred_at: receivedAt,
      source_transaction: field('receipt'),
      data: {
        movement_type: 'receipt',
        item: field('item'),
        quantity: events.quantity(amount, unit),
        to_location: field('to_bin', false),
        stock_status: 'unrestricted',
        reference_document: field('receipt'),
        // Carried when plugin.toml targets millrace:mapping@1.1.0; logged on 1.0.0.
        expiry_date: field('expires', false),
      },
    }),
  ];
}
