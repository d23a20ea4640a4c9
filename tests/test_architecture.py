"""The import directions of docs/architecture.md, checked on the source with `ast` (nothing is imported)."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "client")

# A module under a key may import, of app/ and client/, only what the key's tuple names
# (the most specific key applies); the standard library and third-party packages are free.
ALLOWED = {
    "client": ("client",),
    # The event catalog and the version are what the server imports of the client.
    "client.events": (),
    "client.version": (),
    "app.audio": ("app.audio",),
    "app.modelfiles": (),
    # The worker-side packages: no Flask-based module (app.errors, app.logs, …) and no hub state.
    "app.analytics": ("app.analytics", "app.audio", "app.config", "app.modelfiles", "app.timefmt",
                      "client.events"),
    "app.speech": ("app.speech", "app.analytics", "app.audio", "app.config", "app.modelfiles", "app.timefmt",
                   "client.events"),
    "app.pipeline": ("app.pipeline", "app.speech", "app.analytics", "app.audio", "app.config",
                     "app.errors", "app.timefmt", "client.events"),
    "app.files": ("app.files", "app.pipeline", "app.audio", "app.eventlog", "app.errors", "app.inputs",
                  "app.config", "app.timefmt", "client.events"),
    "app.eventlog": (),
    "app.sse": ("app.eventlog", "client.events"),
}

# The hub's session layer reaches analysis only through app.pipeline's interfaces.
FORBIDDEN = {
    "app.session": ("app.speech", "app.analytics", "app.routes", "app.files"),
    "app.registry": ("app.speech", "app.analytics", "app.routes", "app.files"),
    "app.shared": ("app.speech", "app.analytics", "app.routes", "app.files"),
}

def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name):
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(path):
    """Every module of app/ or client/ that the file at `path` imports, anywhere in its body."""
    module = _module_name(path)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1] + [node.module or ""]).strip(".") \
                if node.level else node.module
            for alias in node.names:  # `from app import errors` imports the module app.errors
                found.add(f"{base}.{alias.name}" if _is_module(f"{base}.{alias.name}") else base)
    return {name for name in found if name.split(".")[0] in PACKAGES}


GRAPH = {_module_name(path): _imports(path)
         for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def _within(name, prefix):
    return name == prefix or name.startswith(prefix + ".")


def _rule(table, module):
    keys = [key for key in table if _within(module, key)]
    return max(keys, key=len) if keys else None


def _edges():
    return [(module, imported) for module, imports in sorted(GRAPH.items()) for imported in sorted(imports)]


def test_the_import_graph_is_read():
    """The parser resolves relative and `from package import module` imports (no rule passes vacuously)."""
    assert "app.pipeline" in GRAPH["app.session"] and "app.errors" in GRAPH["app.session"]
    assert "client.events" in GRAPH["app.sse"] and "app.eventlog" in GRAPH["app.sse"]
    assert all(_rule(ALLOWED, key) == key for key in ALLOWED)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_what_it_may(package):
    """Each module imports, of app/ and client/, only its own package and the ones below it."""
    wrong = [f"{module} imports {imported}" for module, imported in _edges()
             if _rule(ALLOWED, module) == package and not _within(imported, module)
             and not any(_within(imported, allowed) for allowed in ALLOWED[package])]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_the_session_layer_reaches_analysis_only_through_the_pipeline(module):
    """Sessions and the registry never import the speech, analytics, files or routes packages."""
    wrong = [f"{m} imports {imported}" for m, imported in _edges() if _within(m, module)
             and any(_within(imported, forbidden) for forbidden in FORBIDDEN[module])]
    assert not wrong, "\n".join(wrong)


def test_the_server_imports_only_the_clients_catalog_and_version():
    """From client/, app/ imports only `client.events` and `client.version`: never the HTTP stack."""
    wrong = [f"{m} imports {i}" for m, i in _edges() if _within(m, "app") and _within(i, "client")
             and i not in ("client.events", "client.version")]
    assert not wrong, "\n".join(wrong)


def test_only_the_factory_imports_the_blueprints():
    """app.routes.* is imported by `create_app` (app/__init__.py) alone; a blueprint imports no other."""
    wrong = [f"{m} imports {i}" for m, i in _edges() if _within(i, "app.routes") and m != "app"]
    assert not wrong, "\n".join(wrong)


def test_nothing_imports_the_factory_but_the_wsgi_entry():
    """Only app.wsgi imports the factory's own names (`from app import create_app`)."""
    assert [m for m, i in _edges() if i == "app"] == ["app.wsgi"]
