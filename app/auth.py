"""API keys: who owns a request, checked in constant time and never logged."""
import hashlib
import hmac
import logging

from flask import request

from . import errors

log = logging.getLogger(__name__)

ANONYMOUS = "anonymous"


class KeyRing:
    """The accepted keys; a request's owner is a digest of its key, never the key itself."""

    def __init__(self, keys):
        self._keys = [k.encode() for k in keys]
        if not self._keys:
            log.warning("HARKEN_API_KEYS is not set: authentication is OFF, anyone can use the API")

    @property
    def enabled(self):
        return bool(self._keys)

    def owner_of_request(self):
        """The owner id of the current request, or 401 when keys are on and it has no valid key."""
        if not self._keys:
            return ANONYMOUS
        presented = request.headers.get("X-API-Key") or request.args.get("api_key") or ""
        candidate = presented.encode()
        matched = False
        for key in self._keys:  # compare with every key so timing says nothing about which matched
            matched |= hmac.compare_digest(candidate, key)
        if not matched:
            raise errors.Unauthorized()
        return "key_" + hashlib.sha256(candidate).hexdigest()[:16]
