"""Native unit tests of millrace_kit's pure helpers: `python3 -m unittest discover sdk/python/tests`."""

import datetime
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from millrace_kit import MapError, config, decimals, events, malformed_at, text, timestamps  # noqa: E402


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

    def test_text_and_config(self):
        self.assertEqual(text.utf8(b"\xef\xbb\xbfok"), "ok")
        with self.assertRaises(MapError) as caught:
            text.utf8(b"ab\xe9")
        self.assertEqual(caught.exception.message, "payload is not UTF-8: byte 0xE9 at byte 2")
        config.set_for_tests({"site": "PLANT1"})
        self.assertEqual(config.require("site"), "PLANT1")
        with self.assertRaises(MapError) as caught:
            config.require("partner")
        self.assertEqual(caught.exception.kind, "other")


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


if __name__ == "__main__":
    unittest.main()
