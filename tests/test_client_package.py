"""The client package stands alone: a fresh interpreter imports it without any server code."""
import configparser
import os
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


def loaded_after(code, env=None):
    """The top-level module names a fresh interpreter holds after running `code`."""
    out = subprocess.run([sys.executable, "-c", f"{code}; import json, sys; print(json.dumps(sorted(sys.modules)))"],
                         cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})}).stdout
    return {name.split(".")[0] for name in json.loads(out.splitlines()[-1])}


def test_event_catalog_needs_only_the_standard_library():
    """`import client.events` (what the server imports) loads nothing outside the standard library."""
    outside = loaded_after("import client.events") - set(sys.stdlib_module_names)
    assert outside <= {"client", "__main__", "_distutils_hack", "__editable___harken_0_1_0_finder"}, outside


def test_server_imports_never_bring_the_client_http_stack():
    """The server (wsgi's app, and every app module that imports the catalog) loads neither requests nor sseclient."""
    seams = sorted({str(path.relative_to(ROOT).with_suffix("")).replace("/", ".")
                    for path in (ROOT / "app").rglob("*.py")
                    if re.search(r"^\s*from client[ .]|^\s*import client", path.read_text(), re.M)})
    assert "app.sse" in seams and "app.session" in seams
    code = "import wsgi, app, " + ", ".join(seams)
    loaded = loaded_after(code, env={"HARKEN_PIPELINE": "none", "HARKEN_LOG_LEVEL": "error"})
    assert {"app", "flask", "client"} <= loaded
    assert not loaded & {"requests", "sseclient", "httpx", "httpx_sse", "urllib3"}



def test_public_names_resolve_and_are_listed():
    """Every name in `client.__all__` resolves to an object defined in the client package."""
    import client

    for name in client.__all__:
        value = getattr(client, name)
        assert getattr(value, "__module__", "").startswith("client."), name
    assert "LiveClient" in dir(client) and "AsyncLiveClient" in client.__all__
    assert (ROOT / "client" / "py.typed").is_file()


def test_names_type_checkers_see_are_the_exported_ones():
    """The TYPE_CHECKING imports in client/__init__.py list exactly `__all__`, each from the module it lazily loads."""
    import ast

    import client

    tree = ast.parse((ROOT / "client" / "__init__.py").read_text())
    block = next(node for node in ast.walk(tree) if isinstance(node, ast.If)
                 and getattr(node.test, "id", None) == "TYPE_CHECKING")
    seen = {alias.name: node.module for node in block.body for alias in node.names}
    assert sorted(seen) == client.__all__
    assert all(getattr(client, name).__module__ == f"client.{module}" for name, module in seen.items())
