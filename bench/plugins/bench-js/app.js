// bench-js: the bench's JavaScript plugin; the mapping itself is mapping.js, shared with the
// Node.js service so both JavaScript arms run the same code.

import { MapError, config, text } from '../../../sdk/js/src/millrace.js';
import { mapMessage } from './mapping.js';

const ERRORS = {
  'malformed-input': MapError.malformed,
  'unsupported-document': MapError.unsupported,
  'rejected-by-rule': MapError.rejected,
  other: MapError.other,
};

export function map(message) {
  try {
    return mapMessage(message.subject, text.latin1(message.payload), (key) => config.get(key));
  } catch (e) {
    if (e && e.mapError) throw ERRORS[e.mapError](e.message);
    throw e;
  }
}
