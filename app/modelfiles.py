"""Model files that ship inside installed packages: the error when one is missing or altered, its checksum check,
and the model cache where files made from them are built once.

Both worker-side packages load packaged weights (app.speech: Whisper and the speaker
encoder; app.analytics: MiniLM), and neither may import the other's loaders, so what they
share lives here, on the standard library alone.
"""
import fcntl
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

#: The file that marks a built model directory complete, holding the stamp it was built for.
_STAMP = ".harken-verified"


class ModelUnavailable(RuntimeError):
    """A model's packages are missing or its files do not match their pinned checksums."""


def verify_sha256(path, digest, package):
    """Refuse `path`, a model file of the installed `package`, unless its SHA-256 is `digest`."""
    with open(path, "rb") as f:
        found = hashlib.file_digest(f, "sha256").hexdigest()
    if found != digest:
        raise ModelUnavailable(f"{path} has SHA-256 {found}, expected {digest}: reinstall the pinned "
                               f"{package} (the `speech` and `analytics` extras of setup.cfg)")


def build_once(target, digests, build):
    """The directory `target`, made by `build(staging)` the first time; reused after.

    `digests` ({file: SHA-256}) are the pinned files it is built from and of: they are written
    into its stamp, so a directory built for other files is built again. Several worker
    processes may start at once: one builds in a staging directory beside `target` and moves
    it into place, the others wait on a lock and reuse it.
    """
    target = Path(target)
    stamp = "".join(f"{name} {digest}\n" for name, digest in digests.items())
    marker = target / _STAMP
    if marker.is_file() and marker.read_text() == stamp:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file() and marker.read_text() == stamp:
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            build(staging)
            (staging / _STAMP).write_text(stamp)
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target
