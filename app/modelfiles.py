"""Model files that ship inside installed packages: the error when one is missing or altered, and its checksum check.

Both worker-side packages load packaged weights (app.speech: Whisper and the speaker
encoder; app.analytics: MiniLM), and neither may import the other's loaders, so the check
they share lives here, on the standard library alone.
"""
import hashlib


class ModelUnavailable(RuntimeError):
    """A model's packages are missing or its files do not match their pinned checksums."""


def verify_sha256(path, digest, package):
    """Refuse `path`, a model file of the installed `package`, unless its SHA-256 is `digest`."""
    with open(path, "rb") as f:
        found = hashlib.file_digest(f, "sha256").hexdigest()
    if found != digest:
        raise ModelUnavailable(f"{path} has SHA-256 {found}, expected {digest}: reinstall the pinned "
                               f"{package} (the `speech` and `analytics` extras of setup.cfg)")
