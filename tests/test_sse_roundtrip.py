"""The server's SSE encoder (app/eventlog.py, app/sse.py) read back by the client's parser (client/sse.py)."""
import gevent.event
import pytest

from app.eventlog import EventLog
from app.sse import stream_events
from client import events
from client.sse import SSEParser
from eventsamples import one_of_each

# Text a line-based format could break on: JSON escapes the newlines, but U+2028, U+0085 and
# multibyte UTF-8 cross as they are.
AWKWARD = "Zoë said:\n\"déjà vu\"\r\n\u2028☕ 日本\x85 🎙 data: id: 9"


class _Session:
    """What `stream_events` reads of a session: its event log."""

    def __init__(self, log):
        self.events = log


class _Hangup:
    def __init__(self):
        self.closed = gevent.event.Event()


def _open_stream(log, last_seen_id=0, heartbeat_s=60.0):
    return stream_events(_Session(log), last_seen_id, heartbeat_s=heartbeat_s, retry_ms=2000,
                         shutting_down=gevent.event.Event(), hangup=_Hangup(), on_end=lambda: None)


def _closed_log(sent, max_events=1000):
    """An event log holding `sent` (all of it, or the last `max_events`), closed as a finished session's."""
    log = EventLog(max_events)
    for event in sent:
        log.append(event)
    log.close()
    return log


def _read(chunks):
    """(typed events, parser) from SSE bytes, as the client reads them."""
    parser = SSEParser(iter(chunks))
    got = [events.parse_event(m.event, m.data, m.id) for m in parser.events()]
    return got, parser


def _byte_by_byte(data):
    return [data[i:i + 1] for i in range(len(data))]


def _sent():
    return one_of_each() + [events.FinalTranscript(
        utterance_id="utt_0002", speaker="Speaker_1", t_start=2.0, t_end=3.5, text=AWKWARD,
        confidence=0.5, words=[events.Word(AWKWARD, 2.0, 3.5, 0.5)])]


def test_every_logged_frame_parses_back_to_its_event():
    """Each catalog event, framed by the event log, parses back equal, with its id and type."""
    log = _closed_log(_sent())
    for logged, original in zip(log.after(0), _sent()):
        (got,), _ = _read([logged.frame().encode()])
        assert type(got) is type(original) and got == original
        assert got.id == logged.id and got.extra == {}


@pytest.mark.parametrize("split", ["whole", "byte_by_byte"])
def test_a_finished_stream_round_trips(split):
    """The whole stream of a closed log: retry, then every event in order with ids from 1."""
    sent = _sent()
    data = b"".join(_open_stream(_closed_log(sent)))
    got, parser = _read([data] if split == "whole" else _byte_by_byte(data))
    assert got == sent and [e.id for e in got] == list(range(1, len(sent) + 1))
    assert parser.retry_ms == 2000 and parser.last_event_id == str(len(sent))


def test_keepalives_are_invisible_to_the_client():
    """Heartbeat comments between events give the client nothing; the events still arrive in order."""
    sent = _sent()
    log = EventLog(1000)
    for event in sent[:3]:
        log.append(event)
    stream = _open_stream(log, heartbeat_s=0.01)
    data = [next(stream) for _ in range(4)]  # retry, three events
    data.append(next(stream))
    assert data[-1] == b": keepalive\n\n"
    for event in sent[3:]:
        log.append(event)
    log.close()
    data.extend(stream)
    got, _ = _read(data)
    assert got == sent and [e.id for e in got] == list(range(1, len(sent) + 1))


def test_a_resume_past_dropped_events_reads_the_notice_then_the_rest():
    """Resuming before the oldest kept event: an events_dropped error with the last dropped id, then the kept ones."""
    sent = _sent()
    kept = 4
    got, parser = _read(_open_stream(_closed_log(sent, max_events=kept), last_seen_id=2))
    notice, rest = got[0], got[1:]
    assert isinstance(notice, events.Error) and notice.code == "events_dropped" and not notice.fatal
    assert notice.id == len(sent) - kept
    assert rest == sent[-kept:] and [e.id for e in rest] == list(range(len(sent) - kept + 1, len(sent) + 1))
    assert parser.last_event_id == str(len(sent))
