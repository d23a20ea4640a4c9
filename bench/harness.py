"""What the benches that probe a model-free server share: the tests' server runner (report.py writes their results)."""
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import Server  # noqa: E402  (the tests' server runner: the Procfile's command)


@contextmanager
def model_free_server(env):
    """A gunicorn Harken without the speech pipeline, `env` over its defaults; stopped on leaving."""
    with tempfile.TemporaryDirectory() as tmp:
        server = Server({"HARKEN_PIPELINE": "none", "HARKEN_ACCESS_LOG": "", **env},
                        Path(tmp) / "server.log", need_models=False)
        try:
            yield server
        finally:
            server.stop()
