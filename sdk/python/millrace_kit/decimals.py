"""Exact decimal quantities: parse source text, read implied-decimal fields, and write the WIT
``decimal`` form ``-?digits(.digits)?``.

Amounts are :class:`decimal.Decimal` and never pass through ``float``.
"""

import decimal
import re

__all__ = ["Decimal", "parse", "implied", "to_wit", "is_wit_decimal"]

Decimal = decimal.Decimal

_WIT = re.compile(r"-?[0-9]+(\.[0-9]+)?")
# Enough precision for any amount a source sends, so no arithmetic here ever rounds silently.
_CONTEXT = decimal.Context(prec=60, traps=[decimal.Inexact, decimal.InvalidOperation])


def parse(text, mark="."):
    """Parses a decimal written with the decimal mark ``mark`` (usually ``.`` or ``,``).

    Accepts surrounding spaces, an optional leading ``+`` or ``-``, at least one digit, and an
    optional ``mark`` followed by at least one digit: ``12``, ``-0,410``, `` 3.5 ``. Rejects
    exponents, thousands separators and anything else with a ``ValueError`` that quotes the text.
    """
    if not isinstance(text, str):
        raise TypeError(f"expected the number as text, got {type(text).__name__}")
    trimmed = text.strip(" ")
    if not trimmed:
        raise ValueError("empty number")
    sign = ""
    if trimmed[0] in "+-":
        sign, trimmed = ("-" if trimmed[0] == "-" else ""), trimmed[1:]
    whole, has_mark, fraction = trimmed.partition(mark)
    if not _digits(whole) or (has_mark and not _digits(fraction)):
        raise ValueError(f"'{text}' is not a decimal number")
    _check_size(text, whole, fraction)
    return Decimal(f"{sign}{whole}.{fraction}" if has_mark else f"{sign}{whole}")


def implied(field, scale):
    """Reads a fixed-width numeric field with ``scale`` implied decimals: ``000125`` with 2
    gives ``1.25``. The field is ASCII digits, optionally led by ``+`` or ``-``."""
    trimmed = field.strip(" ")
    if not trimmed:
        raise ValueError("empty number")
    negative = trimmed[0] == "-"
    digits = trimmed[1:] if trimmed[0] in "+-" else trimmed
    if not _digits(digits):
        raise ValueError(f"'{field}' is not a decimal number")
    padded = digits.rjust(scale + 1, "0")
    _check_size(field, padded[: len(padded) - scale], padded[len(padded) - scale :])
    value = Decimal(int(digits)).scaleb(-scale, _CONTEXT)
    return -value if negative else value


def to_wit(value):
    """Writes ``value`` (a ``Decimal``, an ``int`` or decimal text) in the normalised WIT form:
    no exponent, no trailing fractional zeros, no ``-0`` (``12.500`` gives ``12.5``).

    A ``float`` is refused with ``TypeError``: it cannot carry an exact quantity.
    """
    if isinstance(value, float):
        raise TypeError("a float cannot carry an exact quantity; parse the source text instead")
    if isinstance(value, str):
        value = parse(value)
    value = Decimal(value)
    if not value.is_finite():
        raise ValueError(f"{value} is not a finite number")
    if value.is_zero():
        return "0"
    # normalize() strips trailing zeros; format 'f' never writes an exponent.
    return format(value.normalize(_CONTEXT), "f")


def is_wit_decimal(text):
    """True when ``text`` is in the WIT ``decimal`` form ``-?digits(.digits)?``."""
    return isinstance(text, str) and _WIT.fullmatch(text) is not None


# What the host's decimals hold (as the Rust kit's): a 96-bit mantissa, 28 decimals. A larger
# amount is refused here, naming the field, rather than by the host as an invalid event.
_MAX_MANTISSA = 2**96 - 1
_MAX_SCALE = 28


def _check_size(text, whole, fraction):
    fraction = fraction.rstrip("0")
    if len(fraction) > _MAX_SCALE:
        raise ValueError(f"'{text}' has more than {_MAX_SCALE} decimals")
    if int((whole + fraction) or "0") > _MAX_MANTISSA:
        raise ValueError(f"'{text}' has too many digits")


def _digits(text):
    return bool(text) and all("0" <= c <= "9" for c in text)
