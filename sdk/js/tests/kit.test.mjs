// The kit's own tests, natively in Node: `node --test sdk/js/tests/kit.test.mjs` (scripts/test runs them).
// The kit is plain ES modules, so what runs here is what componentize-js bundles.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { exportMap } from '../src/glue.js';
import { MapError, bug, jsondoc, requireUnicode, text, unpairedSurrogate } from '../src/millrace.js';

/** The MapError `fn` throws, as [kind, reason]. */
function refusal(fn) {
  try {
    fn();
  } catch (error) {
    assert.ok(MapError.is(error), `expected a MapError, got ${error}`);
    return [error.kind, error.reason];
  }
  assert.fail('expected a MapError, got a result');
}

test('jsondoc.parse gives what JSON.parse gives for a valid document', () => {
  const text = '{"a": 1, "b": {"c": [1, "x\\u00e9", {"d": null}]}, "e": "\\ud83d\\ude00", "f": "\\"}]\\\\"}';
  assert.deepEqual(jsondoc.parse(text), JSON.parse(text));
  assert.deepEqual(jsondoc.parse('"plain"'), 'plain');
  assert.deepEqual(jsondoc.parse('[[], {}, [{}], 0.5]'), [[], {}, [{}], 0.5]);
});

test('jsondoc.parse refuses a key given twice in one object, naming its path', () => {
  const twice = 'the key is given twice in one object; a JSON object must name each key once';
  assert.deepEqual(refusal(() => jsondoc.parse('{"event": "placed", "event": "released"}')),
    ['malformed-input', `$.event: ${twice}`]);
  assert.deepEqual(refusal(() => jsondoc.parse('{"a": {}, "b": [], "c": [{}, {"q": 1, "q": 2}]}')),
    ['malformed-input', `$.c[1].q: ${twice}`]);
  // Written differently, the same key.
  assert.deepEqual(refusal(() => jsondoc.parse('{"\\u0061": 1, "a": 2}')), ['malformed-input', `$.a: ${twice}`]);
  assert.deepEqual(refusal(() => jsondoc.parse('{"odd key": {"k": 1, "k": 1}}')),
    ['malformed-input', `$["odd key"].k: ${twice}`]);
  // The same key in two objects is fine.
  assert.deepEqual(jsondoc.parse('[{"k": 1}, {"k": 2}]'), [{ k: 1 }, { k: 2 }]);
});

test('jsondoc.parse refuses text with an unpaired surrogate escape, naming its path', () => {
  const unpaired = (unit, at) => `text holds \\u${unit} at character ${at}, an unpaired surrogate escape that is no Unicode character`;
  assert.deepEqual(refusal(() => jsondoc.parse('{"lots": ["L\\ud800"]}')), ['malformed-input', `$.lots[0]: ${unpaired('d800', 1)}`]);
  assert.deepEqual(refusal(() => jsondoc.parse('{"x": {"a\\udc00": 1}}')), ['malformed-input', `$.x (a key): ${unpaired('dc00', 1)}`]);
  assert.deepEqual(refusal(() => jsondoc.parse('"\\ude00\\ud83d"')), ['malformed-input', `$: ${unpaired('de00', 0)}`]);
});

test('jsondoc.parse names text that is not JSON, and a document nested too deep', () => {
  const [kind, reason] = refusal(() => jsondoc.parse('{"a": 1,}'));
  assert.equal(kind, 'malformed-input');
  assert.match(reason, /^not valid JSON: /);
  assert.deepEqual(refusal(() => jsondoc.parse('['.repeat(600) + ']'.repeat(600))),
    ['malformed-input', 'not valid JSON: arrays and objects nested deeper than 512']);
  assert.equal(jsondoc.parse('['.repeat(500) + ']'.repeat(500)).length, 1);
});

test('unpairedSurrogate and requireUnicode', () => {
  assert.equal(unpairedSurrogate('plain text é 😀'), -1);
  assert.equal(unpairedSurrogate('ab\ud800'), 2);
  assert.equal(unpairedSurrogate('\udc00'), 0);
  assert.equal(requireUnicode('ok', 'here'), 'ok');
  assert.deepEqual(refusal(() => requireUnicode('x\ud83d', 'here')),
    ['malformed-input', 'here: text holds \\ud83d at character 1, an unpaired surrogate escape that is no Unicode character']);
});

function movement(item) {
  return {
    kind: 'inventory-movement', site: 'PLANT1', occurred_at: '2026-03-02T06:15:00+01:00',
    data: { movement_type: 'receipt', item, quantity: { amount: '1', uom: 'EA' } },
  };
}

test('the glue refuses an event text field holding an unpaired surrogate as malformed-input, naming the field', () => {
  const map = exportMap(() => [movement('MAT-1'), movement('MAT\ud800X')]);
  try {
    map({});
    assert.fail('expected the call to be refused');
  } catch (error) {
    assert.deepEqual(error.payload, {
      tag: 'malformed-input',
      val: 'event 1.data.item: text holds \\ud800 at character 3, an unpaired surrogate escape that is no Unicode character',
    });
  }
  const [event] = exportMap(() => [movement('MAT-1 😀')])({});
  assert.equal(event.data.val.item, 'MAT-1 😀');
});

test('text.latin1 reads every byte as a character and drops a leading UTF-8 byte-order mark', () => {
  assert.equal(text.latin1(new Uint8Array([0x4d, 0xfc, 0x6c])), 'M\u00fcl');
  assert.equal(text.latin1(new Uint8Array([0xef, 0xbb, 0xbf, 0x4d, 0xfc, 0x6c])), 'M\u00fcl');
  assert.equal(text.utf8(new Uint8Array([0xef, 0xbb, 0xbf, 0x6f, 0x6b])), 'ok');
});

test('jsondoc.text and jsondoc.object read a field of the expected type or refuse naming its path', () => {
  const doc = jsondoc.parse('{"to_bin": 12, "item": " MAT-1 ", "blank": " ", "scope": [], "site": {"code": "P1"}}');
  assert.equal(jsondoc.text(doc, '$', 'item'), 'MAT-1');
  assert.equal(jsondoc.text(doc, '$', 'missing', { required: false }), undefined);
  assert.equal(jsondoc.text(doc, '$', 'blank', { required: false }), undefined);
  assert.deepEqual(jsondoc.object(doc, '$', 'site'), { code: 'P1' });
  const refusal = (call) => {
    try {
      call();
    } catch (error) {
      assert.ok(error instanceof MapError);
      assert.equal(error.kind, 'malformed-input');
      return error.reason;
    }
    return assert.fail('not refused');
  };
  assert.equal(refusal(() => jsondoc.text(doc, '$', 'to_bin', { required: false })), '$.to_bin: expected text, got a number');
  assert.equal(refusal(() => jsondoc.text(doc, '$', 'blank')), '$.blank: required field is missing');
  assert.equal(refusal(() => jsondoc.object(doc, '$.x', 'scope')), '$.x.scope: expected an object, got a list');
  assert.equal(refusal(() => jsondoc.object(doc, '$', 'none')), '$.none: required field is missing');
});

test('decimal.parse refuses what the host cannot hold, as the Rust kit does', async () => {
  const { decimal, FieldError } = await import('../src/millrace.js');
  assert.equal(decimal.parse('79228162514264337593543950335'), '79228162514264337593543950335');
  assert.equal(decimal.parse('1.' + '0'.repeat(40)), '1');
  for (const [source, message] of [['79228162514264337593543950336', 'too many digits'], ['0.' + '1'.repeat(29), 'more than 28 decimals']]) {
    assert.throws(() => decimal.parse(source), (error) => error instanceof FieldError && error.message.includes(message));
  }
  assert.throws(() => decimal.implied('1'.repeat(40), 2), FieldError);
});

test('an exception the plugin did not mean is refused as other, saying what and where', () => {
  const map = exportMap(function mapping() { return { quantity: 1 }.quantty.amount; });
  try {
    map({});
    assert.fail('expected the call to be refused');
  } catch (error) {
    assert.equal(error.payload.tag, 'other');
    assert.match(error.payload.val, /^map\(\) threw TypeError: Cannot read properties of undefined \(reading 'amount'\) \(at mapping \(kit\.test\.mjs:\d+:\d+\)\); a plugin refuses a message with MapError/);
  }
  // Not an Error at all, and text no WIT string carries.
  assert.equal(bug('render()', 'lost \ud800'),
    'render() threw string: lost \ufffd; a plugin refuses a message with MapError, so this is a bug in the plugin or a message it did not expect');
});
