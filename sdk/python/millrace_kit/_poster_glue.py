"""The component glue of an outbound plugin: hands the plugin's ``render`` and ``interpret`` to
componentize-py's ``WitWorld`` export of the ``poster`` world, converting the WIT bindings to the
kit's plain values (the event as a dict in the canonical JSON form, :class:`posting.Request`,
:class:`posting.Response`) and back.

Only importable inside a component build of the ``poster`` world (it needs the generated
``wit_world`` package); the build script's entry module calls :func:`world`.
"""

import dataclasses
import enum

from componentize_py_types import Err
from wit_world import WitWorld as _PosterWorld
from wit_world.imports import posting as _wit

from . import log, posting
from .errors import MapError, bug
from .text import wit_safe

_ERRORS = {
    "incomplete-event": _wit.RenderError_IncompleteEvent,
    "rejected-by-rule": _wit.RenderError_RejectedByRule,
    "other": _wit.RenderError_Other,
}

_VERDICTS = {
    "posted": _wit.Verdict_Posted,
    "rejected": _wit.Verdict_Rejected,
    "try-again": _wit.Verdict_TryAgain,
}


def world(render_function, interpret_function):
    """The ``WitWorld`` class componentize-py exports, calling the plugin's functions."""

    class WitWorld(_PosterWorld):
        def render(self, event):
            try:
                produced = render_function(_event(event))
                if produced is None:
                    raise TypeError("render() returned None; return a list of requests (maybe empty)")
                return [_lower_request(value, f"request {n}") for n, value in enumerate(produced)]
            except MapError as error:
                error = posting.RenderError.from_map_error(error)
                raise Err(_ERRORS[error.kind](wit_safe(error.message))) from None
            except posting.RenderError as error:
                raise Err(_ERRORS[error.kind](wit_safe(error.message))) from None
            except Exception as error:  # a bug: its dead letter says what and where
                raise Err(_ERRORS["other"](wit_safe(bug("render()", error)))) from None

        def interpret(self, event, request, response):
            verdict = interpret_function(
                _event(event),
                posting.Request(request.target, request.method.name.lower(), request.path,
                                request.headers, request.body),
                posting.Response(response.target, response.status, response.headers, response.body),
            )
            if not isinstance(verdict, posting.Verdict):
                log.error("interpret() must return posting.posted/rejected/try_again(...)",
                          got=type(verdict).__name__)
                raise TypeError(f"interpret() returned {type(verdict).__name__}, not a posting verdict")
            # The text may quote a target's answer (a JSON \\ud800 escape): never a trap.
            return _VERDICTS[verdict.kind](wit_safe(verdict.text))

    return WitWorld


def _event(event):
    return {"envelope": _plain(event.envelope), "data": _plain(event.data.value)}


def _plain(value):
    """A binding value as the canonical JSON form: dicts of snake_case fields, kebab-case enum
    values, absent options left out."""
    if dataclasses.is_dataclass(value):
        out = {}
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            if item is not None:
                out[field.name] = _plain(item)
        return out
    if isinstance(value, enum.Enum):
        return value.name.lower().replace("_", "-")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _lower_request(value, where):
    if not isinstance(value, posting.Request):
        raise TypeError(f"{where}: expected a posting.Request (posting.post(...)), got {type(value).__name__}")
    return _wit.Request(
        target=value.target,
        method=_wit.Method[value.method.upper()],
        path=value.path,
        headers=list(value.headers),
        body=value.body,
    )
