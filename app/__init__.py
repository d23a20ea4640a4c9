"""Harken: live conversation analytics over HTTP chunks and Server-Sent Events.

The factory imports the hub's modules when it runs, not when this package is imported: a
speech worker (`python -m app.speech.worker`) imports this package first, and must not load
Flask, the sessions or the routes it never uses.
"""
from dataclasses import dataclass


@dataclass
class Services:
    """Everything one app owns, reachable as `app.extensions["harken"]`."""

    settings: object  # app.config.Settings
    keys: object  # app.auth.KeyRing
    pipeline: object
    metrics: object  # app.metrics.Metrics
    sessions: object  # app.registry.SessionRegistry, or app.shared.SharedRegistry with HARKEN_REDIS_URL
    files: object  # app.files.FileAnalyses

    def shutdown(self):
        """Tell open event streams to reconnect elsewhere, then stop the model workers."""
        self.sessions.shutdown()
        self.files.shutdown()
        self.pipeline.stop()


def create_app(settings=None):
    """Build the app from `settings` (default: the environment); starts model loading off the hub."""
    from . import errors, logs
    from .auth import KeyRing
    from .config import Settings
    from .cors import init_cors
    from .files import FileAnalyses
    from .metrics import Metrics
    from .pipeline import create_pipeline
    from .registry import SessionRegistry
    from .routes import analyze, apidoc, live, ops, web
    settings = settings or Settings.from_env()
    logs.init_logging(settings.log_level, settings.log_format)
    app = errors.JsonErrorsFlask(__name__, static_folder=None)  # the page's blueprint serves app/static at /ui
    # Multipart bodies beyond this are refused by Werkzeug before they are read (413).
    app.config["MAX_CONTENT_LENGTH"] = settings.max_chunk_bytes + 64 * 1024
    app.json.sort_keys = False

    metrics = Metrics()
    pipeline = create_pipeline(settings)
    if settings.redis_url:
        from .shared import SharedRegistry, init_app as init_shared
        sessions = SharedRegistry(settings, pipeline, metrics)
    else:
        sessions = SessionRegistry(settings, pipeline, metrics)
    metrics.watch_sessions(sessions)
    metrics.watch_workers(pipeline)
    app.extensions["harken"] = Services(settings, KeyRing(settings.api_keys), pipeline, metrics,
                                        sessions, FileAnalyses(settings, pipeline))

    logs.init_app(app)
    errors.init_app(app)
    if settings.redis_url:
        init_shared(app, settings)
        sessions.start()
    metrics.init_app(app)
    init_cors(app, settings.cors_origins)
    app.register_blueprint(live.bp)
    app.register_blueprint(analyze.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(apidoc.bp)
    app.register_blueprint(web.bp)
    pipeline.start()
    return app
