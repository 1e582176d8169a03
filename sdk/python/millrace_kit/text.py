"""Payload bytes to text: UTF-8 with a clear error, or Latin-1 for legacy sources."""

from .errors import MapError

__all__ = ["utf8", "latin1", "utf8_or_latin1"]

_BOM = b"\xef\xbb\xbf"


def _without_bom(payload):
    # Not the "utf-8-sig" codec: only codecs with a C fast path are in every component.
    data = bytes(payload)
    return data[3:] if data.startswith(_BOM) else data


def utf8(payload):
    """Decodes UTF-8 (a leading byte-order mark is dropped), or raises ``MapError.malformed``
    naming the offset of the first bad byte."""
    try:
        return _without_bom(payload).decode("utf-8")
    except UnicodeDecodeError as error:
        raise MapError.malformed(
            f"payload is not UTF-8: byte 0x{error.object[error.start]:02X} at byte {error.start}"
        ) from None


def latin1(payload):
    """Decodes ISO-8859-1: every byte is a character, so this never fails."""
    return bytes(payload).decode("latin-1")


def utf8_or_latin1(payload):
    """UTF-8 when the payload is valid UTF-8, else Latin-1."""
    try:
        return _without_bom(payload).decode("utf-8")
    except UnicodeDecodeError:
        return latin1(payload)
