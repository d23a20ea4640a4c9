"""A short schemathesis run: generated cases for every operation, no 5xx, every answer as documented."""
import pytest

from apifuzz import fuzz


@pytest.fixture(scope="module")
def fuzz_server(start_server):
    """No models, room for every session the cases open, a long heartbeat so finished streams end."""
    return start_server(HARKEN_PIPELINE="none", HARKEN_MAX_SESSIONS="100000", HARKEN_HEARTBEAT_S="60")


def test_generated_cases_conform_to_the_document(fuzz_server):
    """30 cases per operation and mode (positive, negative): no server error, no undocumented answer."""
    report = fuzz(fuzz_server.url, examples_per_operation=30)
    assert report.total >= 300
    assert report.server_errors == 0, report.statuses
    assert not report.failures, "\n\n".join(report.failures[:10])
