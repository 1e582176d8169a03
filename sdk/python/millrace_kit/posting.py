"""Outbound plugins: the Python side of ``world poster`` in ``wit/outbound@1.0.0/posting.wit``.

A poster module (``app.py``) defines two plain functions::

    from millrace_kit import RenderError, posting

    def render(event):                 # one canonical event -> the requests that post it
        data = event["data"]
        if event["envelope"]["kind"] != "production-completion":
            return []                  # not posted
        if "lot" not in data:
            raise RenderError.incomplete("no lot")
        return [posting.post("erp", "/api/completions", json={"order": data["work_order"]})]

    def interpret(event, request, response):   # a target's answer -> a verdict
        if response.is_success():
            return posting.posted(response.json_str("id") or "")
        if response.is_transient():
            return posting.try_again(response.summary())
        return posting.rejected(response.error_message() or response.summary())

``event`` is a dict: ``{"envelope": {"id", "kind", "site", "subject", "time", "lineage": {...}},
"data": {...}}``, the data in the JSON form of the canonical stream (snake_case fields,
kebab-case enum values, absent options left out). ``request`` and ``response`` are
:class:`Request` and :class:`Response`. Outside a component :func:`check_fixtures` runs the
plugin's golden fixtures, as the host's admission does.
"""

import base64
import json as _json
import os

from . import config
from .errors import KindedError, MapError
from .jsondoc import check_depth

__all__ = [
    "METHODS",
    "RenderError",
    "Request",
    "Response",
    "Verdict",
    "check_fixtures",
    "delete",
    "event_from_cloudevent",
    "get",
    "patch",
    "post",
    "posted",
    "put",
    "rejected",
    "request",
    "try_again",
]

#: The HTTP methods of the WIT ``method`` enum.
METHODS = ("get", "post", "put", "patch", "delete")


class RenderError(KindedError):
    """Why a poster cannot render requests for an event (a WIT ``render-error`` case). Every case
    is permanent: the host dead-letters the event."""

    KINDS = ("incomplete-event", "rejected-by-rule", "other")
    VARIANT = "render-error"

    @classmethod
    def incomplete(cls, message):
        """The event lacks something the target needs (a lot, a unit the target knows)."""
        return cls("incomplete-event", message)

    @classmethod
    def from_map_error(cls, error):
        """The render error of the same meaning as a ``MapError`` (``config.require`` and the
        format helpers raise those)."""
        kind = {"rejected-by-rule": "rejected-by-rule", "other": "other"}.get(error.kind, "incomplete-event")
        return cls(kind, error.message)


class Request:
    """One request to one target: ``target`` (as the host's configuration names it), ``method``
    (``"post"``...), ``path`` (appended to the target's base URL), ``headers`` (a list of
    ``(name, value)``) and ``body`` (bytes). The host adds ``Idempotency-Key`` (the event id)."""

    def __init__(self, target, method, path, headers=(), body=b""):
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
        self.target = str(target)
        self.method = method
        self.path = str(path)
        self.headers = [(str(n), str(v)) for n, v in headers]
        self.body = bytes(body)

    def header(self, name):
        """The first value of the header ``name`` (any case), or ``None``."""
        return _header(self.headers, name)

    def __eq__(self, other):
        return isinstance(other, Request) and vars(self) == vars(other)

    def __repr__(self):
        return f"Request({self.method} {self.target}{self.path})"


def request(method, target, path, json=None, body=None, content_type=None, headers=()):
    """A request. ``json=value`` sends ``value`` as compact JSON with ``Content-Type:
    application/json``; ``body=bytes`` with ``content_type`` sends bytes. Quantities stay
    decimal text: never pass a float."""
    headers = list(headers)
    if json is not None:
        body, content_type = _dumps(json).encode(), "application/json"
    if content_type is not None:
        headers = [(n, v) for n, v in headers if n.lower() != "content-type"]
        headers.append(("Content-Type", content_type))
    return Request(target, method, path, headers, body or b"")


def get(target, path, **kwargs):
    """A GET (see :func:`request`)."""
    return request("get", target, path, **kwargs)


def post(target, path, **kwargs):
    """A POST (see :func:`request`)."""
    return request("post", target, path, **kwargs)


def put(target, path, **kwargs):
    """A PUT (see :func:`request`)."""
    return request("put", target, path, **kwargs)


def patch(target, path, **kwargs):
    """A PATCH (see :func:`request`)."""
    return request("patch", target, path, **kwargs)


def delete(target, path, **kwargs):
    """A DELETE (see :func:`request`)."""
    return request("delete", target, path, **kwargs)


class Response:
    """A target's answer: ``target``, ``status``, ``headers`` (names in lower case) and ``body``
    (bytes)."""

    def __init__(self, target, status, headers=(), body=b""):
        self.target = str(target)
        self.status = int(status)
        self.headers = [(str(n), str(v)) for n, v in headers]
        self.body = bytes(body)

    def header(self, name):
        """The first value of the header ``name`` (any case), or ``None``."""
        return _header(self.headers, name)

    def json(self):
        """The body parsed as JSON, or ``None`` when it is not JSON (or nested too deeply for the
        interpreter's stack: a target's error page is no reason to trap)."""
        try:
            # As json.loads reads bytes: UTF-8 (a byte-order mark allowed), UTF-16 or UTF-32.
            text = self.body.decode(_json.detect_encoding(self.body))
            check_depth(text)
            return _json.loads(text)
        except (ValueError, MapError):
            return None

    def json_str(self, *path):
        """The text at ``path`` (keys and list indexes) of the JSON body, when it is text or a
        number: ``response.json_str("d", "MaterialDocument")``."""
        value = self.json()
        for step in path:
            try:
                value = value[step]
            except (KeyError, IndexError, TypeError):
                return None
        if isinstance(value, bool):
            return None
        return str(value) if isinstance(value, (str, int, float)) else None

    def is_success(self):
        """2xx."""
        return 200 <= self.status < 300

    def is_transient(self):
        """An answer that says "not now" rather than "no": 408, 423 (locked), 425, 429 and every
        5xx."""
        return self.status in (408, 423, 425, 429) or self.status >= 500

    def access_problem(self):
        """The verdict for a redirect (3xx: a sign-in page, a moved service) or refused
        credentials (401, 403): the target's configuration to fix, never the event's fault, so
        **try again** naming what to check; ``None`` for any other answer."""
        if 300 <= self.status < 400:
            to = self.header("location")
            where = f" to {to}" if to else ""
            return try_again(
                f"{self.target} redirected the request (HTTP {self.status}{where}): a sign-in "
                "page or a moved service; check the target's url and auth"
            )
        if self.status in (401, 403):
            message = self.error_message()
            detail = f": {message}" if message else ""
            return try_again(
                f"{self.target} refused the credentials (HTTP {self.status}{detail}); check the "
                "target's auth"
            )
        return None

    def success_without(self, proof):
        """The verdict for a success (2xx) without ``proof`` (what the service answers when it has
        booked a request): an error body is **rejected** with its message; anything else (no
        body, a proxy's HTML page) is **try again**: a retry with the same Idempotency-Key cannot
        book twice, and gets the booked answer. A NATS target's answer (its ``nats-stream``
        header: the request is stored on the target's stream) is all such a target confirms:
        **posted**."""
        if self.header("nats-stream") is not None:
            return posted("")
        body = self.json()
        if isinstance(body, dict) and "error" in body and self.error_message():
            return rejected(self.error_message())
        text = self.body.decode("utf-8", "replace").strip()
        shown = f"'{text[:120]}'" if text else "no body"
        return try_again(
            f"HTTP {self.status} from {self.target} without {proof} ({shown}): not confirmed as "
            "booked; asked again with the same Idempotency-Key"
        )

    def error_message(self):
        """The target's own error message: ``<code>: <message>`` of an OData error body
        (``{"error": {"code", "message"}}``), the ``message`` or text ``error`` of another JSON
        body, else the body's first 200 characters; ``None`` when the body is empty."""
        body = self.json()
        if isinstance(body, dict):
            error = body.get("error")
            if isinstance(error, dict):
                message = error.get("message")
                if isinstance(message, dict):
                    message = message.get("value")
                if isinstance(message, str):
                    code = error.get("code")
                    return f"{code}: {message}" if isinstance(code, str) and code else message
            if isinstance(error, str):
                return error
            if isinstance(body.get("message"), str):
                return body["message"]
        text = self.body.decode("utf-8", "replace").strip()
        return text[:200] or None

    def summary(self):
        """``HTTP 503 from erp: <the target's error message>``, for a verdict or a log."""
        message = self.error_message()
        head = f"HTTP {self.status} from {self.target}"
        return f"{head}: {message}" if message else head


class Verdict(tuple):
    """What an answer means: ``(kind, text)``, kind ``posted`` (text: the target's document id),
    ``rejected`` (the reason; the event is dead-lettered) or ``try-again`` (why; retried)."""

    KINDS = ("posted", "rejected", "try-again")

    def __new__(cls, kind, text):
        if kind not in cls.KINDS:
            raise ValueError(f"unknown verdict {kind!r}; expected one of {cls.KINDS}")
        return super().__new__(cls, (kind, str(text)))

    @property
    def kind(self):
        return self[0]

    @property
    def text(self):
        return self[1]


def posted(document=""):
    """The target booked it, under its document id (empty when it gives none)."""
    return Verdict("posted", document)


def rejected(reason):
    """The target refused it for good."""
    return Verdict("rejected", reason)


def try_again(why):
    """The target cannot take it now; the host retries with backoff."""
    return Verdict("try-again", why)


def event_from_cloudevent(cloudevent):
    """The event dict a poster receives, from a CloudEvent as on the canonical stream (as the
    host converts it: subject ``canonical.<kind>.<site>``, raw id ``raw:<rawsequence>``, plugin
    ``<plugin>@<pluginversion>``)."""
    kind = cloudevent["type"].removeprefix("millrace.").removesuffix(".v1")
    site = cloudevent["source"].split("/")[1]
    lineage = {
        "raw_id": f"raw:{cloudevent.get('rawsequence', 0)}",
        "route": cloudevent.get("route", ""),
        "plugin": f"{cloudevent.get('plugin', '')}@{cloudevent.get('pluginversion', '')}",
    }
    for key, name in (("source_transaction", "sourcetransaction"), ("source_sequence", "sourcesequence")):
        if cloudevent.get(name) is not None:
            lineage[key] = cloudevent[name]
    return {
        "envelope": {
            "id": cloudevent["id"],
            "kind": kind,
            "site": site,
            "subject": f"canonical.{kind}.{site}",
            "time": cloudevent["time"],
            "lineage": lineage,
        },
        "data": _without_none(cloudevent["data"]),
    }


def check_fixtures(plugin, plugin_dir):
    """Runs the golden fixtures ``<plugin_dir>/fixtures/*.json`` through the module ``plugin``
    (its ``render`` and ``interpret``), natively, with the route configuration of the manifest's
    ``[fixtures.config]`` (as ``millrace plugin test`` gives it). Returns the number of
    fixtures, or raises ``AssertionError`` listing every difference."""
    import tomllib  # Python 3.11+; only native fixture checks need it

    with open(os.path.join(plugin_dir, "plugin.toml"), "rb") as f:
        manifest = tomllib.load(f)
    config.set_for_tests(manifest.get("fixtures", {}).get("config", {}))
    folder = os.path.join(plugin_dir, "fixtures")
    names = sorted(n for n in os.listdir(folder) if n.endswith(".json"))
    if not names:
        raise AssertionError(f"{folder} holds no *.json fixtures")
    failures = []
    for name in names:
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            fixture = _json.load(f)
        failures += [f"{name}: {problem}" for problem in _check(plugin, fixture)]
    if failures:
        raise AssertionError("\n".join(failures))
    return len(names)


def shown(text):
    """``text`` as the host takes a plugin's text: its control characters but tab written as
    escapes (``\\n``, ``\\u{0}``, ``\\u{1b}``), as Rust writes them (``millrace_core::posting::shown``),
    so the native fixture checks judge what ``millrace plugin test`` judges."""
    named = {"\n": "\\n", "\r": "\\r"}

    def one(c):
        code = ord(c)
        if c == "\t" or not (code < 0x20 or 0x7F <= code <= 0x9F):
            return c
        return named.get(c, f"\\u{{{code:x}}}")

    return "".join(one(c) for c in text)


def _check(plugin, fixture):
    event = event_from_cloudevent(fixture["event"])
    try:
        requests = plugin.render(event)
    except (RenderError, MapError) as error:
        if isinstance(error, MapError):
            error = RenderError.from_map_error(error)
        actual = {error.kind: shown(error.message)}
        if fixture.get("error") != actual:
            return [f"error differs:\n  expected {fixture.get('error')}\n  got      {actual}"]
        return []
    if "error" in fixture:
        return [f"expected the error {fixture['error']}, rendered {[request_json(r) for r in requests]}"]
    problems = []
    rendered = [request_json(r) for r in requests]
    expected = fixture.get("requests", [])
    if len(expected) != len(rendered):
        problems.append(f"expected {len(expected)} request(s), rendered {len(rendered)}: {rendered}")
    for n, (want, got) in enumerate(zip(expected, rendered)):
        if want != got:
            problems.append(f"request {n} differs:\n  expected {want}\n  rendered {got}")
    for n, answer in enumerate(fixture.get("answers", [])):
        if answer["request"] >= len(requests):
            problems.append(f"answer {n}: no rendered request {answer['request']}")
            continue
        req = requests[answer["request"]]
        r = answer["response"]
        response = Response(r.get("target", req.target), r["status"],
                            [tuple(h) for h in r.get("headers", [])], _body_bytes(r.get("body")))
        verdict = plugin.interpret(event, req, response)
        got = {verdict.kind: shown(verdict.text)}
        if answer["verdict"] != got:
            problems.append(f"answer {n}: verdict differs:\n  expected {answer['verdict']}\n  got      {got}")
    return problems


def request_json(req):
    """A request in the fixtures' JSON form."""
    return {"target": req.target, "method": req.method, "path": req.path,
            "headers": [[n, v] for n, v in req.headers], "body": _body_json(req.body)}


def _body_json(body):
    try:
        if body:
            return _json.loads(body)
    except ValueError:
        pass
    return {"base64": base64.b64encode(body).decode()}


def _body_bytes(body):
    if isinstance(body, dict) and set(body) == {"base64"}:
        return base64.b64decode(body["base64"])
    return b"" if body is None else _dumps(body).encode()


def _dumps(value):
    def refuse(o):
        raise TypeError(f"{type(o).__name__} is not JSON")

    def check(v):
        if isinstance(v, float):
            raise TypeError(f"the float {v!r} in a JSON body: write quantities as decimal text")
        if isinstance(v, dict):
            for item in v.values():
                check(item)
        if isinstance(v, (list, tuple)):
            for item in v:
                check(item)

    check(value)
    return _json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=refuse)


def _without_none(value):
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def _header(headers, name):
    name = name.lower()
    return next((v for n, v in headers if n.lower() == name), None)
