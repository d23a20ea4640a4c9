"""The WSGI entry point gunicorn serves (`app.wsgi:app`), inside the package so an installed Harken can run."""
from . import create_app

app = create_app()
