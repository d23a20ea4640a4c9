"""Operations endpoints: liveness with model readiness, and Prometheus metrics."""
from flask import Blueprint, Response, current_app, jsonify

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    """200 while the process is alive; `ready` says whether the models are loaded."""
    services = current_app.extensions["harken"]
    health = services.pipeline.health()
    return jsonify(status="ok", ready=bool(health.get("ready")), pipeline=health,
                   sessions=services.sessions.open_count(), auth=services.keys.enabled)


@bp.get("/metrics")
def metrics():
    """Prometheus text exposition."""
    services = current_app.extensions["harken"]
    return Response(services.metrics.exposition(), mimetype="text/plain; version=0.0.4")
