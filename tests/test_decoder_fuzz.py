"""The decoder fuzzer's findings stay fixed, and a short fuzz run finds nothing new.

bench/decode_fuzz.py runs tests/fuzzdecoders.py for minutes; here every input it ever
found (tests/fuzz_corpus/decoders/) is replayed, and atheris runs for a few seconds.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fuzzdecoders

ROOT = Path(__file__).resolve().parent.parent
KEPT = sorted(fuzzdecoders.KEPT.iterdir())


@pytest.mark.parametrize("path", KEPT, ids=[p.name for p in KEPT])
def test_kept_finding_is_refused_cleanly(path):
    """Each once-crashing input now only meets the decoders' refusals, in good time."""
    fuzzdecoders.one_input(path.read_bytes())


def test_fuzz_smoke(tmp_path):
    """A few seconds of coverage-guided fuzzing from real files of every format: no finding."""
    seeds = fuzzdecoders.write_seeds(tmp_path / "seeds")
    corpus, artifacts = tmp_path / "corpus", tmp_path / "artifacts"
    corpus.mkdir()
    artifacts.mkdir()
    run = subprocess.run(
        [sys.executable, str(Path(fuzzdecoders.__file__)), str(corpus), str(seeds), "-max_total_time=8",
         "-max_len=8192", "-timeout=60", f"-artifact_prefix={artifacts}/", "-print_final_stats=1"],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300, cwd=ROOT)
    log = run.stdout + run.stderr
    assert run.returncode == 0 and not list(artifacts.iterdir()), log[-3000:]
    assert "stat::number_of_executed_units" in log
