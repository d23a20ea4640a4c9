// One live session from the browser: an audio source (microphone or file), its chunk uploads and
// its event stream, moved through the page's state machine and feeding one conversation model.
import { describeApiError, openEventStream, request } from "./api.js";
import { UPLOAD_RETRY, sleep } from "./backoff.js";
import { ChunkUploader } from "./uploader.js";
import { MicrophoneRecorder, audioDuration, filePlan, micErrorText, openMicrophone, suffixOf } from "./capture.js";
import { Conversation } from "./conversation.js";
import { EventStream } from "./stream.js";
import { sseMessages } from "./sse.js";
import { clock } from "./dom.js";
import { trace } from "./trace.js";

// A cancel whose `error` event never comes is settled after this long.
const CANCEL_WAIT_MS = 5000;
// Keep at most this many file slices queued, so Stop and Cancel act at once.
const FILE_QUEUE = 2;

export class LiveSession {
  // `page` gives the machine, the messages, the header, `changed(parts)` and `flush()`.
  constructor(page, source, { key, goal }) {
    this.page = page;
    this.machine = page.machine;
    this.messages = page.messages;
    this.source = source;
    this.key = key;
    this.goal = goal;
    this.model = new Conversation(source);
    this.model.goal = goal || null;
    this.info = null;
    this.started = null;
    this.capture = null;
    this.stream = null;
    this.cancelTimer = null;
    this.analysis = null;
    this.fileSize = 0;
    this.uploader = uploaderFor(this);
  }

  // The page's machine speaks for this session only while it is the page's current one: a late
  // answer to a session the user already left (a microphone, a /start) must not move a newer one.
  get current() {
    return this.page.session === this;
  }

  is(...states) {
    return this.current && states.includes(this.machine.state);
  }

  get live() {
    return this.current && this.machine.live;
  }

  move(to) {
    return this.current && this.machine.go(to);
  }

  // ---------- sources ----------

  async recordMicrophone(type) {
    this.move("opening");
    let stream;
    try {
      stream = await openMicrophone();
    } catch (err) {
      // Denied or missing: back to idle (unless Cancel already settled it).
      if (this.move("idle")) this.messages.show("error", micErrorText(err), "mic");
      return;
    }
    if (!this.is("opening")) {
      // Cancelled while the permission prompt was open.
      stream.getTracks().forEach((t) => t.stop());
      return;
    }
    const capture = this.capture = new MicrophoneRecorder(stream, type, {
      onSlice: (blob) => this.uploader.push(blob),
      onEnded: () => {
        this.messages.show("warn", "The microphone stopped delivering audio; finishing the session with what was recorded.", "mic");
        this.stop();
      },
      onError: (message) => this.messages.show("error", "Recording failed: " + message, "mic"),
    });
    // Record at once and queue the slices, so no speech is lost while the session starts.
    try {
      await capture.start();
    } catch (err) {
      capture.release();
      this.messages.show("error", "Recording failed: " + (err.message || err), "mic");
      this.move("failed");
      return;
    }
    if (!this.move("recording")) {
      capture.release(); // cancelled while the audio graph was being built
      return;
    }
    this.page.showLevel(capture);
    await (this.started = this.begin({ suffix: type.suffix }, "start a session"));
  }

  async streamFile(file, realtime) {
    this.fileSize = file.size;
    this.move("uploading");
    const fields = { filename: file.name };
    const suffix = suffixOf(file.name);
    if (suffix) fields.suffix = suffix;
    await (this.started = this.begin(fields, `start a session for ${file.name}`));
    if (!this.info) return;
    const duration = realtime ? await audioDuration(file) : null;
    if (realtime && !duration) {
      this.messages.show("warn", "The browser cannot tell this file's duration; streaming it at full speed.", "pace");
    }
    const { chunkBytes, bytesPerSecond } = filePlan(file, duration);
    this.messages.show("info", `Streaming ${file.name} (${(file.size / 1048576).toFixed(1)} MB) through the live API` +
      (bytesPerSecond ? ` at real-time pace (${clock(duration)})…` : "…"), "state");
    const feeding = () => this.is("uploading");
    const began = performance.now();
    for (let offset = 0; offset < file.size && feeding(); offset += chunkBytes) {
      if (bytesPerSecond) {
        const due = began + (offset / bytesPerSecond) * 1000;
        if (due > performance.now()) await sleep(due - performance.now());
        if (!feeding()) break;
      }
      this.uploader.push(file.slice(offset, offset + chunkBytes));
      while (this.uploader.pending > FILE_QUEUE && feeding()) await this.uploader.drained();
    }
    if (feeding()) await this.stop();
  }

  // A recorded file at full speed, as one offline job: POST /analyze/stream answers the upload with
  // the live event catalog (more accurate than a live session: whole utterances, speakers clustered
  // over the whole call). On a server without models it goes through the live API instead.
  async analyzeFile(file) {
    this.fileSize = file.size;
    this.move("analysing");
    const form = new FormData();
    form.append("file", file, file.name);
    if (this.goal) form.append("goal", this.goal);
    form.append("metadata", JSON.stringify({ client: "harken-web", source: this.source }));
    const hangUp = this.analysis = new AbortController();
    this.messages.show("info", `Analysing ${file.name} (${(file.size / 1048576).toFixed(1)} MB) as a whole file…`, "state");
    let body;
    try {
      body = await openEventStream("/analyze/stream", { key: this.key, form, signal: hangUp.signal });
    } catch (err) {
      if (err.name === "AbortError" || !this.is("analysing")) return;
      if (err.code === "pipeline_unavailable" && err.retryAfterMs === null) {
        // No speech models on this server: the live API still takes the file (status and done only).
        this.analysis = null;
        return this.streamFile(file, false);
      }
      this.messages.show("error", describeApiError(err, `analyse ${file.name}`), "start");
      this.fail();
      return;
    }
    this.page.header.link("open");
    try {
      for await (const { event, data, id } of sseMessages(body)) {
        if (!this.is("analysing")) return;
        let parsed;
        try { parsed = JSON.parse(data); } catch (_) {
          this.messages.show("warn", `Unreadable ${event} event from the server.`, "parse");
          continue;
        }
        this.onEvent(event, parsed, id);
      }
    } catch (err) {
      if (err.name === "AbortError" || !this.is("analysing")) return;
    }
    if (this.is("analysing")) {
      this.messages.show("error", "The connection to the server broke before the analysis finished. Drop the file again.", "stream");
      this.fail();
    }
  }

  // ---------- the session on the server ----------

  // POSTs /start; on success opens the event stream and lets the queued chunks go.
  async begin(fields, doing) {
    const body = Object.assign({ metadata: { client: "harken-web", source: this.source } }, fields);
    if (this.goal) body.goal = this.goal;
    let info;
    try {
      info = await request("POST", "/analyze/live/start", { key: this.key, json: body });
    } catch (err) {
      if (this.live) {
        this.messages.show("error", describeApiError(err, doing), "start");
        this.fail();
      }
      return;
    }
    this.info = info;
    this.model.sessionId = info.session_id;
    this.model.conversationId = info.conversation_id || null;
    if (!this.live) {
      // Cancelled while the session was being started: cancel it on the server too.
      this.control("cancel", "cancelled in the browser").catch(() => {});
      return;
    }
    this.stream = new EventStream(info.events_endpoint, this.key, this.streamHooks()).open();
    this.uploader.begin(info.next_chunk_seq || 0);
  }

  control(action, reason) {
    const json = { action };
    if (reason) json.reason = reason;
    return request("POST", this.info.control_endpoint, { key: this.key, json });
  }

  // Stop: the last slices go up, then finalize; the last words, the summary and `done` follow.
  async stop() {
    if (!this.move("finishing")) return;
    if (this.capture) await this.capture.stop();
    await this.started;
    if (!this.is("finishing")) return;
    await this.uploader.drained();
    if (!this.is("finishing")) return;
    try {
      await this.control("finalize");
      this.messages.show("info", "Finishing: the last words and the summary are on their way…", "state");
    } catch (err) {
      if (err.code !== "session_closed" && this.is("finishing")) {
        this.messages.show("error", describeApiError(err, "finalize the session"), "control");
        this.fail();
      }
    }
  }

  async cancel() {
    const from = this.current ? this.machine.state : null;
    if (!this.move("cancelling")) return;
    this.release();
    if (from === "analysing") {
      // Hanging up (release() did) is the cancel: the server stops the analysis when the connection closes.
      this.messages.show("info", "Analysis cancelled.", "state");
      this.end("cancelled");
      return;
    }
    if (from === "opening" || !this.info) {
      // No session on the server yet; begin() cancels it there if it is still being made.
      this.move("cancelled");
      return;
    }
    try {
      await this.control("cancel", "cancelled in the browser");
    } catch (err) {
      if (err.code !== "session_closed") this.messages.show("error", describeApiError(err, "cancel the session"), "control");
      this.end("cancelled");
      return;
    }
    // The stream ends with an `error` event coded `cancelled`; don't wait on it forever.
    this.cancelTimer = setTimeout(() => {
      if (!this.is("cancelling")) return;
      this.messages.show("info", "Session cancelled; nothing more will arrive for it.", "state");
      this.end("cancelled");
    }, CANCEL_WAIT_MS);
  }

  // Closing the tab cancels a running session (a beacon is the one request a closing page can send).
  beacon() {
    if (!this.info || !this.live) return;
    const key = this.key ? "?api_key=" + encodeURIComponent(this.key) : "";
    navigator.sendBeacon(this.info.control_endpoint + key,
      new Blob([JSON.stringify({ action: "cancel", reason: "page closed" })], { type: "application/json" }));
  }

  // ---------- endings ----------

  // Frees the microphone, drops queued audio and hangs up a file analysis; a live event stream stays open.
  release() {
    if (this.capture) this.capture.release();
    this.uploader.abort();
    if (this.analysis) this.analysis.abort();
  }

  // The session is over for this page: everything is closed and the page shows the final state.
  end(state) {
    clearTimeout(this.cancelTimer);
    this.release();
    if (this.stream) this.stream.close();
    if (!this.current) return;
    if (this.analysis) this.page.header.link("closed");
    this.messages.clear("stream");
    this.model.transcript.dropPartials();
    this.page.changed(["transcript", "downloads"]);
    this.page.header.progress(null);
    this.page.flush();
    this.move(state);
  }

  fail() {
    this.end("failed");
  }

  // ---------- events ----------

  streamHooks() {
    const show = (kind, text) => this.messages.show(kind, text, "stream");
    return {
      onEvent: (name, data, id) => this.onEvent(name, data, id),
      onLink: (state) => { if (this.current) this.page.header.link(state); },
      onDropped: () => show("warn", "The event stream dropped; reconnecting by itself (no event will be lost)…"),
      onResumed: () => show("info", "Event stream reconnected; it resumed where it left off."),
      onRefused: (n, max) => show("warn", `The event stream was refused; trying again (${n} of ${max})…`),
      onLost: () => {
        show("error", "The server refused the event stream (the session may have ended or expired). Start a new session.");
        this.fail();
      },
      onUnreadable: (name) => this.messages.show("warn", `Unreadable ${name} event from the server.`, "parse"),
      quiet: () => this.is("cancelling"),
    };
  }

  onEvent(name, d, id) {
    trace("event", { name, id });
    this.page.changed(this.model.apply(name, d));
    if (name === "status") {
      if (this.live || d.phase === "completed") this.page.header.phase(d.phase);
      if (d.phase === "processing") this.page.header.progress(d.progress);
    } else if (name === "error") {
      if (d.code === "cancelled") {
        this.messages.show("info", "Session cancelled" + (d.message ? ": " + d.message : "."), "state");
        this.end("cancelled");
      } else if (d.fatal !== false) {
        this.messages.show("error", `The server stopped the session: ${d.message} (${d.code}).`, "server");
        this.end("failed");
      } else {
        this.messages.show("warn", `Server warning: ${d.message} (${d.code}).`, "server-warn");
      }
    } else if (name === "done") {
      this.messages.show("info", this.analysis ? "Analysis complete." : "Session complete.", "state");
      this.end("done");
    }
  }
}

// The session's chunk uploader, with what each upload outcome means for the user.
function uploaderFor(session) {
  const messages = session.messages;
  const send = (seq, blob) => request("POST", session.info.chunk_endpoint, { key: session.key, body: blob,
    headers: { "Content-Type": "application/octet-stream", "X-Chunk-Seq": String(seq) } });
  return new ChunkUploader(send, UPLOAD_RETRY, {
    onSent: (bytes) => { if (session.fileSize && session.current) session.page.header.progress(bytes / session.fileSize); },
    onRetry: (err, seq, waitMs) => messages.show("warn",
      `Upload trouble (${err.code}); retrying chunk ${seq} in ${(waitMs / 1000).toFixed(1)} s…`, "upload"),
    onRecovered: () => messages.clear("upload"),
    onSkipped: (err, seq) => messages.show("warn", describeApiError(err, `send chunk ${seq}`), "upload"),
    onFatal: (err, seq) => {
      if (err.code === "invalid_chunk") {
        // The container's header is in the first slice: if that is unreadable, nothing after it is.
        messages.show("error", `The server cannot read this audio: ${err.message}`, "upload");
        session.control("cancel", "unreadable audio").catch(() => {});
      } else {
        messages.show("error", describeApiError(err, `send chunk ${seq}`), "upload");
      }
      session.fail();
    },
  });
}
