"""Where the benches' results go and how they are written, in one place rather than in every bench.

It imports nothing of the tests (harness.py brings their server runner), so a bench that needs
no server can use it too.
"""
import json
from pathlib import Path

#: bench/results/, which git ignores: the benches' JSON, and the server logs and caches beside it.
RESULTS = Path(__file__).resolve().parent / "results"


def results_path(name):
    """bench/results/`name`, the folder made if it is missing: for a bench's logs, caches and recordings."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    return RESULTS / name


def output_path(name):
    """Where `--out name` goes: bench/results/`name` for a bare file name, else the path as given
    (its folder made), so a path such as bench/results/x.json is not nested in bench/results."""
    path = Path(name)
    if path.parent == Path("."):
        return results_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def save(name, result, indent=2):
    """Write `result` as JSON to `output_path(name)`; return the path."""
    path = output_path(name)
    path.write_text(json.dumps(result, indent=indent) + "\n")
    return path


def merge(name, parts):
    """Update bench/results/`name` (a JSON object) with `parts`, keeping the parts a run did not
    measure; return the path. For benches whose parts are run one at a time."""
    path = output_path(name)
    merged = json.loads(path.read_text()) if path.exists() else {}
    merged.update(parts)
    return save(name, merged)
