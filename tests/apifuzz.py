"""Schema-driven fuzzing of a running Harken with schemathesis and openapi.yaml.

Shared by the short run in tests/test_hardening_fuzz.py and the full run in bench/api_fuzz.py.
Every operation gets generated cases (valid and invalid per the schema); each answer must be
no 5xx and conform to the document (status, content type, headers, body schema). Path
session ids are swapped, some of the time, for real sessions (open or finished) so the
cases reach past 404; the event stream is only fuzzed against finished sessions, whose
stream replays and ends, and is read with a short timeout.
"""
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests
import schemathesis
import yaml
from openapi_schema_validator import OAS30Validator
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (content_type_conformance, response_headers_conformance,
                                               response_schema_conformance,
                                               status_code_conformance)

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"
# Server errors are counted apart (`FuzzReport.server_errors`).
CHECKS = [status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
# The event stream's 200 body is checked frame by frame against `x-sse-events` instead (OpenAPI
# 3.0 has no way to say "a stream of these"; schemathesis would read `schema` as one event's).
STREAM_CHECKS = CHECKS[:-1]
TIMEOUT = (5, 5)
PCM = bytes(3200)  # 0.1 s of 16 kHz s16le silence


@dataclass
class FuzzReport:
    """What a run did: cases per operation, statuses seen, and every failure in words."""

    cases: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    failures: list = field(default_factory=list)

    @property
    def total(self):
        return sum(self.cases.values())

    @property
    def server_errors(self):
        """Every 5xx answer: the server's own failures (503 is documented, and not one of them)."""
        return sum(n for status, n in self.statuses.items() if status >= 500 and status != 503)


class _Sessions:
    """A few real sessions on the server, open and finished, to aim cases at."""

    def __init__(self, base_url, http, rng):
        self._base, self._http, self._rng = base_url, http, rng
        self.open, self.finished = [], []

    def refresh(self):
        self.open = [self._start() for _ in range(3)]
        self.finished = []
        for _ in range(2):
            session_id = self._start()
            self._http.post(f"{self._base}/analyze/live/{session_id}/chunk", params={"chunk_seq": 0},
                            data=PCM, timeout=TIMEOUT)
            self._http.post(f"{self._base}/analyze/live/{session_id}/control",
                            json={"action": "cancel"}, timeout=TIMEOUT)
            self.finished.append(session_id)

    def _start(self):
        answer = self._http.post(self._base + "/analyze/live/start", json={"suffix": ".pcm"},
                                 timeout=TIMEOUT)
        answer.raise_for_status()
        return answer.json()["session_id"]

    def aim(self, case, streaming):
        if "session_id" not in (case.path_parameters or {}):
            return
        roll = self._rng.random()
        if streaming:
            if roll < 0.5:
                case.path_parameters["session_id"] = self._rng.choice(self.finished)
            else:  # an unknown id cannot stream: keep the generated one unless it is a live one
                case.path_parameters["session_id"] = "live_" + "0" * 24
        elif roll < 0.4:
            case.path_parameters["session_id"] = self._rng.choice(self.open)
        elif roll < 0.6:
            case.path_parameters["session_id"] = self._rng.choice(self.finished)


def _event_validators():
    doc = yaml.safe_load(SPEC_PATH.read_text())
    media = doc["paths"]["/analyze/live/{session_id}/events"]["get"]["responses"]["200"]["content"]
    return {name: OAS30Validator({"$ref": ref["$ref"], "components": doc["components"]})
            for name, ref in media["text/event-stream"]["x-sse-events"].items()}


def stream_problems(body, validators):
    """What is wrong with an SSE body: ids not 1, 2, 3…, unknown events, data off its schema."""
    problems, expected_id = [], None
    for block in body.decode("utf-8").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines()
                      if ": " in line and not line.startswith(":"))
        if "event" not in fields:
            continue
        event_id = int(fields["id"])
        if expected_id is not None and event_id != expected_id:
            problems.append(f"id {event_id} after {expected_id - 1}")
        expected_id = event_id + 1
        validator = validators.get(fields["event"])
        if validator is None:
            problems.append(f"unknown event {fields['event']!r}")
            continue
        for error in validator.iter_errors(json.loads(fields["data"])):
            problems.append(f"{fields['event']} {event_id}: {error.message}")
    return problems


def fuzz(base_url, examples_per_operation, seed=14, modes=(GenerationMode.POSITIVE, GenerationMode.NEGATIVE)):
    """Run `examples_per_operation` cases per operation and mode against `base_url`."""
    schema = schemathesis.openapi.from_path(str(SPEC_PATH))
    rng = random.Random(seed)
    report = FuzzReport()
    http = requests.Session()
    sessions = _Sessions(base_url, http, rng)
    validators = _event_validators()
    for result in schema.get_all_operations():
        operation = result.ok()
        streaming = operation.path.endswith("/events")
        for mode in modes:
            sessions.refresh()
            label = f"{operation.label} [{mode.value}]"

            @settings(max_examples=examples_per_operation, deadline=None, database=None,
                      derandomize=True, phases=[Phase.generate],
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case):
                sessions.aim(case, streaming)
                report.cases[label] += 1
                try:
                    response = case.call(base_url=base_url, session=http, timeout=TIMEOUT)
                except requests.RequestException as exc:
                    report.failures.append(f"{label}: {type(exc).__name__}: {exc}\n{case.as_curl_command()}")
                    return
                report.statuses[response.status_code] += 1
                if streaming and response.status_code == 200:
                    problems = stream_problems(response.content, validators)
                    if problems:
                        report.failures.append(f"{label}: {problems}\n{case.as_curl_command()}")
                try:
                    case.validate_response(response, checks=STREAM_CHECKS if streaming else CHECKS)
                except FailureGroup as exc:
                    report.failures.append(f"{label}: {response.status_code}: {exc}\n"
                                           f"{case.as_curl_command()}")

            try:
                run()
            except Unsatisfiable:  # nothing in the operation can be made invalid (no inputs)
                report.cases.setdefault(label, 0)
    return report
