"""Where the host interface comes from: the component's imports, or a table for native tests.

Inside the component ``wit_world`` (the bindings componentize-py generates) is importable and
calls the host. Run natively (a plugin's own unit tests) it is not, and the route configuration
comes from :func:`set_config_for_tests`, logs go to stderr.
"""

import sys

try:
    from wit_world.imports import host as _wit_host
except ImportError:  # native: no component, no host
    _wit_host = None

_test_config = {}


def set_config_for_tests(pairs):
    """Replaces the route configuration seen when running natively (plugin unit tests)."""
    _test_config.clear()
    _test_config.update({str(k): str(v) for k, v in dict(pairs).items()})


def get_config(key):
    if _wit_host is None:
        return _test_config.get(key)
    return _wit_host.get_config(key)


def get_config_all():
    if _wit_host is None:
        return sorted(_test_config.items())
    return list(_wit_host.get_config_all())


def log(level, message, fields):
    if _wit_host is None:
        print(f"{level.upper()} {message} {fields}", file=sys.stderr)
        return
    _wit_host.log(_wit_host.LogLevel[level.upper()], message, fields)
