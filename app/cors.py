"""CORS for browser clients served from other origins (HARKEN_CORS_ORIGINS; off by default)."""
from flask import request

ALLOWED_HEADERS = "Content-Type, X-API-Key, X-Chunk-Seq, Last-Event-ID"
ALLOWED_METHODS = "GET, POST, OPTIONS"


def init_cors(app, origins):
    """Answer preflights and mark responses for the listed origins (`*` allows any)."""
    if not origins:
        return
    allow_any = "*" in origins

    @app.after_request
    def _cors(response):
        origin = request.headers.get("Origin")
        if origin and (allow_any or origin in origins):
            response.headers["Access-Control-Allow-Origin"] = "*" if allow_any else origin
            response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            response.headers["Access-Control-Max-Age"] = "600"
            if not allow_any:
                response.headers["Vary"] = "Origin"
        return response
