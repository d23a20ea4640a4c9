"""The page at `/` in Debian's real Chromium, driven by Playwright, with a fake microphone fed real speech."""
import base64
import json
import os
import re
import socket
import statistics
import threading
import time
from pathlib import Path

import pytest
import requests

from live import wait_for
from speechgen import dialogue, encode, wer

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium")
# Flags for a closed network, as root, with no GPU (see scripts/apt-packages.txt for the package).
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FAKE_DEVICE = "--use-fake-device-for-media-stream"
FAKE_UI = "--use-fake-ui-for-media-stream"
# Whisper base reads Piper's voice at about 7 % WER offline; the browser adds MediaRecorder's
# Opus or AAC, the fake device's resampling and 250 ms slices, and streaming commits early
# (seen here: 0-2.4 % on the microphone passage, 5.8 % on the pitched second voice of the call).
# 20 % allows eight slips on these ~42 words yet fails on a lost sentence, a dropped chunk, a
# clause emitted twice (one 9-word replay alone costs 21 %) or a garbled stream.
MAX_WER = 0.2
TURNS = [
    ("A", "Thanks for joining the call today. I wanted to walk you through the new pricing."),
    ("A", "Honestly, the price is too high for our budget this quarter."),
    ("A", "Could you send me a proposal by Friday? Then we can sign the contract next week."),
]

# A two-person call for the file path, voiced as the demo sample is (scripts/make-sample).
CALL = [
    ("rep", "Hi Dana, thanks for taking the time today. How is the rollout going?"),
    ("buyer", "Honestly, it has been slow. The team is frustrated with the reporting tools."),
    ("rep", "If we include the reporting module at no extra cost, would that work?"),
    ("buyer", "Yes, that would work. Let's schedule a demo with my manager next Tuesday."),
]
CALL_VOICES = {"rep": {"voice": "joe"}, "buyer": {"voice": "joe", "pitch_cents": -500, "tempo": 0.95}}

pytestmark = pytest.mark.browser

# Run in every page before its own scripts: it watches what the user gets, never the page's
# internals. `seen` stamps (performance.now()) the microphone opening, the recorder's start and
# each final line's appearance on the page, and keeps the type the recorder was asked for; `harkenTrace` is the page's test hook, an array it
# fills with the events it applied only when a test defines it.
WATCH_PAGE = """
window.harkenTrace = [];
const seen = window.harkenSeen = { micOpenedAt: null, recorderType: null, recorderStartedAt: null, finals: [] };
if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
  const open = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const stream = await open(constraints);
    seen.micOpenedAt = performance.now();
    return stream;
  };
}
if (window.MediaRecorder) {
  const start = MediaRecorder.prototype.start;
  MediaRecorder.prototype.start = function (...args) {
    seen.recorderType = this.mimeType;
    this.addEventListener("start", () => { seen.recorderStartedAt = performance.now(); }, { once: true });
    return start.apply(this, args);
  };
}
new MutationObserver((records) => {
  const at = performance.now();
  for (const record of records) {
    const nodes = [...record.addedNodes].filter((n) => n.nodeType === 1);
    if (record.target.nodeType === 1 && record.target.matches(".seg.final")) nodes.push(record.target);
    for (const node of nodes) {
      for (const seg of [node, ...node.querySelectorAll(".seg.final")]) {
        if (seg.matches(".seg.final")) seen.finals.push({ text: seg.textContent, t_end: Number(seg.dataset.tEnd), at });
      }
    }
  }
}).observe(document, { childList: true, subtree: true });
"""


def chromium_executable():
    """Debian's Chromium binary; the bootstrap installs the `chromium` package."""
    for path in CHROMIUM_CANDIDATES:
        if os.path.exists(path):
            return path
    pytest.fail("Debian's chromium is not installed: run scripts/bootstrap (apt package `chromium`)")


@pytest.fixture(scope="module")
def playwright():
    """One Playwright driver for this module (it drives Debian's Chromium, never a downloaded one).

    Not for the whole run: the sync driver keeps an asyncio loop running in the main thread
    while it lives, and the async client's tests, which come later, call asyncio.run.
    """
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as driver:
        yield driver


@pytest.fixture
def open_page(playwright):
    """Factory: `open_page(url, *flags)` launches a fresh Chromium and returns a page with error capture."""
    browsers = []

    def launch(url, *flags, permissions=None, width=1280):
        browser = playwright.chromium.launch(executable_path=chromium_executable(),
                                             args=CHROMIUM_FLAGS + list(flags))
        browsers.append(browser)
        context = browser.new_context(viewport={"width": width, "height": 900}, permissions=permissions)
        context.add_init_script(WATCH_PAGE)
        page = context.new_page()
        page.js_errors = []
        page.on("pageerror", lambda exc: page.js_errors.append(str(exc)))
        page.on("console", lambda msg: msg.type == "error" and page.js_errors.append(msg.text))
        # What the page asked of the API and what it was answered, as the server saw it.
        page.api_requests = []
        page.api_answers = []
        page.on("request", lambda r: "/analyze/" in r.url and page.api_requests.append(r))
        page.on("response", lambda r: "/analyze/" in r.url and page.api_answers.append(r))
        page.goto(url if "?" in url else url + "/")
        return page

    yield launch
    for browser in browsers:
        browser.close()


def speech_file():
    """Three sentences of Piper speech with a clear pause after each, and their spans."""
    return dialogue(TURNS, voices={"A": {"voice": "joe"}}, gap_s=1.2)


def screenshot(page, name):
    """Save a full-page screenshot in tests/artifacts/ and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    # Grow the viewport to the whole page: Chromium sometimes reports only the viewport's height.
    height = page.evaluate("Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
    page.set_viewport_size({"width": page.viewport_size["width"], "height": max(height, 600)})
    page.screenshot(path=str(path), full_page=True)
    return path


def wait_state(page, states, timeout_s):
    """Wait until the page's `data-state` is one of `states`."""
    selector = ", ".join(f'body[data-state="{s}"]' for s in states)
    page.wait_for_selector(selector, state="attached", timeout=timeout_s * 1000)
    return page.evaluate("document.body.dataset.state")


def wait_phase(page, phase, timeout_s):
    """Wait until the status pill shows `phase` (a server phase such as `ingesting` while live)."""
    page.wait_for_selector(f'#phase[data-phase="{phase}"]', state="attached", timeout=timeout_s * 1000)


def session_id(page):
    """The id the server gave the page's POST /analyze/live/start, or None if no session started."""
    started = [r for r in page.api_answers
               if r.request.method == "POST" and r.url.endswith("/analyze/live/start") and r.status == 200]
    return started[-1].json()["session_id"] if started else None


def transcript_text(page):
    """The final segments' texts, in page order."""
    return " ".join(page.locator("#transcript .seg.final").all_inner_texts())


def copied_text(page, selector):
    """What a user gets by selecting everything in `selector` and copying it."""
    return page.evaluate("""(selector) => {
        const range = document.createRange();
        range.selectNodeContents(document.querySelector(selector));
        const selection = getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        const text = selection.toString();
        selection.removeAllRanges();
        return text;
    }""", selector)


def assert_copy_keeps_words_apart(page):
    """Copying the transcript gives each turn's fragments with a space where they meet; returns the
    largest number of fragments in one turn (a turn of one fragment cannot glue anything)."""
    copied = " ".join(copied_text(page, "#transcript").split())
    turns = page.evaluate("""[...document.querySelectorAll('#transcript .turn')]
        .map(t => [...t.querySelectorAll('.seg.final')].map(s => s.textContent))""")
    for fragments in turns:
        assert " ".join(" ".join(fragments).split()) in copied, (fragments, copied)
    return max(len(fragments) for fragments in turns)


def download(page, what):
    """Click a Download button and return the saved file's text."""
    with page.expect_download() as saved:
        page.click(f"#download-{what}")
    return Path(saved.value.path()).read_text(encoding="utf-8")


def assert_downloads_hold_the_result(page):
    """The four downloads hold what the page shows: its turns, finals, summary and moments."""
    turns = page.evaluate("""[...document.querySelectorAll('#transcript .turn')]
        .map(t => [...t.querySelectorAll('.seg.final')].map(s => s.textContent).join(' '))""")
    finals = page.locator("#transcript .seg.final").all_text_contents()
    overview = page.locator("#summary .overview").text_content()
    shown_moments = page.locator("#moments .moment").count()
    text = download(page, "transcript-txt")
    # A live session's id is the /start answer's; a whole-file analysis's comes with its `done`.
    expected_id = session_id(page) or re.match(r"Harken transcript — session (analysis_[0-9a-f]{24})\n", text)[1]
    assert text.startswith(f"Harken transcript — session {expected_id}"), text
    assert len(text.strip().splitlines()) == 2 + len(turns) and all(turn in text for turn in turns), (turns, text)
    doc = json.loads(download(page, "transcript-json"))
    assert [u["text"] for u in doc["utterances"]] == finals and [t["text"] for t in doc["turns"]] == turns
    assert all(u["words"] and u["speaker"] for u in doc["utterances"]), doc["utterances"]
    result = json.loads(download(page, "result-json"))
    assert result["complete"] is True and result["session_id"] == expected_id
    assert result["summary"]["overview"] == overview and [u["text"] for u in result["transcript"]] == finals
    assert len(result["moments"]) + len(result["transitions"]) == shown_moments
    assert len(result["emotion"]) == len(finals) and result["cognitive"], result
    report = download(page, "result-txt")
    assert overview in report and all(turn in report for turn in turns), report


def server_session_state(server, session_id):
    """GET /analyze/live/{id}: the state, or the HTTP status when the session is gone."""
    response = requests.get(f"{server.url}/analyze/live/{session_id}", timeout=(5, 10))
    return response.json().get("status") if response.status_code == 200 else response.status_code


def assert_finished_analysis(page, reference):
    """Words, speaker label, emotion entry and summary are on the page after `done`."""
    hypothesis = transcript_text(page)
    error_rate = wer(reference, hypothesis)
    print(f"\nreference:  {reference}\nhypothesis: {hypothesis}\nWER {error_rate:.3f}")
    assert error_rate < MAX_WER, (reference, hypothesis)
    speakers = page.locator("#transcript .turn.final .speaker").all_inner_texts()
    assert speakers and all(re.fullmatch(r"Speaker \d+", s) for s in speakers), speakers
    labels = page.locator("#transcript .emotion-label").all_inner_texts()
    assert labels and all(label.strip() for label in labels)
    assert page.locator("#emotion-timeline svg circle.point").count() >= 1
    assert page.locator("#trend svg polyline.engagement").count() == 1
    overview = page.locator("#summary .overview").inner_text()
    assert len(overview.split()) >= 5, overview
    assert page.locator("#transcript .seg.partial").count() == 0
    assert page.evaluate("document.getElementById('link').dataset.state") == "closed"


def test_page_and_assets_are_served_locally(transport_server):
    """`/` is HTML whose module script, every module it imports and the styles come from this server."""
    page = requests.get(transport_server.url + "/", timeout=(5, 10))
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(a.startswith("/") or a.startswith("data:") for a in assets), assets
    assert re.search(r'<script type="module" src="/ui/harken.js">', page.text), page.text
    css = requests.get(transport_server.url + "/ui/harken.css", timeout=(5, 10))
    assert css.status_code == 200 and "text/css" in css.headers["Content-Type"]
    # Follow the imports: a module served with another MIME type is refused by the browser.
    pending, seen = ["/ui/harken.js"], set()
    while pending:
        path = pending.pop()
        seen.add(path)
        response = requests.get(transport_server.url + path, timeout=(5, 10))
        assert response.status_code == 200 and "javascript" in response.headers["Content-Type"], path
        # The SVG namespace is a name, not a fetch.
        text = response.text.replace("http://www.w3.org/2000/svg", "")
        assert "http://" not in text and "https://" not in text, path
        for target in re.findall(r'^import .* from "([^"]+)";$', text, re.M):
            assert target.startswith("./") or target.startswith("../"), (path, target)
            resolved = os.path.normpath(os.path.join(os.path.dirname(path), target))
            if resolved not in seen:
                pending.append(resolved)
    assert len(seen) > 10 and "/ui/js/session.js" in seen, seen


def test_permission_denied_shows_a_clear_message(open_page, transport_server):
    """Without the fake-UI flag the permission prompt is denied: a plain message, no session."""
    page = open_page(transport_server.url, FAKE_DEVICE)
    page.click("#record")
    message = page.locator("#messages .msg-error")
    message.wait_for(timeout=10_000)
    assert "Microphone permission denied" in message.inner_text()
    assert wait_state(page, ["idle"], 5) == "idle"
    # The pill says so too (it used to stay "OPENING MIC").
    pill = page.locator("#phase")
    assert pill.get_attribute("data-phase") == "idle" and pill.text_content() == "idle"
    assert not page.api_requests, [r.url for r in page.api_requests]
    assert page.is_enabled("#record") and not page.is_enabled("#stop")
    screenshot(page, "browser-permission-denied.png")
    assert not page.js_errors


def test_transcript_fragments_are_copied_with_spaces(open_page, transport_server):
    """Finals of one turn rendered side by side copy as words, not "truckarrived" (the page's own modules)."""
    page = open_page(transport_server.url)
    copied = page.evaluate("""async () => {
        const { Transcript } = await import('/ui/js/transcript.js');
        const { TranscriptView } = await import('/ui/js/views/transcript.js');
        const list = document.createElement('ol');
        list.id = 'fragments';
        document.body.appendChild(list);
        const transcript = new Transcript();
        const view = new TranscriptView(list);
        const final = (id, t_start, t_end, text) => transcript.final(
            { utterance_id: id, speaker: 'Speaker_0', t_start, t_end, text, confidence: 0.9 });
        final('utt_0001', 0.0, 1.1, 'The delivery truck');
        final('utt_0002', 1.2, 2.0, 'arrived early.');
        view.render(transcript);
        final('utt_0003', 2.5, 3.6, 'So we can start the');
        transcript.partial({ utterance_id: 'utt_0004', speaker: null, t_start: 3.7, text: 'inventory' });
        view.render(transcript);
        final('utt_0004', 3.7, 5.0, 'inventory count today.');
        view.render(transcript);
        return [list.querySelectorAll('.turn').length, list.querySelector('.text').innerText];
    }""")
    assert copied == [1, "The delivery truck arrived early. So we can start the inventory count today."], copied
    assert copied_text(page, "#fragments .text") == copied[1]
    assert not page.js_errors, page.js_errors


def test_state_machine_and_upload_retries(open_page, transport_server):
    """The page's state machine refuses unknown moves; chunk retries jitter, honour Retry-After and skip as documented."""
    page = open_page(transport_server.url)
    result = page.evaluate("""async () => {
        const { SessionMachine, controlsFor } = await import('/ui/js/machine.js');
        const { UPLOAD_RETRY, delayMs, retryAfterMs, shouldRetry } = await import('/ui/js/backoff.js');
        const { ChunkUploader } = await import('/ui/js/uploader.js');
        const { ApiError } = await import('/ui/js/api.js');
        const machine = new SessionMachine();
        const moves = [['recording', machine.go('recording')], ['opening', machine.go('opening')],
                       ['idle', machine.go('idle')], ['uploading', machine.go('uploading')],
                       ['done', machine.go('done')], ['cancelling', machine.go('cancelling')]];
        const draws = Array.from({ length: 200 }, () => delayMs(UPLOAD_RETRY, 3, new ApiError(503, 'busy', 'busy')));
        const soon = new Date(Date.now() + 5000).toUTCString();
        // Seven slices; the server fails chunk 1 twice with 503 (the second time asking for 0 s),
        // rejects the audio of the first chunk 2, answers chunk 3 with "expected 5" (an accepted
        // retry whose answer was lost: slices e and f are skipped) and refuses chunk 5 for good.
        const answers = { 1: [new ApiError(503, 'server_busy', 'busy', {}), new ApiError(503, 'server_busy', 'busy', { retry_after: '0' })],
                          2: [new ApiError(422, 'invalid_chunk', 'unreadable')],
                          3: [new ApiError(409, 'chunk_out_of_order', 'ahead', { expected_chunk_seq: 5 })],
                          5: [new ApiError(413, 'chunk_too_large', 'too large')] };
        const log = [];
        const send = async (seq, blob) => {
            const failure = (answers[seq] || []).shift();
            log.push(`send ${seq} ${await blob.text()}`);
            if (failure) throw failure;
            return { next_chunk_seq: seq + 1 };
        };
        const uploader = new ChunkUploader(send, Object.assign({}, UPLOAD_RETRY, { baseMs: 1 }), {
            onSent: (bytes) => log.push(`sent ${bytes}`), onRetry: (err, seq) => log.push(`retry ${seq} ${err.code}`),
            onRecovered: () => log.push('recovered'), onSkipped: (err, seq) => log.push(`skipped ${seq}`),
            onFatal: (err, seq) => log.push(`fatal ${seq} ${err.code}`) });
        for (const text of ['a', 'b', 'c', 'd', 'e', 'f', 'g']) uploader.push(new Blob([text]));
        uploader.begin(0);
        await uploader.drained();
        return { moves, controls: [controlsFor('opening'), controlsFor('recording'), controlsFor('cancelling'), controlsFor('failed')],
                 distinct: new Set(draws).size, max: Math.max(...draws), min: Math.min(...draws),
                 retryAfter: [retryAfterMs('3'), Math.round(retryAfterMs(soon) / 1000), retryAfterMs('soon'),
                              delayMs(UPLOAD_RETRY, 0, { retryAfterMs: 120000 })],
                 tries: [shouldRetry(UPLOAD_RETRY, 5, { retryable: true }), shouldRetry(UPLOAD_RETRY, 6, { retryable: true }),
                         shouldRetry(UPLOAD_RETRY, 0, new ApiError(422, 'invalid_chunk', 'x'))],
                 log, pending: uploader.pending };
    }""")
    assert result["moves"] == [["recording", False], ["opening", True], ["idle", True], ["uploading", True],
                               ["done", True], ["cancelling", False]]
    assert result["controls"] == [{"start": False, "stop": False, "cancel": True},
                                  {"start": False, "stop": True, "cancel": True},
                                  {"start": False, "stop": False, "cancel": False},
                                  {"start": True, "stop": False, "cancel": False}]
    # Full jitter: attempt 3 waits anywhere in [0, 2 s], not always 2 s.
    assert result["distinct"] > 150 and 0 <= result["min"] < 500 and 1500 < result["max"] <= 2000, result
    assert result["retryAfter"][0] == 3000 and result["retryAfter"][1] in (4, 5) and result["retryAfter"][2] is None
    assert result["retryAfter"][3] == 30000
    assert result["tries"] == [True, False, False]
    # An unreadable chunk is not accepted (next_chunk_seq stays), so the next slice takes its number.
    assert result["log"] == ["send 0 a", "sent 1", "send 1 b", "retry 1 server_busy", "send 1 b", "retry 1 server_busy",
                             "send 1 b", "recovered", "sent 2", "send 2 c", "skipped 2", "send 2 d", "sent 3",
                             "send 3 e", "send 5 g", "fatal 5 chunk_too_large"], result["log"]
    assert result["pending"] == 0
    assert not page.js_errors, page.js_errors


def test_live_regions_announce_the_transcript_not_the_clock(open_page, transport_server):
    """Screen readers hear the state and new transcript lines, not the header's ticking clock."""
    wav, _ = speech_file()
    page = _stream_file_at_real_time(open_page, transport_server.url, wav)
    page.wait_for_function("!['0:00', '0:01'].includes(document.getElementById('clock').textContent)", timeout=10_000)
    regions = page.evaluate("""() => {
        const live = '[aria-live]:not([aria-live="off"]), [role="status"], [role="log"], [role="alert"]';
        const region = (id) => {
            const found = document.getElementById(id).closest(live);
            return found && (found.getAttribute('role') || found.getAttribute('aria-live'));
        };
        return { clock: region('clock'), lag: region('lag'), link: region('link'), phase: region('phase'),
                 transcript: region('transcript'), clockRole: document.getElementById('clock').getAttribute('role') };
    }""")
    assert regions == {"clock": None, "lag": None, "link": None, "phase": "status", "transcript": "log",
                       "clockRole": "timer"}, regions
    page.click("#cancel")
    assert wait_state(page, ["cancelled"], 10) == "cancelled"
    assert not page.js_errors, page.js_errors


def test_cancel_aborts_the_session(open_page, transport_server, tmp_path):
    """Record, Cancel: the server cancels the session, the page says so and closes the stream."""
    wav, _ = speech_file()
    page = open_page(transport_server.url, FAKE_DEVICE, FAKE_UI,
                     f"--use-file-for-fake-audio-capture={wav}%noloop")
    page.click("#record")
    wait_state(page, ["recording"], 10)
    # Wait until chunks are really flowing: the server reports the session as ingesting.
    wait_phase(page, "ingesting", 10)
    page.click("#cancel")
    assert wait_state(page, ["cancelled"], 10) == "cancelled"
    assert "Session cancelled" in page.locator("#messages .msg-info").inner_text()
    assert server_session_state(transport_server, session_id(page)) in ("cancelled", 404, 410)
    assert page.evaluate("document.getElementById('link').dataset.state") == "closed"
    assert page.is_enabled("#record")
    assert not page.js_errors


def test_server_error_is_shown_with_its_code(open_page, start_server):
    """A full server's 503 reaches the user as a sentence with the code and when to retry, not a hang."""
    server = start_server(HARKEN_PIPELINE="none", HARKEN_MAX_SESSIONS="1")
    requests.post(server.url + "/analyze/live/start", json={}, timeout=(5, 10)).raise_for_status()
    wav, _ = speech_file()
    page = open_page(server.url, FAKE_DEVICE, FAKE_UI, f"--use-file-for-fake-audio-capture={wav}%noloop")
    page.click("#record")
    assert wait_state(page, ["failed"], 10) == "failed"
    message = page.locator("#messages .msg-error").inner_text()
    assert "server_full" in message and "HTTP 503" in message and "Try again in" in message, message
    assert page.is_enabled("#record") and not page.is_enabled("#stop")
    assert session_id(page) is None
    screenshot(page, "browser-server-full.png")


def test_closing_the_tab_cancels_the_session(open_page, transport_server):
    """A tab closed mid-recording cancels its session instead of leaving it to expire."""
    wav, _ = speech_file()
    page = open_page(transport_server.url, FAKE_DEVICE, FAKE_UI,
                     f"--use-file-for-fake-audio-capture={wav}%noloop")
    page.click("#record")
    wait_phase(page, "ingesting", 10)
    closed_id = session_id(page)
    page.close(run_before_unload=True)
    assert wait_for(lambda: server_session_state(transport_server, closed_id) in ("cancelled", 404, 410), 10)


@pytest.mark.speech
@pytest.mark.parametrize("record_type, suffix", [
    (None, ".webm"),  # Chromium's default choice: WebM/Opus
    ("audio/mp4", ".mp4"),  # what Safari records: fragmented MP4
])
def test_microphone_to_transcript_emotion_and_summary(open_page, speech_server, record_type, suffix):
    """Fake microphone speaks three sentences; Stop; words, speakers, emotion and summary appear."""
    wav, spans = speech_file()
    query = f"?record_type={record_type}" if record_type else ""
    page = open_page(speech_server.url + "/" + query, FAKE_DEVICE, FAKE_UI,
                     f"--use-file-for-fake-audio-capture={wav}%noloop")
    page.click("#record")
    wait_state(page, ["recording"], 10)
    # While speech goes on, an unsettled hypothesis shows in grey before its final; screen
    # readers are not read every guess.
    page.wait_for_selector("#transcript .seg.partial", timeout=15_000)
    assert page.locator("#record").inner_text().strip() == "Recording…"
    assert page.locator('#transcript .seg.partial:not([aria-hidden="true"])').count() == 0
    screenshot(page, f"browser-microphone-live{suffix}.png")
    # Every sentence must be final on the page before Stop, so its latency is a live one: Stop
    # waits until the fake microphone has played the whole passage and a final reaches its end.
    page.wait_for_function(f"performance.now() - window.harkenSeen.micOpenedAt > {(spans[-1].end_s + 0.5) * 1000} && "
                           f"window.harkenSeen.finals.length > 0 && "
                           f"Math.max(...window.harkenSeen.finals.map(f => f.t_end)) > {spans[-1].end_s - 0.8}",
                           timeout=(spans[-1].end_s + 30) * 1000)
    page.click("#stop")
    assert wait_state(page, ["done"], 120) == "done", page.locator("#messages").inner_text()
    # What the page recorded (as MediaRecorder was asked) and the container it told the server.
    start = next(r for r in page.api_requests if r.url.endswith("/analyze/live/start"))
    assert start.post_data_json["suffix"] == suffix
    assert page.evaluate("window.harkenSeen.recorderType") == (record_type or "audio/webm;codecs=opus")
    latencies = sentence_latencies(page, spans)
    print(f"sentence end -> final on page (s): {[round(x, 2) for x in latencies]}, "
          f"median {statistics.median(latencies):.2f}, max {max(latencies):.2f}")
    # Cross-check on the server's clock: from the recorder's start plus each final's t_end.
    seen = page.evaluate("window.harkenSeen")
    by_server = [(f["at"] - seen["recorderStartedAt"]) / 1000 - f["t_end"] for f in seen["finals"]]
    print(f"final's t_end -> on page (s): median {statistics.median(by_server):.2f}, max {max(by_server):.2f}")
    shot = screenshot(page, f"browser-microphone{suffix}.png")
    assert_finished_analysis(page, " ".join(text for _, text in TURNS))
    print("most fragments in one turn:", assert_copy_keeps_words_apart(page))
    assert page.locator("#transcript .seg.final[aria-hidden]").count() == 0
    assert not page.js_errors, page.js_errors
    assert shot.stat().st_size > 10_000


def sentence_latencies(page, spans):
    """Seconds from the end of each spoken sentence to the final line holding its last word.

    The fake device starts playing the file when the microphone opens, so a sentence ends
    at `micOpenedAt + end_s`; WATCH_PAGE stamps each final line when it appears on the page.
    """
    seen = page.evaluate("window.harkenSeen")
    opened_ms = seen["micOpenedAt"]
    latencies = []
    for span in spans:
        last_word = re.sub(r"[^a-z']", "", span.text.split()[-1].lower())
        holding = [f for f in seen["finals"] if last_word in re.sub(r"[^a-z' ]", "", f["text"].lower()).split()]
        assert holding, f"no final ends {span.text!r}; finals: " + " | ".join(f["text"] for f in seen["finals"])
        latencies.append((holding[0]["at"] - opened_ms) / 1000 - span.end_s)
    return latencies


@pytest.mark.speech
@pytest.mark.parametrize("how, container", [("drop", "ogg"), ("chooser", "wav")])
def test_file_is_analysed_whole(open_page, speech_server, how, container):
    """A dropped Ogg (desktop) or chosen WAV (phone-sized) call goes to POST /analyze/stream and is shown as analysed."""
    wav, _ = dialogue(CALL, voices=CALL_VOICES, gap_s=0.7)
    path = Path(encode(wav, container))
    page = open_page(speech_server.url, width=1280 if how == "drop" else 400)
    assert not any(page.is_enabled(f"#download-{what}") for what in ("transcript-txt", "result-json"))
    if how == "chooser":
        page.set_input_files("#file-input", str(path))
    else:
        payload = base64.b64encode(path.read_bytes()).decode()
        transfer = page.evaluate_handle(
            """([name, b64]) => {
                const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
                const dt = new DataTransfer();
                dt.items.add(new File([bytes], name, {type: "audio/ogg"}));
                return dt;
            }""", [f"call.{container}", payload])
        page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})
    assert wait_state(page, ["done"], 120) == "done", page.locator("#messages").inner_text()
    sent = [(r.method, r.url.split("/", 3)[3]) for r in page.api_requests]
    assert sent == [("POST", "analyze/stream")], sent
    screenshot(page, f"browser-file-{how}.png")
    assert_finished_analysis(page, " ".join(text for _, text in CALL))
    # Two voices: two speakers, each with its own colour.
    colours = page.evaluate("""[...document.querySelectorAll('#transcript .turn.final .speaker')]
        .map(c => [c.textContent, getComputedStyle(c).backgroundColor])""")
    by_speaker = dict(colours)
    print("speakers and colours:", by_speaker)
    assert len(by_speaker) == 2 and len(set(by_speaker.values())) == 2, colours
    print("most fragments in one turn:", assert_copy_keeps_words_apart(page))
    assert_downloads_hold_the_result(page)
    assert not page.js_errors, page.js_errors


@pytest.mark.speech
def test_cancel_hangs_up_a_file_analysis(open_page, speech_server, tmp_path):
    """Cancel during a whole-file analysis closes the connection: the page says so and the server frees the worker."""
    wav, _ = dialogue(CALL * 4, voices=CALL_VOICES, gap_s=0.7)
    page = open_page(speech_server.url)
    page.set_input_files("#file-input", str(wav))
    assert wait_state(page, ["analysing"], 10) == "analysing"
    assert page.is_enabled("#cancel") and not page.is_enabled("#stop")
    page.wait_for_function("window.harkenTrace.some(e => e.name === 'status')", timeout=30_000)
    page.click("#cancel")
    assert wait_state(page, ["cancelled"], 10) == "cancelled"
    assert "Analysis cancelled" in page.locator("#messages .msg-info").inner_text()
    assert wait_for(lambda: "file analysis cancelled: the client hung up" in speech_server.log(), 60), \
        "the server went on analysing"
    assert page.is_enabled("#record")
    assert not page.js_errors, page.js_errors


def test_sse_reader_takes_a_fetched_stream_split_anywhere(open_page, transport_server):
    """js/sse.js (the whole-file stream's reader): byte-split UTF-8, CRLF/CR/LF, comments, `retry:` alone and a cut-off message."""
    page = open_page(transport_server.url)
    messages = page.evaluate("""async () => {
        const { sseMessages } = await import('/ui/js/sse.js');
        const text = 'retry: 2000\\n\\n: keepalive\\n\\nid: 1\\r\\nevent: status\\r\\ndata: {"phase":"é"}\\r\\n\\r\\n' +
                     'id: 2\\revent: final_transcript\\rdata: {"a":\\rdata: 1}\\r\\rid: 3\\nevent: done\\ndata: {}\\n';
        const bytes = new TextEncoder().encode(text);
        const body = new ReadableStream({ start(c) { for (const b of bytes) c.enqueue(new Uint8Array([b])); c.close(); } });
        const out = [];
        for await (const m of sseMessages(body)) out.push(m);
        return out;
    }""")
    assert messages == [{"event": "status", "data": '{"phase":"é"}', "id": 1},
                        {"event": "final_transcript", "data": '{"a":\n1}', "id": 2}]
    assert not page.js_errors, page.js_errors


def test_api_key_from_settings_reaches_every_request(open_page, start_server):
    """With keys on, the page asks for one; a wrong key gets a plain 401 message, the right one works."""
    server = start_server(HARKEN_PIPELINE="none", HARKEN_API_KEYS="browser-key-1")
    wav, _ = speech_file()
    page = open_page(server.url)
    hint = page.locator('#messages .msg-info[data-key="auth"]')
    hint.wait_for(timeout=5_000)
    assert "needs an API key" in hint.inner_text()
    assert page.locator("#api-key").is_visible()
    page.fill("#api-key", "wrong-key")
    page.set_input_files("#file-input", str(wav))
    assert wait_state(page, ["failed"], 10) == "failed"
    assert "refused the API key" in page.locator("#messages .msg-error").inner_text()
    page.fill("#api-key", "browser-key-1")
    page.set_input_files("#file-input", str(wav))
    # `done` arrives only over the EventSource, which can carry the key only as `api_key`.
    assert wait_state(page, ["done"], 20) == "done", page.locator("#messages").inner_text()
    assert not page.locator("#messages .msg-error").count()
    assert [e for e in page.js_errors if "401" not in e] == []


class CuttableProxy:
    """A loopback TCP forwarder whose open connections the test can cut, as a flaky network would."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.requests = []  # the first bytes of each request the browser sent
        self._open = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._open += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source, sink, from_browser):
        try:
            while data := source.recv(65536):
                if from_browser:
                    self.requests.append(data[:2048].decode("latin-1"))
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self):
        """Reset every connection open right now; new ones go through."""
        with self._lock:
            doomed, self._open = self._open, []
        for sock in doomed:
            # shutdown, not just close: it wakes the forwarding thread blocked in recv on it.
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self):
        self.listener.close()
        self.cut()


def _stream_file_at_real_time(open_page, url, wav):
    """Open the page at `url`, stream `wav` paced as a microphone would, wait until events flow."""
    page = open_page(url)
    page.locator("details.settings summary").click()
    page.check("#realtime")
    page.set_input_files("#file-input", str(wav))
    page.wait_for_function("window.harkenTrace.filter(e => e.name === 'status').length >= 2",
                           timeout=15_000)
    return page


def _assert_each_event_once_and_no_error(page):
    ids = [e["id"] for e in page.evaluate("window.harkenTrace.filter(e => e.kind === 'event')")]
    assert ids == sorted(set(ids)), ids
    assert not page.locator("#messages .msg-error").count(), page.locator("#messages").inner_text()


def test_dropped_event_stream_reconnects_and_resumes(open_page, transport_server):
    """The network drops mid-session: the page says so, EventSource resumes with Last-Event-ID, nothing twice."""
    wav, spans = speech_file()
    proxy = CuttableProxy(transport_server.port)
    try:
        page = _stream_file_at_real_time(open_page, proxy.url, wav)
        proxy.cut()
        page.locator('#messages .msg-warn[data-key="stream"]').wait_for(timeout=5_000)
        assert "reconnecting" in page.locator('#messages [data-key="stream"]').inner_text()
        page.locator('#messages .msg-info[data-key="stream"]').wait_for(timeout=10_000)
        assert wait_state(page, ["done"], spans[-1].end_s + 20) == "done", page.locator("#messages").inner_text()
        resumed = [r for r in proxy.requests if r.startswith("GET /analyze/live/") and "/events" in r.split("\r\n")[0]]
        assert len(resumed) >= 2, resumed
        assert re.search(r"(?im)^last-event-id: *[1-9]", resumed[-1]), resumed[-1]
        _assert_each_event_once_and_no_error(page)
    finally:
        proxy.close()


def test_refused_reconnect_is_retried_with_last_event_id(open_page, transport_server):
    """A reconnect refused with 409 (another consumer holds the stream) is retried by hand and resumes."""
    wav, spans = speech_file()
    proxy = CuttableProxy(transport_server.port)
    try:
        page = _stream_file_at_real_time(open_page, proxy.url, wav)
        events_url = f"{transport_server.url}/analyze/live/{session_id(page)}/events"
        proxy.cut()
        deadline = time.monotonic() + 5
        while True:  # take the stream over as soon as the server has seen the page's connection die
            other = requests.get(events_url, stream=True, timeout=(5, 30))
            if other.status_code == 200 or time.monotonic() > deadline:
                break
            other.close()
            time.sleep(0.05)
        assert other.status_code == 200, other.text
        try:
            page.wait_for_function("document.querySelector('#messages [data-key=stream]')?.textContent"
                                   ".includes('refused; trying again')", timeout=10_000)
        finally:
            other.close()
        page.locator('#messages .msg-info[data-key="stream"]').wait_for(timeout=10_000)
        assert wait_state(page, ["done"], spans[-1].end_s + 20) == "done", page.locator("#messages").inner_text()
        reopened = [r for r in proxy.requests if "/events?" in r.split("\r\n")[0]]
        assert reopened and "last_event_id=" in reopened[-1].split("\r\n")[0], reopened
        _assert_each_event_once_and_no_error(page)
    finally:
        proxy.close()
