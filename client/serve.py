"""`harken serve`: replace this process with gunicorn running the installed service with Harken's packaged settings."""
import importlib.util
import os
import sys
from pathlib import Path

WSGI_APP = "app.wsgi:app"


def serve(parser, gunicorn_args):
    """Exec ``python -m gunicorn -c <app>/gunicorn_conf.py ARGS app.wsgi:app``; `gunicorn_args` go to gunicorn.

    Works wherever the `app` package is importable (an installed wheel or a checkout);
    a ``-c`` among `gunicorn_args` replaces Harken's settings file.
    """
    for module, extra in (("app", "server"), ("gunicorn", "server")):
        if importlib.util.find_spec(module) is None:
            parser.error(f"`harken serve` needs the server: pip install 'harken[{extra},speech,analytics]'")
    # find_spec of the top-level package locates it without running its __init__ (see gunicorn_conf).
    settings = Path(importlib.util.find_spec("app").origin).with_name("gunicorn_conf.py")
    os.execv(sys.executable, [sys.executable, "-m", "gunicorn", "-c", str(settings),
                              *gunicorn_args, WSGI_APP])
