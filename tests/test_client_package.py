"""The client package stands alone: a fresh interpreter imports it without any server code."""
import configparser
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_client_is_light():
    """`import client` (CLI and Lambda handler included) in a fresh interpreter loads no server code."""
    code = ("import json, sys; import client, client.cli, client.lambda_handler; "
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    loaded = {name.split(".")[0] for name in json.loads(out)}
    assert not loaded & {"flask", "werkzeug", "gevent", "numpy", "soundfile", "av", "gunicorn",
                         "app", "torch"}
    assert {"requests", "sseclient"} <= loaded


def test_client_extra_is_requests_and_sseclient_only():
    """`pip install harken[client]` pulls exactly what the client imports."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    extra = [line.strip() for line in config["options.extras_require"]["client"].splitlines()
             if line.strip() and not line.strip().startswith("#")]
    assert sorted(re.split(r"[<>=!~ \[]", req)[0] for req in extra) == ["requests", "sseclient-py"]
