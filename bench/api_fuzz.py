"""Schema-driven API fuzzing of a real gunicorn Harken with schemathesis and openapi.yaml.

Every operation of the document gets `--examples` (1100) generated cases per generation mode
(valid and invalid per the schema) against a server with no models and room for every
session the cases open; path session ids are aimed at real open and finished sessions part
of the time. Counts cases, answers by status, 5xx (503, a documented answer, excepted) and answers that
do not conform to the document. Operations without inputs have one distinct case each.
Results are printed and written to bench/results/api_fuzz.json.

    .venv/bin/python bench/api_fuzz.py [--examples 1100]
"""
import argparse
import sys
import time

from harness import model_free_server
from apifuzz import fuzz  # in tests/, put on the path by harness; shared with tests/test_hardening_fuzz.py
from machine import describe
from report import save


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1100, help="cases per operation and mode")
    args = parser.parse_args()
    with model_free_server({"HARKEN_MAX_SESSIONS": "1000000", "HARKEN_HEARTBEAT_S": "60"}) as server:
        started = time.monotonic()
        report = fuzz(server.url, args.examples)
        elapsed_s = time.monotonic() - started
        alive = server.proc.poll() is None
    result = {"examples_per_operation": args.examples, "cases": report.total,
              "cases_by_operation": dict(report.cases),
              "statuses": {str(k): v for k, v in sorted(report.statuses.items())},
              "server_errors": report.server_errors, "nonconforming": len(report.failures),
              "failures": report.failures[:50], "server_alive_after": alive,
              "elapsed_s": round(elapsed_s, 1), "machine": describe()}
    save("api_fuzz.json", result)
    print(f"cases {report.total} in {elapsed_s:.0f} s; statuses {result['statuses']}")
    print(f"5xx (503 excepted): {report.server_errors}; nonconforming answers: "
          f"{len(report.failures)}; server alive after: {alive}")
    for failure in report.failures[:5]:
        print("\n" + failure)
    return 0 if report.server_errors == 0 and not report.failures and alive else 1


if __name__ == "__main__":
    sys.exit(main())
