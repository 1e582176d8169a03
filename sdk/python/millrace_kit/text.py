"""Payload bytes to text: UTF-8 with a clear error, or Latin-1 for legacy sources; and the check
that text can cross the WIT boundary (a WIT string is UTF-8: an unpaired surrogate, which a JSON
escape such as ``\\ud800`` or a ``surrogateescape`` decoding makes, cannot be sent and would trap
the call)."""

from .errors import MapError

__all__ = ["utf8", "latin1", "utf8_or_latin1", "unpaired_surrogate", "require_unicode", "wit_safe"]

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
    """Decodes ISO-8859-1: every byte is a character, so this never fails. A leading UTF-8
    byte-order mark, which an editor or a transfer may have added, is dropped: as Latin-1 it
    would read as the text ``ï»¿``."""
    return _without_bom(payload).decode("latin-1")


def utf8_or_latin1(payload):
    """UTF-8 when the payload is valid UTF-8, else Latin-1 (a leading byte-order mark is
    dropped either way)."""
    try:
        return _without_bom(payload).decode("utf-8")
    except UnicodeDecodeError:
        return latin1(payload)


def unpaired_surrogate(value):
    """The index of the first unpaired surrogate (U+D800 to U+DFFF) in ``value``, or ``None``
    when every character is Unicode text a WIT string can carry."""
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        return error.start
    return None


def require_unicode(value, where):
    """``value``, or ``MapError.malformed`` naming ``where`` when it holds an unpaired surrogate
    (``where: text holds \\ud800 at character 1, an unpaired surrogate escape that is no
    Unicode character``)."""
    at = unpaired_surrogate(value)
    if at is not None:
        raise MapError.malformed(
            f"{where}: text holds \\u{ord(value[at]):04x} at character {at}, an unpaired "
            "surrogate escape that is no Unicode character"
        )
    return value


def wit_safe(value):
    """``value`` with each unpaired surrogate written as its escape (``\\ud800``), for text
    that only reports (an error message, a log field) and must never trap the call."""
    value = str(value)
    if unpaired_surrogate(value) is None:
        return value
    return value.encode("utf-8", "backslashreplace").decode("utf-8")
