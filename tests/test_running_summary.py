"""HARKEN_SUMMARY_EVERY_S: running summaries while live, then the final one."""
from pathlib import Path

import pytest

from live import collect, control, split, start, upload

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "sales-call.ogg"


@pytest.mark.speech
def test_running_summaries_every_ten_seconds_of_audio(start_server):
    """30 s of call with a 10 s period gives running summaries in time order, then one final summary."""
    server = start_server(HARKEN_PIPELINE="speech", HARKEN_SUMMARY_EVERY_S="10", HARKEN_WORKERS="1")
    session = start(server.url, suffix=".ogg", goal="renew")
    for seq, piece in enumerate(split(SAMPLE.read_bytes(), 32 * 1024)):
        assert upload(server.url, session, seq, piece).status_code == 200
    control(server.url, session, "finalize")
    seen = collect(server.url, session, read_timeout=120)
    summaries = [e.data for e in seen if e.name == "summary_update"]
    running, final = summaries[:-1], summaries[-1]
    assert 2 <= len(running) <= 3
    assert all(s["is_final"] is False and s["goal"] == "renew" for s in running)
    assert [s["duration_s"] for s in running] == sorted(s["duration_s"] for s in running)
    assert final["is_final"] is True and final["duration_s"] >= running[-1]["duration_s"]
    assert [e.name for e in seen[-3:]] == ["summary_update", "status", "done"]
