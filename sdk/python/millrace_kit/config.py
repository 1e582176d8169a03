"""Read access to the route's configuration (site code, partner id, unit tables...)."""

from . import host
from .errors import MapError

__all__ = ["get", "require", "all", "set_for_tests"]

set_for_tests = host.set_config_for_tests


def get(key, default=None):
    """The value of ``key`` in the route configuration, or ``default`` when the route does not
    set it."""
    value = host.get_config(key)
    return default if value is None else value


def require(key):
    """The value of ``key``, or a ``MapError.other`` telling the operator to set it."""
    value = host.get_config(key)
    if value is None:
        raise MapError.other(
            f"the route configuration has no key '{key}'; set it in the route's config"
        )
    return value


def all():  # noqa: A001 - mirrors the WIT `get-config-all` and the Rust SDK's config::all
    """Every key/value pair of the route configuration, sorted by key."""
    return host.get_config_all()
