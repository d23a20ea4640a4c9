"""Operations endpoints: liveness (`/healthz`), readiness (`/readyz`) and Prometheus metrics."""
from flask import Blueprint, Response, current_app, jsonify

from client.version import version

from .. import errors

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    """Liveness: 200 while the process serves; `ready` says whether the models are loaded."""
    services = current_app.extensions["harken"]
    health = services.pipeline.health()
    return jsonify(status="ok", version=version(), ready=bool(health.get("ready")), pipeline=health,
                   store=services.sessions.store_health(), sessions=services.sessions.open_count(),
                   auth=services.keys.enabled)


@bp.get("/readyz")
def readyz():
    """Readiness: 200 once the models are loaded and the session store answers; else 503, so a balancer sends no sessions."""
    services = current_app.extensions["harken"]
    if not services.sessions.store_health()["reachable"]:
        raise errors.StoreUnavailable(headers={"Retry-After": str(services.settings.retry_after_s)})
    health = services.pipeline.health()
    if not health.get("ready"):
        raise errors.PipelineUnavailable(
            "The speech models are still loading; this server is not ready for sessions.",
            headers={"Retry-After": str(services.settings.retry_after_s)})
    return jsonify(status="ready", version=version(), pipeline=health)


@bp.get("/metrics")
def metrics():
    """Prometheus text exposition."""
    services = current_app.extensions["harken"]
    return Response(services.metrics.exposition(), mimetype="text/plain; version=0.0.4")
