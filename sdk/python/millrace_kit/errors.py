"""Typed map errors: why a mapping refuses a message.

Raise ``MapError.malformed(...)`` (or ``unsupported``, ``rejected``, ``other``) anywhere in a
mapping; the kit's glue turns it into the WIT ``map-error`` case of the same name. Any other
exception is a bug in the mapping (or a message it did not expect): the glue refuses the message
as ``other`` with the exception's type, text and line (:func:`bug`), and the host dead-letters it.
"""

from contextlib import contextmanager

__all__ = ["MapError", "malformed_at", "rejected_at"]


class KindedError(Exception):
    """A plugin's refusal as a case of a WIT error variant (``KINDS``) and its message; the
    kit's glue lowers it into the case of the same name. ``MapError`` and ``posting.RenderError``
    are its two variants."""

    #: The WIT case names, in the order of the variant.
    KINDS = ()
    #: The WIT variant's name, for the error on an unknown kind.
    VARIANT = ""

    def __init__(self, kind, message):
        if kind not in self.KINDS:
            raise ValueError(f"unknown {self.VARIANT} kind {kind!r}; expected one of {self.KINDS}")
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = str(message)

    @classmethod
    def rejected(cls, message):
        """A business rule refuses the message or event."""
        return cls("rejected-by-rule", message)

    @classmethod
    def other(cls, message):
        """Any other reason, for example a route configuration the plugin cannot use."""
        return cls("other", message)


class MapError(KindedError):
    """A mapping's refusal of a message: a WIT ``map-error`` case and its message."""

    KINDS = ("malformed-input", "unsupported-document", "rejected-by-rule", "other")
    VARIANT = "map-error"

    @classmethod
    def malformed(cls, message):
        """The payload is not well-formed for its format (bad syntax, wrong encoding, truncated)."""
        return cls("malformed-input", message)

    @classmethod
    def unsupported(cls, message):
        """The payload is well-formed but of a document type or version this mapping does not map."""
        return cls("unsupported-document", message)


@contextmanager
def _refusing(kind, context):
    try:
        yield
    except MapError:
        raise
    except (ValueError, KeyError, TypeError) as error:
        # KeyError's str() quotes its key; its argument reads better.
        reason = error.args[0] if isinstance(error, KeyError) and error.args else error
        raise MapError(kind, f"{context}: {reason}") from error


def malformed_at(context):
    """Turns a ``ValueError`` (or ``KeyError``/``TypeError``) raised inside the block into
    ``MapError.malformed("<context>: <error>")``, so the message says where it happened::

        with malformed_at(f"line {n}, field qty"):
            qty = decimals.parse(fields[3])
    """
    return _refusing("malformed-input", context)


def rejected_at(context):
    """Like :func:`malformed_at`, but the error becomes ``MapError.rejected``."""
    return _refusing("rejected-by-rule", context)


def bug(what, error):
    """The reason of the dead letter of an exception a plugin did not mean to raise (a bug, or a
    message it did not expect): its type and text and the line that raised it, as a
    ``map-error.other`` the host dead-letters at once, since the same message would raise it
    again. Without this the call trapped, and the dead letter said only "Python function threw
    an unexpected exception". Every frame goes to the host log. (The frames are read from the
    traceback object itself: a component has no ``traceback`` module unless the plugin imports
    it, nor the source files it would quote.)"""
    from . import log

    frames = []  # (in the kit, "file:line, in function"), outermost first
    tb = error.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        path = code.co_filename.replace("\\", "/")
        # The file's name, not its path: that is where the plugin was built, not where it runs.
        name = path.rsplit("/", 1)[-1]
        frames.append(("/millrace_kit/" in path, f"{name}:{tb.tb_lineno}, in {code.co_name}"))
        tb = tb.tb_next
    log.error(f"{what} raised {type(error).__name__}: {error}",
              frames=" <- ".join(frame for _, frame in reversed(frames)))
    # The plugin's own line that raised it, or called the kit that did; none when the kit
    # raised it checking what the plugin returned (the message names the field then).
    own = [frame for in_kit, frame in frames if not in_kit]
    where = f" (at {own[-1]})" if own else ""
    return (f"{what} raised {type(error).__name__}: {error}{where}; a plugin refuses a message "
            f"with MapError, so this is a bug in the plugin or a message it did not expect")
