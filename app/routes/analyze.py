"""Whole-file analysis endpoints of the reference API, answered honestly until they are built."""
from flask import Blueprint, current_app, request

from .. import errors

bp = Blueprint("analyze", __name__, url_prefix="/analyze")


@bp.before_request
def _guard():
    """Every /analyze/* request needs a key when keys are set, built or not."""
    if request.method != "OPTIONS":
        current_app.extensions["harken"].keys.owner_of_request()


@bp.post("")
@bp.post("/stream")
def whole_file():
    """POST /analyze and /analyze/stream: not built yet; the live endpoints do the same work."""
    raise errors.NotBuilt("Whole-file analysis is not built yet: stream the file through "
                          "/analyze/live/start, /chunk and /events (the `harken live` CLI does this).")
