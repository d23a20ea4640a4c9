"""Decoder fuzzing, bounded: atheris (tests/fuzzdecoders.py) over every decoder entry point.

    .venv/bin/python bench/decode_fuzz.py --minutes 10
    .venv/bin/python bench/decode_fuzz.py --minutes 10 --corpus /tmp/decoder-corpus   # keep the corpus

libFuzzer stops at its first finding, so the run is a loop of libFuzzer processes sharing
one corpus until the time is spent; every finding (an exception other than the decoders'
refusals, or an input slower than SLOW_S) is copied to bench/results/decode_fuzz/ to be
triaged and, once fixed, kept under tests/fuzz_corpus/decoders/ (test_decoder_fuzz.py
replays those). Executions, findings and coverage are printed and written to
bench/results/decode_fuzz.json.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import RESULTS, save  # bench/ is this script's own directory, first on the path

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "tests" / "fuzzdecoders.py"
MAX_LEN = 8192


def fuzz(corpus, seeds, artifacts, seconds):
    """One libFuzzer process; (executions, coverage, finding path or None)."""
    env = {"PYTHONPATH": str(ROOT)}
    command = [sys.executable, str(HARNESS), str(corpus), str(seeds), f"-max_total_time={max(1, int(seconds))}",
               f"-max_len={MAX_LEN}", "-timeout=60", f"-artifact_prefix={artifacts}/", "-print_final_stats=1"]
    before = set(artifacts.iterdir())
    run = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, cwd=ROOT)
    log = run.stdout + run.stderr
    executions = int(re.search(r"stat::number_of_executed_units:\s+(\d+)", log).group(1)) \
        if "number_of_executed_units" in log else 0
    coverage = max((int(c) for c in re.findall(r"cov: (\d+)", log)), default=0)
    found = sorted(set(artifacts.iterdir()) - before)
    if found:
        lines = [line for line in log.splitlines() if not line.startswith(("INFO:", "#"))]
        (found[0].with_suffix(".txt")).write_text("\n".join(lines[-60:]) + "\n")
    return executions, coverage, found[0] if found else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--corpus", type=Path, help="corpus directory to grow and keep (default: a temporary one)")
    args = parser.parse_args()
    artifacts = RESULTS / "decode_fuzz"
    artifacts.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = args.corpus or Path(tmp) / "corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        seeds = Path(tmp) / "seeds"
        subprocess.run([sys.executable, str(HARNESS), "--seeds", str(seeds)], check=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
        began = time.monotonic()
        deadline = began + args.minutes * 60
        executions, coverage, findings, runs = 0, 0, [], 0
        while time.monotonic() < deadline - 5:
            ran, cov, finding = fuzz(corpus, seeds, artifacts, deadline - time.monotonic())
            executions, coverage, runs = executions + ran, max(coverage, cov), runs + 1
            if finding:
                findings.append(finding.name)
                print(f"finding: {finding} (trace in {finding.with_suffix('.txt').name})", flush=True)
        elapsed = time.monotonic() - began
        corpus_files = len(list(corpus.iterdir()))
        if args.corpus is None:
            shutil.rmtree(corpus)
    result = {"seconds": round(elapsed, 1), "executions": executions,
              "executions_per_s": round(executions / elapsed, 1), "libfuzzer_runs": runs,
              "coverage_edges": coverage, "corpus_inputs": corpus_files, "findings": findings,
              "max_len": MAX_LEN, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print(json.dumps(result, indent=2))
    save("decode_fuzz.json", result)


if __name__ == "__main__":
    main()
