"""The installed Harken distribution's version, read from its package metadata (one source: setup.cfg)."""
from importlib import metadata

DISTRIBUTION = "harken"


def version() -> str:
    """The version `pip` installed (e.g. ``0.1.0``); ``0+unknown`` for a source tree that was never installed."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0+unknown"
