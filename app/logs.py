"""Where the app's log lines go: stderr, beside gunicorn's own, at HARKEN_LOG_LEVEL."""
import logging
import sys

FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"


def init_logging(level):
    """Give the `app` logger one stderr handler (once per process, however many apps are built)."""
    logger = logging.getLogger("app")
    logger.setLevel(level.upper())
    if not any(getattr(h, "harken", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.harken = True
        logger.addHandler(handler)
        logger.propagate = False
