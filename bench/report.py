"""Where the benches' results go and how they are written, in one place rather than in every bench.

It imports nothing of the tests (harness.py brings their server runner), so a bench that needs
no server can use it too.
"""
import json
from pathlib import Path

#: bench/results/, which git ignores: the benches' JSON, and the server logs and caches beside it.
RESULTS = Path(__file__).resolve().parent / "results"


def save(name, result, indent=2):
    """Write `result` as JSON to bench/results/`name`, making the folder if it is missing; return the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(result, indent=indent) + "\n")
    return path
