"""Scale-out (HARKEN_REDIS_URL): sessions, chunk ledgers, event streams and analysis leases in Redis."""
import logging

from .. import errors
from .registry import SharedRegistry
from .store import OUTAGES

__all__ = ["SharedRegistry", "init_app"]

log = logging.getLogger(__name__)


def init_app(app, settings):
    """A Redis outage during a request is a 503 `store_unavailable` with Retry-After, never a 500."""

    def unavailable(exc):
        log.warning("store unavailable: %s", exc)
        return errors.error_response(errors.StoreUnavailable(
            headers={"Retry-After": str(settings.retry_after_s)}))

    for kind in OUTAGES:
        app.register_error_handler(kind, unavailable)
