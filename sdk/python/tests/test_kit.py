"""Native unit tests of millrace_kit's pure helpers: `python3 -m unittest discover sdk/python/tests`."""

import datetime
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from millrace_kit import MapError, RenderError, config, decimals, events, jsondoc, malformed_at, posting, text, timestamps  # noqa: E402

KIT = os.path.join(os.path.dirname(__file__), "..")


class Decimals(unittest.TestCase):
    def test_parses_and_normalises(self):
        cases = [("12.5", ".", "12.5"), ("12,5", ",", "12.5"), (" -0,410 ", ",", "-0.41"),
                 ("+7", ".", "7"), ("0007.000", ".", "7"), ("-0.00", ".", "0"), ("1250.000", ".", "1250"),
                 ("79228162514264337593543950335", ".", "79228162514264337593543950335")]
        for source, mark, wit in cases:
            self.assertEqual(decimals.to_wit(decimals.parse(source, mark)), wit, source)

    def test_rejects_garbage(self):
        for source in ["1e5", "1,000.5", "12.", ".5", "--1", "1 2", "abc", "12.5.1", "1_000", "٣", "NaN", ""]:
            with self.assertRaises(ValueError, msg=source):
                decimals.parse(source)
        with self.assertRaises(ValueError):
            decimals.parse("12.5", ",")

    def test_refuses_what_the_host_cannot_hold(self):
        # The Rust kit's limits (a 96-bit mantissa, 28 decimals): refused in the plugin, naming
        # the field, not by the host as an invalid event.
        for source, message in [("79228162514264337593543950336", "too many digits"),
                                ("0." + "1" * 29, "more than 28 decimals")]:
            with self.assertRaises(ValueError) as caught:
                decimals.parse(source)
            self.assertIn(message, str(caught.exception))
        self.assertEqual(decimals.to_wit(decimals.parse("1." + "0" * 40)), "1")
        with self.assertRaises(ValueError):
            decimals.implied("1" * 40, 2)

    def test_implied_and_floats(self):
        self.assertEqual(decimals.to_wit(decimals.implied("000125", 2)), "1.25")
        self.assertEqual(decimals.to_wit(decimals.implied("-000050", 1)), "-5")
        self.assertEqual(decimals.to_wit(100), "100")
        self.assertEqual(decimals.to_wit("100.0"), "100")
        with self.assertRaises(TypeError):
            decimals.to_wit(0.1)
        self.assertTrue(decimals.is_wit_decimal("-3.5"))
        self.assertFalse(decimals.is_wit_decimal("1."))


class Timestamps(unittest.TestCase):
    def test_round_trips(self):
        self.assertEqual(timestamps.rfc3339(timestamps.parse("2026-03-02T09:41:27.512Z")), "2026-03-02T09:41:27.512Z")
        self.assertEqual(timestamps.rfc3339(timestamps.parse("2026-03-05T22:17:03-05:00")), "2026-03-05T22:17:03-05:00")
        self.assertEqual(timestamps.rfc3339(timestamps.parse("2026-03-05T22:17:03+00:00")), "2026-03-05T22:17:03Z")
        self.assertEqual(timestamps.from_compact("20260302", "061500", "+01:00"), "2026-03-02T06:15:00+01:00")
        self.assertEqual(timestamps.full_date(datetime.date(2026, 3, 2)), "2026-03-02")
        # RFC 3339 digits are ASCII: other scripts' digits match `\d` but are refused.
        with self.assertRaises(ValueError):
            timestamps.parse("\u0662\u0660\u0662\u0666-03-02T09:41:27Z")

    def test_keeps_the_fraction_as_sent(self):
        # A datetime holds microseconds; the digits beyond them must not be cut (up to 9, as the
        # host's RFC 3339 check takes them).
        for source, written in [("2026-03-02T09:41:27.123456789Z", "2026-03-02T09:41:27.123456789Z"),
                                ("2026-03-02T09:41:27.000000001-05:00", "2026-03-02T09:41:27.000000001-05:00"),
                                ("2026-03-02T09:41:27.1234567+00:00", "2026-03-02T09:41:27.1234567Z"),
                                ("2026-03-02T09:41:27.5000000+01:00", "2026-03-02T09:41:27.5+01:00"),
                                ("2026-03-02T09:41:27.000000000Z", "2026-03-02T09:41:27Z")]:
            moment = timestamps.parse(source)
            self.assertEqual(timestamps.rfc3339(moment), written, source)
            self.assertIsInstance(moment, datetime.datetime)
        moment = timestamps.parse("2026-03-02T09:41:27.123456789Z")
        self.assertEqual(moment.microsecond, 123456)
        # A value derived from it writes its own microseconds, never the parsed digits.
        self.assertEqual(timestamps.rfc3339(moment + datetime.timedelta(seconds=1)), "2026-03-02T09:41:28.123456Z")
        self.assertEqual(timestamps.rfc3339(moment.replace(microsecond=0)), "2026-03-02T09:41:27Z")
        with self.assertRaises(ValueError):
            timestamps.parse("2026-03-02T09:41:27.1234567890Z")

    def test_refuses_bad_times(self):
        for source in ["2026-03-02T11:00:00", "2026-02-30T11:00:00Z", "2026-03-02T25:00:00Z", "yesterday"]:
            with self.assertRaises(ValueError, msg=source):
                timestamps.parse(source)


class Errors(unittest.TestCase):
    def test_malformed_at_names_the_place(self):
        with self.assertRaises(MapError) as caught:
            with malformed_at("line 3, field qty"):
                decimals.parse("12,5")
        self.assertEqual(caught.exception.kind, "malformed-input")
        self.assertEqual(caught.exception.message, "line 3, field qty: '12,5' is not a decimal number")

    def test_a_bug_is_named_with_its_type_text_and_line(self):
        from millrace_kit.errors import bug

        def mapping():
            return {"quantity": 1}["quantty"]

        try:
            mapping()
        except KeyError as error:
            why = bug("map()", error)
        self.assertIn("map() raised KeyError: 'quantty' (at ", why)
        self.assertIn("(at test_kit.py:", why)
        self.assertIn(", in mapping)", why)
        self.assertIn("a bug in the plugin or a message it did not expect", why)

    def test_text_and_config(self):
        self.assertEqual(text.utf8(b"\xef\xbb\xbfok"), "ok")
        with self.assertRaises(MapError) as caught:
            text.utf8(b"ab\xe9")
        self.assertEqual(caught.exception.message, "payload is not UTF-8: byte 0xE9 at byte 2")
        self.assertEqual(text.latin1(b"\xef\xbb\xbfM\xfcller"), "M\u00fcller")
        self.assertEqual(text.latin1(b"M\xfcller"), "M\u00fcller")
        self.assertEqual(text.utf8_or_latin1(b"\xef\xbb\xbfM\xfcller"), "M\u00fcller")
        config.set_for_tests({"site": "PLANT1"})
        self.assertEqual(config.require("site"), "PLANT1")
        with self.assertRaises(MapError) as caught:
            config.require("partner")
        self.assertEqual(caught.exception.kind, "other")


class JsonDoc(unittest.TestCase):
    def refusal(self, source):
        with self.assertRaises(MapError) as caught:
            jsondoc.parse(source)
        self.assertEqual(caught.exception.kind, "malformed-input")
        return caught.exception.message

    def test_parses_like_json_loads(self):
        source = '{"a": {"b": [1, {"c": "d\\u00e9", "e": null}]}, "odd key": true, "pair": "\\ud83d\\ude00"}'
        self.assertEqual(jsondoc.parse(source), json.loads(source))
        self.assertEqual(self.refusal('{"a": 1,}'), "not valid JSON: line 1, column 9: Expecting property name enclosed in double quotes")
        self.assertEqual(self.refusal("[" * 100000), "not valid JSON: arrays and objects nested deeper than 512")

    def test_refuses_what_would_trap_the_interpreter(self):
        # Natively Python recurses deeper; in a component 2,000 levels exhausted the stack (a
        # trap), so depth is checked before parsing, brackets in text not counted.
        deep = '{"a": ' + "[" * 2000 + "]" * 2000 + "}"
        self.assertEqual(self.refusal(deep), "not valid JSON: arrays and objects nested deeper than 512")
        self.assertEqual(jsondoc.parse("[" * 512 + "]" * 512), json.loads("[" * 512 + "]" * 512))
        self.assertEqual(jsondoc.parse('{"t": "' + "[{" * 600 + '\\"]"}'), {"t": "[{" * 600 + '"]'})
        self.assertTrue(self.refusal('{"n": ' + "9" * 5000 + "}").startswith("not valid JSON: a number: Exceeds the limit (4300 digits)"))

    def test_depth_check_reads_escapes_and_long_text(self):
        # Escaped quotes and backslashes do not end text; brackets after the text count.
        self.assertEqual(jsondoc.parse('{"a": "\\\\", "b": ["]]]]"]}'), {"a": "\\", "b": ["]]]]"]})
        self.assertEqual(self.refusal('{"k": "' + '\\"' * 10 + '", "d": ' + "[" * 513 + "]" * 513 + "}"),
                         "not valid JSON: arrays and objects nested deeper than 512")
        # A 3 MB text and 300,000 escapes: the check must not keep state per character (in a
        # component a 300 KB string ran out of memory).
        self.assertEqual(len(jsondoc.parse('{"a": "' + "x" * 3_000_000 + '"}')["a"]), 3_000_000)
        self.assertEqual(len(jsondoc.parse('{"a": "' + "\\n" * 300_000 + '"}')["a"]), 300_000)

    def test_refuses_nan_and_infinity(self):
        # Not JSON (RFC 8259), though json.loads reads them.
        self.assertEqual(self.refusal('{"q": NaN}'), "not valid JSON: NaN is not a JSON number")
        self.assertEqual(self.refusal("[-Infinity]"), "not valid JSON: -Infinity is not a JSON number")

    def test_fields_of_an_expected_type(self):
        doc = jsondoc.parse('{"to_bin": 12, "item": " MAT-1 ", "blank": " ", "scope": [], "site": {"code": "P1"}}')
        self.assertEqual(jsondoc.text(doc, "$", "item"), "MAT-1")
        self.assertIsNone(jsondoc.text(doc, "$", "missing", required=False))
        self.assertIsNone(jsondoc.text(doc, "$", "blank", required=False))
        self.assertEqual(jsondoc.object_at(doc, "$", "site"), {"code": "P1"})
        for call, message in [
            (lambda: jsondoc.text(doc, "$", "to_bin", required=False), "$.to_bin: expected text, got a number"),
            (lambda: jsondoc.text(doc, "$", "blank"), "$.blank: required field is missing"),
            (lambda: jsondoc.object_at(doc, "$.x", "scope"), "$.x.scope: expected an object, got a list"),
            (lambda: jsondoc.object_at(doc, "$", "none"), "$.none: required field is missing"),
        ]:
            with self.assertRaises(MapError) as caught:
                call()
            self.assertEqual(caught.exception.message, message)

    def test_refuses_a_key_given_twice_naming_its_path(self):
        self.assertEqual(self.refusal('{"event": "placed", "event": "released"}'),
                         "$.event: the key is given twice in one object; a JSON object must name each key once")
        self.assertTrue(self.refusal('{"data": {"lots": ["L1"], "x": [{}, {"lots": 1, "lots": []}]}}')
                        .startswith("$.data.x[1].lots: the key is given twice"))
        self.assertTrue(self.refusal('{"a b": 1, "a b": 1}').startswith('$["a b"]: the key is given twice'))

    def test_refuses_unpaired_surrogates_naming_their_path(self):
        self.assertEqual(self.refusal('{"scope": {"lots": ["L\\ud800X"]}}'),
                         "$.scope.lots[0]: text holds \\ud800 at character 1, an unpaired surrogate escape "
                         "that is no Unicode character")
        self.assertTrue(self.refusal('{"a": {"\\udc80": 1}}').startswith("$.a (a key): text holds \\udc80"))
        self.assertTrue(self.refusal('"\\ude00\\ud83d"').startswith("$: text holds \\ude00"))

    def test_text_for_the_wit_boundary(self):
        # Any text a plugin hands the host is UTF-8; an unpaired surrogate would trap the call.
        self.assertIsNone(text.unpaired_surrogate("Gießerei \U0001F600"))
        self.assertEqual(text.unpaired_surrogate("ab\udcff"), 2)
        self.assertEqual(text.require_unicode("L1", "x"), "L1")
        with self.assertRaises(MapError) as caught:
            text.require_unicode(b"L\xe9".decode("utf-8", "surrogateescape"), "event 0.data.scope.lot")
        self.assertTrue(caught.exception.message.startswith("event 0.data.scope.lot: text holds \\udce9 at character 1"))
        self.assertEqual(text.wit_safe("L\ud800X"), "L\\ud800X")
        self.assertEqual(text.wit_safe("ok é"), "ok é")


class Events(unittest.TestCase):
    def test_event_drops_absent_options(self):
        event = events.event("quality-hold", site="P1", occurred_at="2026-03-02T06:15:00Z",
                             data={"hold_id": "H", "action": "placed", "scope": {"lot": "L1", "item": None},
                                   "reason": "r", "disposition": None})
        self.assertEqual(event, {"kind": "quality-hold", "site": "P1", "occurred_at": "2026-03-02T06:15:00Z",
                                 "data": {"hold_id": "H", "action": "placed", "scope": {"lot": "L1"}, "reason": "r"}})
        self.assertEqual(events.quantity("12.500", "KGM"), {"amount": "12.5", "uom": "KGM"})
        with self.assertRaises(ValueError):
            events.event("stock-level", site="P1", occurred_at="x", data={})


class Posting(unittest.TestCase):
    def test_builds_requests_and_reads_answers(self):
        request = posting.post("erp", "/odata/v1/GoodsMovements", json={"Quantity": "12.5"},
                               headers=[("Accept", "application/json")])
        self.assertEqual(request.body, b'{"Quantity":"12.5"}')
        self.assertEqual(request.header("content-type"), "application/json")
        self.assertEqual(posting.request_json(request)["method"], "post")
        with self.assertRaises(TypeError):
            posting.post("erp", "/x", json={"Quantity": 12.5})
        answer = posting.Response("erp", 400, [("content-type", "application/json")],
                                  b'{"error":{"code":"M7/021","message":{"lang":"en","value":"no such material"}}}')
        self.assertEqual(answer.error_message(), "M7/021: no such material")
        self.assertEqual(answer.summary(), "HTTP 400 from erp: M7/021: no such material")
        self.assertFalse(answer.is_transient())
        self.assertTrue(posting.Response("erp", 429).is_transient())
        self.assertEqual(posting.Response("erp", 201, body=b'{"d":{"Doc":4900001234}}').json_str("d", "Doc"), "4900001234")
        # JSON in any encoding json.loads reads from bytes, and none too deep to parse.
        self.assertEqual(posting.Response("erp", 200, body=b'\xef\xbb\xbf{"a": 1}').json(), {"a": 1})
        self.assertEqual(posting.Response("erp", 200, body='{"a": 2}'.encode("utf-16")).json(), {"a": 2})
        self.assertIsNone(posting.Response("erp", 503, body=b'{"e":' * 2000).json())
        self.assertEqual(posting.try_again("busy"), ("try-again", "busy"))
        self.assertEqual(RenderError.from_map_error(MapError.other("no key")).kind, "other")

    def test_the_poster_template_passes_its_golden_fixtures(self):
        template = os.path.join(KIT, "template-poster")
        sys.path.insert(0, template)
        try:
            import app  # the template's module
            self.assertEqual(posting.check_fixtures(app, template), 9)
            event = posting.event_from_cloudevent(json.load(open(os.path.join(template, "fixtures", "completion-posted.json")))["event"])
            self.assertEqual(event["envelope"]["subject"], "canonical.production-completion.PLANT1")
            self.assertEqual(event["envelope"]["lineage"]["raw_id"], "raw:8812")
            # A plugin that renders something else fails, naming the fixture and the difference.
            original = app.render
            app.render = lambda e: [posting.post("erp", "/elsewhere")] if e["envelope"]["kind"] == "production-completion" and "lot" in e["data"] else original(e)
            with self.assertRaises(AssertionError) as caught:
                posting.check_fixtures(app, template)
            self.assertIn("completion-posted.json: request 0 differs", str(caught.exception))
            app.render = original
        finally:
            sys.path.remove(template)
            sys.modules.pop("app", None)


if __name__ == "__main__":
    unittest.main()
