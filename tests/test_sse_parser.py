"""The SSE parser as a table: byte chunks in, the messages (event, data, id) and retry they must give out."""
import json

import pytest

from client.events import FinalTranscript, Status, UnknownEvent, parse_event
from client.sse import SSEParser


def messages(chunks):
    parser = SSEParser(iter(chunks))
    return [(m.event, m.data, m.id) for m in parser.events()], parser


def byte_by_byte(data):
    return [data[i:i + 1] for i in range(len(data))]


CAFE = '{"text":"café ☕ 日本 🎙"}'.encode()

TABLE = [
    ("one message", [b"id: 1\nevent: status\ndata: {\"phase\":\"ingesting\"}\n\n"],
     [("status", '{"phase":"ingesting"}', "1")]),
    ("no event name is message", [b"data: x\n\n"], [("message", "x", None)]),
    ("two messages in one chunk", [b"id: 1\ndata: a\n\nid: 2\ndata: b\n\n"],
     [("message", "a", "1"), ("message", "b", "2")]),
    ("a line split across chunks", [b"id: 7\nevent: sta", b"tus\ndata: {\"pha", b"se\":1}\n", b"\n"],
     [("status", '{"phase":1}', "7")]),
    ("blank line split across chunks", [b"data: a\n", b"\n", b"data: b\n", b"\n"],
     [("message", "a", None), ("message", "b", None)]),
    ("multibyte UTF-8 split byte by byte", byte_by_byte(b"id: 3\ndata: " + CAFE + b"\n\n"),
     [("message", CAFE.decode(), "3")]),
    ("keepalive comments are skipped", [b": keepalive\n\n", b"data: a\n\n", b": keepalive\n\n"],
     [("message", "a", None)]),
    ("a comment inside a message", [b"id: 1\n: note\ndata: a\n\n"], [("message", "a", "1")]),
    ("CRLF line ends", [b"id: 1\r\nevent: done\r\ndata: {}\r\n\r\n"], [("done", "{}", "1")]),
    ("CRLF split between CR and LF", [b"id: 1\r", b"\nevent: done\r\ndata: {}\r", b"\n\r", b"\n"],
     [("done", "{}", "1")]),
    ("CR line ends", [b"data: a\r\r"], [("message", "a", None)]),
    ("data over several lines joins with newlines", [b"data: a\ndata: b\n\n"],
     [("message", "a\nb", None)]),
    ("no space after the colon", [b"event:status\ndata:x\n\n"], [("status", "x", None)]),
    ("a message without data is not dispatched", [b"event: status\n\n", b"data: y\n\n"],
     [("message", "y", None)]),
    ("a message cut off by a dropped connection is discarded",
     [b"id: 1\ndata: a\n\nid: 2\nevent: status\ndata: {\"pha"], [("message", "a", "1")]),
    ("a complete last line without its blank line is discarded too",
     [b"id: 1\ndata: a\n\nid: 2\ndata: b\n"], [("message", "a", "1")]),
    ("unknown fields are ignored", [b"foo: bar\ndata: a\n\n"], [("message", "a", None)]),
    ("empty chunks change nothing", [b"", b"data: a\n", b"", b"\n"], [("message", "a", None)]),
]


@pytest.mark.parametrize("chunks, expected", [(c, e) for _, c, e in TABLE],
                         ids=[name for name, _, _ in TABLE])
def test_parser_table(chunks, expected):
    """Each byte-chunk sequence gives exactly the listed messages."""
    assert messages(chunks)[0] == expected


@pytest.mark.parametrize("chunks, retry_ms", [
    ([b"retry: 2000\n\n", b": keepalive\n\n"], 2000),
    ([b"retry: 2000\n\nid: 1\nretry: 500\ndata: a\n\n"], 500),
    ([b"retry: soon\n\n"], None),
    ([b"retry: 15", b"00\r\n\r\n"], 1500),
    ([b"data: a\n\n"], None),
])
def test_retry_field_kept(chunks, retry_ms):
    """`retry:` is kept even in a message with no data (how the server sends it when the stream opens)."""
    assert messages(chunks)[1].retry_ms == retry_ms


def test_last_event_id_follows_complete_messages_only():
    """The id to resume from is that of the last complete message, not of one cut off."""
    _, parser = messages([b"id: 4\ndata: a\n\nid: 5\ndata: b\n"])
    assert parser.last_event_id == "4"


def test_messages_arrive_before_the_stream_ends():
    """A message is dispatched as soon as its blank line arrives, not when the connection closes."""
    seen = []

    def chunks():
        yield b"data: first\n\n"
        seen.append("second chunk requested")
        yield b"data: second\n\n"

    events = SSEParser(chunks()).events()
    assert next(events).data == "first"
    assert seen == []
    assert next(events).data == "second"


def test_typed_events_from_messages():
    """Messages become the catalog's dataclasses; unknown names pass through untouched."""
    stream = (b"retry: 2000\n\nid: 1\nevent: status\ndata: {\"phase\":\"ingesting\",\"progress\":0.5,"
              b"\"audio_seconds\":2.0,\"lag_seconds\":0.1,\"detail\":\"\",\"new_key\":1}\n\n"
              b"id: 2\nevent: final_transcript\ndata: " + json.dumps({
                  "utterance_id": "utt_0001", "speaker": "Speaker_0", "t_start": 0.5, "t_end": 1.5,
                  "text": "hello there", "confidence": 0.9,
                  "words": [{"word": "hello", "start": 0.5, "end": 0.9, "confidence": 0.95}]}).encode()
              + b"\n\nid: 3\nevent: sparkle\ndata: {\"x\":1}\n\n")
    events = [parse_event(m.event, m.data, m.id) for m in SSEParser(byte_by_byte(stream)).events()]
    status, final, unknown = events
    assert isinstance(status, Status) and status.id == 1 and status.progress == 0.5
    assert status.extra == {"new_key": 1}
    assert isinstance(final, FinalTranscript) and final.id == 2
    assert final.words[0].word == "hello" and final.words[0].end == 0.9
    assert isinstance(unknown, UnknownEvent) and unknown.event_name == "sparkle"
    assert unknown.data == {"x": 1} and unknown.id == 3
