"""The `harken` command: `harken live FILE` streams a recording and prints what the server hears; `harken serve` runs the service."""
import argparse
import json
import logging
import os
import shutil
import sys
import threading
from pathlib import Path

from .errors import HarkenError
from .events import (Emotion, Error, FinalTranscript, Moment, PartialTranscript, Status,
                     SummaryUpdate, UnknownEvent)
from .live import LiveClient
from .protocol import DEFAULT_CHUNK_BYTES
from .result import ConversationResult

DEFAULT_URL = "http://127.0.0.1:8000"
ROOT = Path(__file__).resolve().parent.parent


def main(argv=None):
    """Run the command line; returns the exit status (0: the session reached `done`)."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "serve":
        return _serve(parser, extra)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not os.path.isfile(args.file):
        parser.error(f"no such file: {args.file}")
    logging.basicConfig(level=logging.WARNING, format="harken: %(message)s")
    try:
        return _live(args)
    except HarkenError as error:
        print(f"harken: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("harken: interrupted; session cancelled", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of stdout left (`harken live … --json | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _parser():
    parser = argparse.ArgumentParser(prog="harken", description="Harken live conversation analytics.")
    commands = parser.add_subparsers(dest="command", required=True)
    live = commands.add_parser("live", help="stream a recorded file to a live session and print its events")
    live.add_argument("file", help="audio file (WAV, raw PCM, Ogg/WebM Opus, MP3, MP4/AAC)")
    live.add_argument("--url", default=os.environ.get("HARKEN_URL", DEFAULT_URL),
                      help=f"server URL (env HARKEN_URL, default {DEFAULT_URL})")
    live.add_argument("--api-key", default=os.environ.get("HARKEN_API_KEY"),
                      help="API key (env HARKEN_API_KEY)")
    live.add_argument("--realtime", action="store_true",
                      help="upload at the audio's own speed, as a microphone would")
    live.add_argument("--chunk-bytes", type=_positive_int, default=DEFAULT_CHUNK_BYTES,
                      help=f"bytes per chunk (default {DEFAULT_CHUNK_BYTES})")
    live.add_argument("--json", action="store_true", help="print each event as one JSON line")
    live.add_argument("--goal", help="the analysis focus, echoed in the summary")
    live.add_argument("--duration", type=float, dest="duration_s",
                      help="the file's duration in seconds, to pace compressed audio with --realtime")
    live.add_argument("--sample-rate", type=int, help="Hz, for headerless raw PCM (.pcm/.raw)")
    live.add_argument("--channels", type=int, help="channels, for headerless raw PCM")
    commands.add_parser("serve", help="run the service: gunicorn -c gunicorn.conf.py wsgi:app "
                                      "(further arguments go to gunicorn)")
    return parser


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _live(args):
    printer = _JsonPrinter() if args.json else _TextPrinter()
    result = ConversationResult()
    options = {k: v for k, v in (("goal", args.goal), ("duration_s", args.duration_s),
                                 ("sample_rate", args.sample_rate), ("channels", args.channels))
               if v is not None}
    with LiveClient(args.url, api_key=args.api_key) as client:
        stream = client.stream(args.file, chunk_bytes=args.chunk_bytes, realtime=args.realtime,
                                    on_chunk=printer.progress, **options)
        events = iter(stream)
        try:
            for event in events:
                result.add(event)
                printer.event(event)
        finally:
            events.close()  # on Ctrl-C too: cancels a session that did not finish
    printer.finish(result)
    if result.complete:
        return 0
    reason = f"{result.error.code}: {result.error.message}" if result.error else "no `done` event"
    print(f"harken: session ended without finishing ({reason})", file=sys.stderr)
    return 1


class _JsonPrinter:
    """One JSON line per event on stdout, for piping."""

    def progress(self, receipt, bytes_sent, total_bytes):
        pass

    def event(self, event):
        name = event.event_name if isinstance(event, UnknownEvent) else event.name
        line = {"id": event.id, "event": name, "data": event.to_dict()}
        print(json.dumps(line, ensure_ascii=False), flush=True)

    def finish(self, result):
        pass


class _TextPrinter:
    """Final lines on stdout; on a terminal, a status line on stderr (upload bar and the partial) rewritten in place."""

    def __init__(self):
        self.live = sys.stderr.isatty()
        self.lock = threading.Lock()
        self.bar = ""
        self.partial = ""
        self.pending = None
        self.uploaded = None

    def progress(self, receipt, bytes_sent, total_bytes):
        share = bytes_sent / total_bytes if total_bytes else 1.0
        filled = int(share * 20)
        with self.lock:
            self.uploaded = (bytes_sent, receipt.chunk_seq + 1)
            self.bar = f"upload [{'#' * filled}{'.' * (20 - filled)}] {share:4.0%}"
            self._redraw()

    def event(self, event):
        if isinstance(event, PartialTranscript):
            with self.lock:
                self.partial = f"{event.speaker or '…'}: {event.text}"
                self._redraw()
            return
        if isinstance(event, Status):  # periodic; may fall between a final and its emotion
            return
        if self.pending is not None:
            label = event.label if isinstance(event, Emotion) and \
                event.utterance_id == self.pending.utterance_id else None
            self._final(self.pending, label)
            self.pending = None
        if isinstance(event, FinalTranscript):
            self.pending = event
        elif isinstance(event, Moment):
            self._line(f"    * {event.category.replace('_', ' ')} ({event.speaker}): {event.evidence}")
        elif isinstance(event, Error):
            self._line(f"error {event.code}: {event.message}")

    def finish(self, result):
        if self.pending is not None:
            self._final(self.pending, None)
        with self.lock:
            self.bar = self.partial = ""
            self._redraw()
        if self.uploaded:
            print(f"uploaded {self.uploaded[0]} bytes in {self.uploaded[1]} chunks", file=sys.stderr)
        if result.summary is not None:
            self._line(_summary_text(result.summary))

    def _final(self, final, label):
        minutes, seconds = divmod(final.t_start or 0.0, 60)
        emotion = f" ({label})" if label else ""
        with self.lock:
            self.partial = ""
        self._line(f"[{int(minutes):02d}:{seconds:04.1f}] {final.speaker}{emotion}: {final.text}")

    def _line(self, text):
        with self.lock:
            if self.live:
                sys.stderr.write("\r\x1b[K")
                sys.stderr.flush()
            print(text, flush=True)
            self._redraw()

    def _redraw(self):
        if self.live:
            status = "  ".join(part for part in (self.bar, self.partial) if part)
            sys.stderr.write("\r\x1b[K" + status[:shutil.get_terminal_size().columns - 1])
            sys.stderr.flush()


def _summary_text(summary: SummaryUpdate):
    lines = ["", "Summary", "-------", summary.overview or ""]
    for title, items in (("Key insights", summary.key_insights),
                         ("Notable patterns", summary.notable_patterns),
                         ("Recommendations", summary.recommendations),
                         ("What went well", summary.what_went_well),
                         ("What went wrong", summary.what_went_wrong)):
        if items:
            lines += ["", f"{title}:"] + [f"  - {item}" for item in items]
    if summary.conversation_quality:
        lines += ["", f"Conversation quality: {summary.conversation_quality}"]
    return "\n".join(lines)


def _serve(parser, gunicorn_args):
    """Replace this process with gunicorn running the service from the source checkout."""
    if not (ROOT / "gunicorn.conf.py").is_file() or not (ROOT / "wsgi.py").is_file():
        parser.error(f"`harken serve` runs from a Harken source checkout; {ROOT} has no "
                     "gunicorn.conf.py and wsgi.py")
    gunicorn = Path(sys.executable).with_name("gunicorn")
    gunicorn = str(gunicorn) if gunicorn.exists() else shutil.which("gunicorn")
    if gunicorn is None:
        parser.error("gunicorn is not installed: pip install 'harken[server]'")
    os.chdir(ROOT)
    os.execv(gunicorn, [gunicorn, "-c", "gunicorn.conf.py", *gunicorn_args, "wsgi:app"])
