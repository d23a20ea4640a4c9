"""The `harken` command: `harken live FILE` streams a recording (or stdin) as a live session, `harken analyze FILE` analyses a whole recorded file; `harken serve` runs the service."""
import argparse
import json
import logging
import os
import shutil
import sys
import threading

from .errors import ConnectionFailed, HarkenError, NotFound
from .events import (Emotion, Error, FinalTranscript, Moment, PartialTranscript, Status,
                     SummaryUpdate, UnknownEvent)
from .live import LiveClient
from .protocol import DEFAULT_CHUNK_BYTES
from .result import AnalysisResult, ConversationResult
from .version import version

DEFAULT_URL = "http://127.0.0.1:8000"
STDIN = "-"


def main(argv=None):
    """Run the command line; returns the exit status (0: the session reached `done`)."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "serve":
        from .serve import serve  # the server's packages are needed only here

        return serve(parser, extra)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.file != STDIN and not os.path.isfile(args.file):
        parser.error(f"no such file: {args.file}")
    if args.command == "live" and args.file == STDIN and args.realtime:
        parser.error("--realtime paces a recorded file; audio from stdin arrives at its own speed")
    logging.basicConfig(level=logging.WARNING, format="harken: %(message)s")
    printer = _JsonPrinter() if args.json else _TextPrinter()
    # `harken analyze` without --json receives the whole document at the end, which replaces this.
    result = ConversationResult()
    try:
        if args.command == "analyze":
            result = _analyze(args, printer, result)
            return 0 if result.complete else _unfinished("analysis", result)
        return _live(args, printer, result)
    except ConnectionFailed as error:
        refused = _refused(error)
        print(f"harken: no Harken server at {args.url}: is it running?" if refused
              else f"harken: {error}", file=sys.stderr)
        return 1
    except HarkenError as error:
        print(f"harken: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        printer.clear()
        stopped = "analysis stopped" if args.command == "analyze" else "session cancelled"
        print(f"harken: interrupted; {stopped}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of stdout left (`harken live … --json | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    finally:
        if args.result:
            _write_result(args.result, result)


def _parser():
    parser = argparse.ArgumentParser(prog="harken", description="Harken live conversation analytics.")
    parser.add_argument("--version", action="version", version=f"harken {version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    live = commands.add_parser("live", help="stream a recorded file (or stdin) to a live session "
                                            "and print its events")
    live.add_argument("file", help="audio file (WAV, raw PCM, Ogg/WebM Opus, MP3, MP4/AAC), "
                                   "or - to read the audio from stdin")
    _server_options(live)
    live.add_argument("--realtime", action="store_true",
                      help="upload at the audio's own speed, as a microphone would")
    live.add_argument("--chunk-bytes", type=_positive_int, default=DEFAULT_CHUNK_BYTES,
                      help=f"bytes per chunk (default {DEFAULT_CHUNK_BYTES})")
    live.add_argument("--json", action="store_true", help="print each event as one JSON line")
    live.add_argument("--result", metavar="FILE",
                      help="write the whole ConversationResult (transcript, utterances, moments, "
                           "summary) to FILE as JSON at the end")
    live.add_argument("--suffix", help="the audio format's extension (.wav, .pcm, …) when the file "
                                       "name does not give it, e.g. for stdin")
    live.add_argument("--goal", help="the analysis focus, echoed in the summary")
    live.add_argument("--duration", type=float, dest="duration_s",
                      help="the file's duration in seconds, to pace compressed audio with --realtime")
    live.add_argument("--sample-rate", type=int, help="Hz, for headerless raw PCM (.pcm/.raw)")
    live.add_argument("--channels", type=int, help="channels, for headerless raw PCM")
    analyze = commands.add_parser("analyze", help="analyse a whole recorded file (POST /analyze) "
                                                  "and print its transcript and summary")
    analyze.add_argument("file", help="audio or video file (mp4, mov, webm, mp3, wav, m4a, aac, "
                                      "ogg, flac), or - to read it from stdin")
    _server_options(analyze)
    analyze.add_argument("--json", action="store_true",
                         help="stream the analysis (POST /analyze/stream) and print each event "
                              "as one JSON line")
    analyze.add_argument("--result", metavar="FILE",
                         help="write the whole result to FILE as JSON at the end (with the "
                              "server's full analysis document, unless --json)")
    analyze.add_argument("--goal", help="the analysis focus, echoed in the summary")
    analyze.add_argument("--language", help="speech language (server default en)")
    commands.add_parser("serve", help="run the service under gunicorn with Harken's settings "
                                      "(further arguments go to gunicorn)")
    return parser


def _server_options(command):
    command.add_argument("--url", default=os.environ.get("HARKEN_URL", DEFAULT_URL),
                         help=f"server URL (env HARKEN_URL, default {DEFAULT_URL})")
    command.add_argument("--api-key", default=os.environ.get("HARKEN_API_KEY"),
                         help="API key (env HARKEN_API_KEY)")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _live(args, printer, result):
    options = {k: v for k, v in (("goal", args.goal), ("duration_s", args.duration_s),
                                 ("sample_rate", args.sample_rate), ("channels", args.channels),
                                 ("suffix", args.suffix)) if v is not None}
    source = sys.stdin.buffer if args.file == STDIN else args.file
    with LiveClient(args.url, api_key=args.api_key) as client:
        note = _without_models_note(client, args.url)
        stream = client.stream(source, chunk_bytes=args.chunk_bytes, realtime=args.realtime,
                               on_chunk=printer.progress, **options)
        events = iter(stream)
        try:
            for event in events:
                if note:  # once the session is running: a refused one has another story to tell
                    printer.clear()
                    print(note, file=sys.stderr)
                    note = None
                result.add(event)
                printer.event(event)
        finally:
            events.close()  # on Ctrl-C too: cancels a session that did not finish
    printer.finish(result)
    return 0 if result.complete else _unfinished("session", result)


def _analyze(args, printer, result):
    """Analyse the file: events as they come with --json (into `result`), else the whole document at the end."""
    source = sys.stdin.buffer if args.file == STDIN else args.file
    options = {"goal": args.goal, "language": args.language}
    with LiveClient(args.url, api_key=args.api_key) as client:
        if args.json:
            events = client.stream_file_analysis(source, **options)
            try:
                for event in events:
                    result.add(event)
                    printer.event(event)
            finally:
                events.close()  # on Ctrl-C too: the server stops the analysis
            return result
        printer.waiting(f"analysing {'stdin' if args.file == STDIN else args.file} …")
        analysis = client.analyze_file(source, **options)
    printer.analysis(analysis)
    return analysis


def _unfinished(what, result):
    """Say why the session or analysis did not reach `done`; the exit status 1."""
    reason = f"{result.error.code}: {result.error.message}" if result.error else "no `done` event"
    print(f"harken: {what} ended without finishing ({reason})", file=sys.stderr)
    return 1


def _without_models_note(client, url):
    """The line that names a server running without speech models (so a user who sees no transcript knows why), or None."""
    try:
        health = client.health()
    except NotFound:  # a Live Capture API server without Harken's /healthz
        return None
    pipeline = health.get("pipeline") or {}
    if pipeline.get("pipeline") != "none":
        return None
    return (f"harken: the server at {url} runs without speech models (HARKEN_PIPELINE=none): "
            "expect status events and `done`, no transcript")


def _refused(error):
    """True when the connection was refused: nothing listens at the URL."""
    seen, pending = set(), [error]
    while pending:
        cause = pending.pop()
        if cause is None or id(cause) in seen:
            continue
        seen.add(id(cause))
        if isinstance(cause, ConnectionRefusedError):
            return True
        pending += [cause.__cause__, cause.__context__, getattr(cause, "reason", None),
                    *(a for a in getattr(cause, "args", ()) if isinstance(a, BaseException))]
    return False


def _write_result(path, result):
    with open(path, "w", encoding="utf-8") as out:
        json.dump(result.to_dict(), out, ensure_ascii=False, indent=2)
        out.write("\n")


class _JsonPrinter:
    """One JSON line per event on stdout, for piping."""

    def progress(self, receipt, bytes_sent, total_bytes):
        pass

    def clear(self):
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
        with self.lock:
            self.uploaded = (bytes_sent, receipt.chunk_seq + 1)
            if total_bytes:
                share = bytes_sent / total_bytes
                filled = int(share * 20)
                self.bar = f"upload [{'#' * filled}{'.' * (20 - filled)}] {share:4.0%}"
            else:
                self.bar = f"upload {bytes_sent / 1024:.0f} KiB"
            self._redraw()

    def clear(self):
        """Wipe the status line (before a message that must start on a clean line)."""
        with self.lock:
            self.bar = self.partial = ""
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
            self._line(_moment_line(event.category, event.speaker, event.evidence))
        elif isinstance(event, Error):
            self._line(f"error {event.code}: {event.message}")

    def finish(self, result):
        if self.pending is not None:
            self._final(self.pending, None)
        self.clear()
        if self.uploaded:
            print(f"uploaded {self.uploaded[0]} bytes in {self.uploaded[1]} chunks", file=sys.stderr)
        if result.summary is not None:
            self._line(_summary_text(result.summary))

    def waiting(self, text):
        """On a terminal, `text` as the status line until the next output."""
        with self.lock:
            self.bar = text
            self._redraw()

    def analysis(self, result: AnalysisResult):
        """A whole file's analysis: each utterance, the moments it closes, then the summary and the phases."""
        self.clear()
        moments = {}
        for moment in result.moments:
            moments.setdefault((moment.get("utterance_ids") or [None])[-1], []).append(moment)
        for utterance in result.utterances:
            label = (utterance["emotion"] or {}).get("label")
            self._line(_final_line(utterance["t_start"], utterance["speaker"], label, utterance["text"]))
            for moment in moments.get(utterance["utterance_id"], []):
                self._line(_moment_line(moment["category"], moment["speaker"], moment["evidence"]))
        if result.summary is not None:
            self._line(_summary_text(result.summary))
        if result.phases:
            self._line("\nPhases:")
            for phase in result.phases:
                span = f"{_clock(phase['start_ms'] / 1000)}-{_clock(phase['end_ms'] / 1000)}"
                self._line(f"  {span}  {phase['phase_name'].replace('_', ' ')}")
        if result.truncated:
            print("harken: " + "; ".join(result.document.get("warnings") or ["the file was truncated"]),
                  file=sys.stderr)

    def _final(self, final, label):
        with self.lock:
            self.partial = ""
        self._line(_final_line(final.t_start, final.speaker, label, final.text))

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


def _clock(seconds):
    minutes, seconds = divmod(seconds or 0.0, 60)
    return f"{int(minutes):02d}:{seconds:04.1f}"


def _final_line(t_start, speaker, label, text):
    """`[mm:ss.s] Speaker_N (emotion): text`, one final utterance."""
    emotion = f" ({label})" if label else ""
    return f"[{_clock(t_start)}] {speaker}{emotion}: {text}"


def _moment_line(category, speaker, evidence):
    return f"    * {category.replace('_', ' ')} ({speaker}): {evidence}"


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
