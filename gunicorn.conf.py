"""gunicorn settings of a source checkout (the Procfile's `-c gunicorn.conf.py`): the packaged app/gunicorn_conf.py, loaded by path.

That file is the one source of the settings, also used by `harken serve` from an installed
package. It is run as a file, not imported as `app.gunicorn_conf`, so that the master never
imports the `app` package (gevent and ssl would be imported before the worker patches them).
"""
import runpy
from pathlib import Path

globals().update({name: value for name, value in runpy.run_path(
    str(Path(__file__).resolve().parent / "app" / "gunicorn_conf.py")).items()
    if not name.startswith("__")})
