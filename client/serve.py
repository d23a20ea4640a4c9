"""`harken serve`: replace this process with gunicorn running the service from the source checkout."""
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def serve(parser, gunicorn_args):
    """Exec gunicorn with the checkout's settings; `gunicorn_args` go to gunicorn."""
    if not (ROOT / "gunicorn.conf.py").is_file() or not (ROOT / "wsgi.py").is_file():
        parser.error(f"`harken serve` runs from a Harken source checkout; {ROOT} has no "
                     "gunicorn.conf.py and wsgi.py")
    gunicorn = Path(sys.executable).with_name("gunicorn")
    gunicorn = str(gunicorn) if gunicorn.exists() else shutil.which("gunicorn")
    if gunicorn is None:
        parser.error("gunicorn is not installed: pip install 'harken[server]'")
    os.chdir(ROOT)
    os.execv(gunicorn, [gunicorn, "-c", "gunicorn.conf.py", *gunicorn_args, "wsgi:app"])
