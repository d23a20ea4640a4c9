"""The WSGI entry point of a source checkout (`wsgi:app`, as the Procfile names it): the packaged one."""
from app.wsgi import app  # noqa: F401  (gunicorn looks it up here)
