// Harken's browser page: captures the microphone (or streams a file) through the live API
// and draws the SSE events as they arrive. Plain JS, no build step, no network beyond this origin.
"use strict";

(function () {
  // A short timeslice keeps the sentence-end -> final latency low; each slice is one HTTP POST.
  const TIMESLICE_MS = 250;
  const FILE_CHUNK_BYTES = 256 * 1024;
  const MAX_UPLOAD_ATTEMPTS = 6;
  // Order matters: Chromium and Firefox record WebM/Opus, Safari only MP4.
  const RECORDING_TYPES = [
    { mime: "audio/webm;codecs=opus", suffix: ".webm" },
    { mime: "audio/webm", suffix: ".webm" },
    { mime: "audio/mp4", suffix: ".mp4" },
    { mime: "audio/ogg;codecs=opus", suffix: ".ogg" },
  ];
  const EVENT_NAMES = ["status", "partial_transcript", "final_transcript", "emotion", "cognitive",
    "transition", "moment", "summary_update", "done"];
  const SPEAKER_COLOURS = ["#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2",
    "#65a30d", "#dc2626"];
  const SVG_NS = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);
  const ui = {
    record: $("record"), stop: $("stop"), cancel: $("cancel"), level: $("level"),
    fileInput: $("file-input"), dropZone: $("drop-zone"), apiKey: $("api-key"), goal: $("goal"),
    realtime: $("realtime"),
    messages: $("messages"), transcript: $("transcript"), emotion: $("emotion-timeline"),
    speakerLegend: $("speaker-legend"), trend: $("trend"), trendNote: $("trend-note"),
    moments: $("moments"), summary: $("summary"), summaryState: $("summary-state"),
    phase: $("phase"), clock: $("clock"), lag: $("lag"), link: $("link"),
  };

  // Timestamps (performance.now()) the browser tests read to measure latency.
  const debug = window.harkenDebug = { micOpenedAt: null, recorderStartedAt: null, finals: [],
    events: [], sessionId: null, mimeType: null, suffix: null };

  let session = null;

  class ApiError extends Error {
    constructor(status, code, message, extra) {
      super(message);
      this.status = status;
      this.code = code;
      this.extra = extra || {};
      // Network failures, 5xx and 429 are worth another try of the same request.
      this.retryable = status === 0 || status === 429 || status >= 500;
    }
  }

  // ---------- helpers ----------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }

  function clock(seconds) {
    const s = Math.max(0, Math.round(Number(seconds) || 0));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  function speakerColour(speaker) {
    if (!speaker) return "#6b7280";
    const m = /(\d+)$/.exec(speaker);
    const n = m ? Number(m[1]) : [...speaker].reduce((a, c) => a + c.charCodeAt(0), 0);
    return SPEAKER_COLOURS[n % SPEAKER_COLOURS.length];
  }

  function speakerName(speaker) {
    return speaker ? speaker.replace(/_/g, " ") : "…";
  }

  function speakerChip(speaker) {
    const chip = el("span", "speaker", speakerName(speaker));
    chip.style.setProperty("--spk", speakerColour(speaker));
    return chip;
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // ---------- messages ----------

  function showMessage(kind, text, key) {
    if (key) clearMessage(key);
    const box = el("div", "msg msg-" + kind);
    if (key) box.dataset.key = key;
    box.dataset.kind = kind;
    box.appendChild(el("span", "msg-text", text));
    const close = el("button", "msg-close", "×");
    close.type = "button";
    close.setAttribute("aria-label", "Dismiss");
    close.addEventListener("click", () => box.remove());
    box.appendChild(close);
    ui.messages.appendChild(box);
    return box;
  }

  function clearMessage(key) {
    for (const old of ui.messages.querySelectorAll(`[data-key="${key}"]`)) old.remove();
  }

  // `doing` is a verb phrase: "start a session", "send chunk 3".
  function describeApiError(err, doing) {
    if (err.status === 0) return `Could not ${doing}: the server cannot be reached (${err.message}).`;
    if (err.status === 401) return `Could not ${doing}: the server refused the API key. Enter a valid key under Settings.`;
    const retry = err.extra.retry_after ? ` Try again in ${err.extra.retry_after} s.` : "";
    const detail = `${err.message} (${err.code}, HTTP ${err.status}).${retry}`;
    if (err.status === 503 || err.status === 429) return `Could not ${doing}: the server is busy. ${detail}`;
    if (err.status >= 500) return `Could not ${doing}: server error. ${detail}`;
    return `Could not ${doing}: ${detail}`;
  }

  function micErrorText(err) {
    switch (err && err.name) {
      case "NotAllowedError":
      case "PermissionDeniedError":
      case "SecurityError":
        return "Microphone permission denied. Allow microphone access for this site " +
          "(the icon in the address bar), then press Record again, or drop an audio file instead.";
      case "NotFoundError":
      case "DevicesNotFoundError":
        return "No microphone was found. Plug one in and press Record again, or drop an audio file instead.";
      case "NotReadableError":
      case "TrackStartError":
        return "The microphone is in use by another program or cannot be opened.";
      default:
        return "The microphone could not be opened: " + (err && err.message ? err.message : err);
    }
  }

  // ---------- HTTP ----------

  async function api(method, url, { json, body, headers } = {}) {
    const h = Object.assign({}, headers || {});
    const key = session ? session.key : ui.apiKey.value.trim();
    if (key) h["X-API-Key"] = key;
    let payload = body;
    if (json !== undefined) {
      h["Content-Type"] = "application/json";
      payload = JSON.stringify(json);
    }
    let resp;
    try {
      resp = await fetch(url, { method, headers: h, body: payload, cache: "no-store" });
    } catch (err) {
      throw new ApiError(0, "network", err.message || "network error");
    }
    let data = null;
    try { data = await resp.json(); } catch (_) { /* not JSON: described below */ }
    if (!resp.ok) {
      const e = (data && data.error) || {};
      const extra = Object.assign({}, e, { retry_after: resp.headers.get("Retry-After") });
      throw new ApiError(resp.status, e.code || "http_" + resp.status, e.message || resp.statusText || "request failed", extra);
    }
    return data;
  }

  // ---------- session ----------

  function newSession(source) {
    return {
      source, id: null, key: ui.apiKey.value.trim(), es: null, lastEventId: 0,
      queue: [], nextSeq: 0, pumping: false, drainWaiters: [], uploadedBytes: 0, totalBytes: 0,
      closed: false, finished: false, dropped: false, recorder: null, stream: null, audioCtx: null,
      utterances: new Map(), emotionPoints: [], cognitivePoints: [], transitions: [], speakers: [],
    };
  }

  async function startSession(s, fields) {
    const body = Object.assign({ metadata: { client: "harken-web", source: s.source } }, fields);
    const goal = ui.goal.value.trim();
    if (goal) body.goal = goal;
    const info = await api("POST", "/analyze/live/start", { json: body });
    s.id = info.session_id;
    s.chunkEndpoint = info.chunk_endpoint;
    s.eventsEndpoint = info.events_endpoint;
    s.controlEndpoint = info.control_endpoint;
    s.nextSeq = info.next_chunk_seq || 0;
    debug.sessionId = s.id;
    if (s.closed) {
      // Cancelled while the session was being started: cancel it on the server too.
      control(s, "cancel", "cancelled in the browser").catch(() => {});
      return;
    }
    openEvents(s);
    pump(s);
  }

  function enqueue(s, blob) {
    if (s.closed || !blob || blob.size === 0) return;
    s.queue.push(blob);
    s.totalBytes += blob.size;
    if (s.id) pump(s);
  }

  function drained(s) {
    if (!s.queue.length && !s.pumping) return Promise.resolve();
    return new Promise((resolve) => s.drainWaiters.push(resolve));
  }

  // Posts queued chunks one at a time, in order, retrying the same chunk_seq on transient failures.
  async function pump(s) {
    if (s.pumping || !s.id) return;
    s.pumping = true;
    let attempts = 0;
    while (s.queue.length && !s.closed) {
      const blob = s.queue[0];
      try {
        const r = await api("POST", s.chunkEndpoint, {
          body: blob, headers: { "Content-Type": "application/octet-stream", "X-Chunk-Seq": String(s.nextSeq) },
        });
        s.queue.shift();
        s.uploadedBytes += blob.size;
        s.nextSeq = typeof r.next_chunk_seq === "number" ? r.next_chunk_seq : s.nextSeq + 1;
        attempts = 0;
        clearMessage("upload");
        updateUploadProgress(s);
      } catch (err) {
        if (s.closed) break;
        const expected = err.extra.expected_chunk_seq;
        if (err.code === "chunk_out_of_order" && typeof expected === "number" && expected > s.nextSeq) {
          // A retry whose first try was accepted but whose answer was lost: skip ahead.
          while (expected > s.nextSeq && s.queue.length) { s.uploadedBytes += s.queue.shift().size; s.nextSeq += 1; }
          continue;
        }
        if (err.retryable && attempts < MAX_UPLOAD_ATTEMPTS) {
          attempts += 1;
          const wait = Number(err.extra.retry_after) * 1000 || Math.min(8000, 250 * 2 ** attempts);
          showMessage("warn", `Upload trouble (${err.code}); retrying chunk ${s.nextSeq} in ${(wait / 1000).toFixed(1)} s…`, "upload");
          await sleep(wait);
          continue;
        }
        if (err.code === "invalid_chunk" && s.nextSeq === 0) {
          // The container's header is in the first slice: if that is unreadable, nothing after it is.
          showMessage("error", `The server cannot read this audio: ${err.message}`, "upload");
          control(s, "cancel", "unreadable audio").catch(() => {});
          abortLocally(s, "failed");
          break;
        }
        if (err.code === "invalid_chunk") {
          // The server keeps the session usable; this slice is lost but later ones may decode.
          s.queue.shift();
          showMessage("warn", describeApiError(err, `send chunk ${s.nextSeq}`), "upload");
          continue;
        }
        showMessage("error", describeApiError(err, `send chunk ${s.nextSeq}`), "upload");
        abortLocally(s, "failed");
        break;
      }
    }
    s.pumping = false;
    const waiters = s.drainWaiters.splice(0);
    waiters.forEach((resolve) => resolve());
  }

  async function control(s, action, reason) {
    const body = { action };
    if (reason) body.reason = reason;
    return api("POST", s.controlEndpoint, { json: body });
  }

  // Stops capture and uploads; the session on the server is left to whoever called this.
  function releaseCapture(s) {
    if (s.recorder && s.recorder.state !== "inactive") {
      try { s.recorder.stop(); } catch (_) { /* already stopping */ }
    }
    if (s.stream) s.stream.getTracks().forEach((t) => t.stop());
    if (s.audioCtx && s.audioCtx.state !== "closed") s.audioCtx.close();
    s.stream = null;
    s.audioCtx = null;
    s.fileDone = true;
  }

  function abortLocally(s, state) {
    s.closed = true;
    s.queue.length = 0;
    releaseCapture(s);
    closeEvents(s);
    setState(state);
  }

  // ---------- microphone ----------

  // `?record_type=audio/mp4` puts one type first (e.g. to try Safari's MP4 path in Chromium).
  function pickRecordingType() {
    if (typeof MediaRecorder === "undefined") return null;
    const wanted = new URLSearchParams(location.search).get("record_type");
    const types = RECORDING_TYPES.slice().sort((a, b) => (b.mime === wanted) - (a.mime === wanted));
    return types.find((t) => MediaRecorder.isTypeSupported(t.mime)) || null;
  }

  async function startMicrophone() {
    if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      showMessage("error", "The microphone needs a secure page: open Harken over HTTPS or on localhost.", "mic");
      return;
    }
    const type = pickRecordingType();
    if (!type) {
      showMessage("error", "This browser cannot record audio (no MediaRecorder); drop an audio file instead.", "mic");
      return;
    }
    resetView();
    const s = session = newSession("microphone");
    setState("opening");
    let stream;
    try {
      // Gain control clips the signal; with the processing off the track is stereo, so it is
      // downmixed to mono in an AudioContext before recording.
      stream = await navigator.mediaDevices.getUserMedia({ audio: {
        echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 } });
    } catch (err) {
      showMessage("error", micErrorText(err), "mic");
      session = null;
      setState("idle");
      return;
    }
    debug.micOpenedAt = performance.now();
    // An unplugged microphone or a revoked permission ends the track: keep what was said.
    stream.getAudioTracks().forEach((track) => track.addEventListener("ended", () => {
      if (s.stream && !s.stopping && !s.closed) {
        showMessage("warn", "The microphone stopped delivering audio; finishing the session with what was recorded.", "mic");
        finalize(s);
      }
    }));
    debug.mimeType = type.mime;
    debug.suffix = type.suffix;
    s.stream = stream;
    const ctx = s.audioCtx = new AudioContext();
    if (ctx.state === "suspended") await ctx.resume();
    const source = ctx.createMediaStreamSource(stream);
    const mono = ctx.createMediaStreamDestination();
    mono.channelCount = 1;
    mono.channelCountMode = "explicit";
    mono.channelInterpretation = "speakers";
    source.connect(mono);
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 512;
    source.connect(analyser);
    drawLevel(s, analyser);

    // Record at once and queue the slices, so no speech is lost while the session starts.
    const recorder = s.recorder = new MediaRecorder(mono.stream, { mimeType: type.mime });
    recorder.addEventListener("dataavailable", (e) => enqueue(s, e.data));
    recorder.addEventListener("start", () => { debug.recorderStartedAt = performance.now(); });
    recorder.addEventListener("error", (e) => {
      showMessage("error", "Recording failed: " + (e.error ? e.error.message : "unknown error"), "mic");
    });
    recorder.start(TIMESLICE_MS);
    setState("recording");
    try {
      await (s.ready = startSession(s, { suffix: type.suffix }));
    } catch (err) {
      showMessage("error", describeApiError(err, "start a session"), "start");
      abortLocally(s, "failed");
    }
  }

  function drawLevel(s, analyser) {
    const canvas = ui.level;
    const g = canvas.getContext("2d");
    const samples = new Float32Array(analyser.fftSize);
    let shown = 0;
    const frame = () => {
      if (!s.stream) { g.clearRect(0, 0, canvas.width, canvas.height); return; }
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const v of samples) sum += v * v;
      const db = 20 * Math.log10(Math.sqrt(sum / samples.length) + 1e-9);
      // Fall back slowly so the meter reads as a level, not a flicker.
      shown = Math.max(Math.max(0, Math.min(1, (db + 60) / 60)), shown * 0.9);
      const fill = shown;
      g.clearRect(0, 0, canvas.width, canvas.height);
      g.fillStyle = "#e5e7eb";
      g.fillRect(0, 0, canvas.width, canvas.height);
      g.fillStyle = fill > 0.9 ? "#dc2626" : "#10b981";
      g.fillRect(0, 0, canvas.width * fill, canvas.height);
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }

  // ---------- file ----------

  function suffixOf(name) {
    const m = /\.[A-Za-z0-9]+$/.exec(name || "");
    return m ? m[0].toLowerCase() : "";
  }

  async function startFile(file) {
    if (session && !session.closed && !session.finished) {
      showMessage("warn", "A session is still running: stop or cancel it before streaming a file.", "file");
      return;
    }
    resetView();
    const s = session = newSession("file");
    s.fileName = file.name;
    s.fileSize = file.size;
    setState("uploading");
    const fields = { filename: file.name };
    const suffix = suffixOf(file.name);
    if (suffix) fields.suffix = suffix;
    try {
      await (s.ready = startSession(s, fields));
    } catch (err) {
      showMessage("error", describeApiError(err, `start a session for ${file.name}`), "start");
      abortLocally(s, "failed");
      return;
    }
    // At real-time pace the file behaves like a microphone: half a second of audio per chunk.
    const duration = ui.realtime.checked ? await audioDuration(file) : null;
    const bytesPerSecond = duration ? file.size / duration : null;
    if (ui.realtime.checked && !duration) {
      showMessage("warn", "The browser cannot tell this file's duration; streaming it at full speed.", "pace");
    }
    const chunkBytes = bytesPerSecond ? Math.max(4096, Math.round(bytesPerSecond / 2)) : FILE_CHUNK_BYTES;
    showMessage("info", `Streaming ${file.name} (${(file.size / 1048576).toFixed(1)} MB) through the live API` +
      (bytesPerSecond ? ` at real-time pace (${clock(duration)})…` : "…"), "state");
    const began = performance.now();
    for (let offset = 0; offset < file.size && !s.closed && !s.fileDone; offset += chunkBytes) {
      if (bytesPerSecond) {
        const due = began + (offset / bytesPerSecond) * 1000;
        if (due > performance.now()) await sleep(due - performance.now());
        if (s.closed || s.fileDone) break;
      }
      enqueue(s, file.slice(offset, offset + chunkBytes));
      // Keep a couple of slices in flight at most, so Stop and Cancel act at once.
      while (s.queue.length > 2 && !s.closed) await drained(s);
    }
    await drained(s);
    if (!s.closed && !s.stopping) await finalize(s);
  }

  function audioDuration(file) {
    return new Promise((resolve) => {
      const probe = new Audio();
      const url = URL.createObjectURL(file);
      const done = (value) => { URL.revokeObjectURL(url); resolve(value); };
      probe.preload = "metadata";
      probe.addEventListener("loadedmetadata", () => done(Number.isFinite(probe.duration) && probe.duration > 0 ? probe.duration : null));
      probe.addEventListener("error", () => done(null));
      probe.src = url;
    });
  }

  function updateUploadProgress(s) {
    if (s.source === "file" && s.fileSize) {
      setProgress(s.uploadedBytes / s.fileSize);
    }
  }

  // ---------- stop / cancel ----------

  async function finalize(s) {
    if (s.stopping || s.closed) return;
    s.stopping = true;
    setState("finishing");
    if (s.recorder && s.recorder.state !== "inactive") {
      // The last slice arrives in `dataavailable` before `stop`.
      await new Promise((resolve) => {
        s.recorder.addEventListener("stop", resolve, { once: true });
        s.recorder.stop();
      });
    }
    releaseCapture(s);
    // Stop pressed while the session was still being started: finalize once it exists.
    if (!s.id && s.ready) await s.ready.catch(() => {});
    if (!s.id || s.closed) return;
    await drained(s);
    if (s.closed) return;
    try {
      await control(s, "finalize");
      showMessage("info", "Finishing: the last words and the summary are on their way…", "state");
    } catch (err) {
      if (err.code !== "session_closed") {
        showMessage("error", describeApiError(err, "finalize the session"), "control");
        abortLocally(s, "failed");
      }
    }
  }

  async function cancel(s) {
    if (s.closed) return;
    s.closed = true;
    s.queue.length = 0;
    releaseCapture(s);
    setState("cancelling");
    if (!s.id) { setState("cancelled"); return; }
    try {
      await control(s, "cancel", "cancelled in the browser");
    } catch (err) {
      if (err.code !== "session_closed") showMessage("error", describeApiError(err, "cancel the session"), "control");
      closeEvents(s);
      setState("cancelled");
      return;
    }
    // The stream ends with an `error` event coded `cancelled`; don't wait on it forever.
    setTimeout(() => {
      if (!s.finished) {
        closeEvents(s);
        showMessage("info", "Session cancelled; nothing more will arrive for it.", "state");
        setState("cancelled");
      }
    }, 5000);
  }

  // ---------- events ----------

  // How often a stream the browser gave up on (a 4xx/5xx answer to its reconnect, e.g. 409
  // while the server has not yet noticed the old connection died) is opened again by hand.
  const MAX_REOPENS = 3;
  const REOPEN_DELAY_MS = 2000;

  function openEvents(s) {
    const params = new URLSearchParams();
    if (s.key) params.set("api_key", s.key);
    // A new EventSource sends no Last-Event-ID header; the query parameter carries it instead.
    if (s.lastEventId) params.set("last_event_id", String(s.lastEventId));
    const query = params.toString();
    const es = s.es = new EventSource(s.eventsEndpoint + (query ? "?" + query : ""));
    setLink(s.dropped ? "reconnecting" : "connecting");
    es.addEventListener("open", () => {
      s.reopens = 0;
      setLink("open");
      if (s.dropped) {
        s.dropped = false;
        showMessage("info", "Event stream reconnected; it resumed where it left off.", "stream");
      }
    });
    for (const name of EVENT_NAMES) es.addEventListener(name, (e) => onEvent(s, name, e));
    // The server's `error` event and the browser's connection error share one name.
    es.addEventListener("error", (e) => {
      if (typeof e.data === "string") { onEvent(s, "error", e); return; }
      if (s.finished) return;
      if (s.closed) {
        // Cancelled: its `error` event may not come; the cancel fallback settles the page.
        if (es.readyState === EventSource.CLOSED) closeEvents(s);
        return;
      }
      if (es.readyState === EventSource.CONNECTING) {
        s.dropped = true;
        setLink("reconnecting");
        showMessage("warn", "The event stream dropped; reconnecting by itself (no event will be lost)…", "stream");
      } else if ((s.reopens || 0) < MAX_REOPENS) {
        s.reopens = (s.reopens || 0) + 1;
        s.dropped = true;
        setLink("reconnecting");
        showMessage("warn", `The event stream was refused; trying again (${s.reopens} of ${MAX_REOPENS})…`, "stream");
        setTimeout(() => { if (s.es === es && !s.finished) openEvents(s); }, REOPEN_DELAY_MS);
      } else {
        setLink("closed");
        showMessage("error", "The server refused the event stream (the session may have ended or expired). " +
          "Start a new session.", "stream");
        abortLocally(s, "failed");
      }
    });
  }

  function closeEvents(s) {
    if (s.es) s.es.close();
    s.es = null;
    if (session === s) setLink("closed");
  }

  function onEvent(s, name, e) {
    if (s !== session || s.finished) return;
    const id = e.lastEventId ? Number(e.lastEventId) : null;
    if (id !== null && id <= s.lastEventId) return; // replayed after a reconnect: none twice
    if (id !== null) s.lastEventId = id;
    let data;
    try { data = JSON.parse(e.data); } catch (_) {
      showMessage("warn", `Unreadable ${name} event from the server.`, "parse");
      return;
    }
    debug.events.push({ name, id, at: performance.now() });
    const handler = HANDLERS[name];
    if (handler) handler(s, data);
  }

  const HANDLERS = {
    status(s, d) {
      ui.clock.textContent = clock(d.audio_seconds);
      ui.lag.textContent = d.lag_seconds > 0.5 ? `analysis ${d.lag_seconds.toFixed(1)} s behind` : "";
      if (d.phase === "processing") setProgress(d.progress);
      if (!s.closed || d.phase === "completed") setPhase(d.phase);
    },

    partial_transcript(s, d) {
      let seg = findSegment(d.utterance_id);
      if (seg && seg.classList.contains("final")) return;
      if (!seg) seg = newSegment(turnFor(d.speaker, d.t_start), d.utterance_id, d.t_start);
      seg.classList.add("partial");
      seg.textContent = d.text;
      updateTurn(seg.closest(".turn"));
      followTranscript();
    },

    final_transcript(s, d) {
      let seg = findSegment(d.utterance_id);
      const turn = turnFor(d.speaker, d.t_start, seg);
      if (!seg) seg = newSegment(turn, d.utterance_id, d.t_start);
      else if (seg.closest(".turn") !== turn) {
        const old = seg.closest(".turn");
        turn.querySelector(".text").appendChild(seg);
        if (!old.querySelector(".seg")) old.remove();
        else updateTurn(old);
      }
      seg.classList.remove("partial");
      seg.classList.add("final");
      seg.dataset.speaker = d.speaker || "";
      seg.dataset.tEnd = d.t_end;
      seg.dataset.shownAt = performance.now().toFixed(1);
      seg.textContent = d.text;
      if (typeof d.confidence === "number" && d.confidence < 0.5) seg.classList.add("low-confidence");
      turn.dataset.speaker = d.speaker || "";
      s.utterances.set(d.utterance_id, { t_start: d.t_start, t_end: d.t_end, speaker: d.speaker });
      // Partials that started earlier and were never finalised under their own id are stale.
      for (const other of ui.transcript.querySelectorAll(".seg.partial")) {
        if (other !== seg && Number(other.dataset.tStart) <= d.t_start) removeSegment(other);
      }
      updateTurn(turn);
      addSpeaker(s, d.speaker);
      debug.finals.push({ utterance_id: d.utterance_id, speaker: d.speaker, text: d.text, t_start: d.t_start,
        t_end: d.t_end, shownAt: performance.now() });
      followTranscript();
    },

    emotion(s, d) {
      const seg = findSegment(d.utterance_id);
      const scores = d.scores || {};
      if (seg) {
        seg.dataset.emotion = d.label;
        seg.dataset.valence = valenceClass(scores.valence);
        const top = Object.entries(d.emotion || {}).sort((a, b) => b[1] - a[1]).slice(0, 3)
          .map(([k, v]) => `${k} ${Math.round(v * 100)}%`).join(", ");
        seg.title = `${d.label}: ${top}\nvalence ${fmt(scores.valence)}, arousal ${fmt(scores.arousal)}, ` +
          `dominance ${fmt(scores.dominance)}; confidence ${Math.round((d.confidence || 0) * 100)}%`;
        updateTurn(seg.closest(".turn"));
      }
      const u = s.utterances.get(d.utterance_id);
      const t = u ? (u.t_start + u.t_end) / 2 : lastTime(s);
      s.emotionPoints.push({ t, speaker: d.speaker, valence: scores.valence, arousal: scores.arousal, label: d.label });
      addSpeaker(s, d.speaker);
      drawEmotion(s);
    },

    cognitive(s, d) {
      const u = s.utterances.get(d.utterance_id);
      const t = u ? (u.t_start + u.t_end) / 2 : lastTime(s);
      s.cognitivePoints.push({ t, speaker: d.speaker, engagement: d.engagement, focus: d.focus, load: d.cognitive_load });
      drawTrend(s);
      if (d.rationale) ui.trendNote.textContent = `${speakerName(d.speaker)}: ${d.rationale}`;
    },

    transition(s, d) {
      s.transitions.push({ t: d.at_ms / 1000, speaker: d.speaker });
      const from = d.from_state || {};
      const to = d.to_state || {};
      const li = el("li", "moment transition");
      li.appendChild(el("span", "cat cat-transition", "shift"));
      li.appendChild(el("span", "time", clock(d.at_ms / 1000)));
      li.appendChild(speakerChip(d.speaker));
      const drivers = (d.drivers || []).map(describeDriver).join(", ");
      li.appendChild(el("span", "evidence", `${from.label || "?"} → ${to.label || "?"}${drivers ? " (" + drivers + ")" : ""}`));
      addMoment(li);
      drawEmotion(s);
    },

    moment(s, d) {
      const li = el("li", "moment");
      li.dataset.category = d.category;
      const cat = el("span", "cat", d.category.replace(/_/g, " "));
      cat.dataset.category = d.category;
      li.appendChild(cat);
      li.appendChild(el("span", "time", clock(d.start_ms / 1000)));
      li.appendChild(speakerChip(d.speaker));
      li.appendChild(el("q", "evidence", d.evidence || ""));
      li.title = `confidence ${Math.round((d.confidence || 0) * 100)}%`;
      addMoment(li);
    },

    summary_update(s, d) {
      renderSummary(d);
    },

    error(s, d) {
      if (d.code === "cancelled") {
        showMessage("info", "Session cancelled" + (d.message ? ": " + d.message : "."), "state");
        finish(s, "cancelled");
      } else if (d.fatal !== false) {
        showMessage("error", `The server stopped the session: ${d.message} (${d.code}).`, "server");
        finish(s, "failed");
      } else {
        showMessage("warn", `Server warning: ${d.message} (${d.code}).`, "server-warn");
      }
    },

    done(s) {
      showMessage("info", "Session complete.", "state");
      setPhase("completed");
      finish(s, "done");
    },
  };

  function finish(s, state) {
    s.finished = true;
    s.closed = true;
    closeEvents(s);
    releaseCapture(s);
    clearMessage("stream");
    for (const p of ui.transcript.querySelectorAll(".seg.partial")) removeSegment(p);
    setProgress(null);
    setState(state);
  }

  // A transition driver is a name, or a measured cue that moved from one value to another.
  function describeDriver(x) {
    if (typeof x === "string") return x.replace(/_/g, " ");
    if (x && x.cue !== undefined) {
      const arrow = typeof x.from === "number" && typeof x.to === "number" ? ` ${fmt(x.from)}→${fmt(x.to)}` : "";
      return String(x.cue).replace(/_/g, " ") + arrow;
    }
    return plain(x);
  }

  function fmt(v) {
    return typeof v === "number" ? v.toFixed(2) : "–";
  }

  function lastTime(s) {
    let t = 0;
    for (const u of s.utterances.values()) t = Math.max(t, u.t_end || 0);
    return t;
  }

  // ---------- transcript ----------

  // Consecutive utterances of one speaker with short gaps read as one turn (the pipeline commits
  // stable prefixes early, so one sentence may arrive as several finals).
  const TURN_GAP_S = 1.0;

  // Keep the newest line in view, unless the reader has scrolled up to read earlier ones.
  let followingTranscript = true;
  ui.transcript.addEventListener("scroll", () => {
    const list = ui.transcript;
    followingTranscript = list.scrollHeight - list.scrollTop - list.clientHeight < 48;
  });

  function followTranscript() {
    if (followingTranscript) ui.transcript.scrollTop = ui.transcript.scrollHeight;
  }

  function findSegment(uttId) {
    return ui.transcript.querySelector(`.seg[data-utt="${CSS.escape(uttId)}"]`);
  }

  function turnFor(speaker, tStart, seg) {
    const current = seg && seg.closest(".turn");
    if (current && (!current.dataset.speaker || !speaker || current.dataset.speaker === speaker)) return current;
    const turns = ui.transcript.querySelectorAll(".turn");
    const last = turns[turns.length - 1];
    if (last && last !== current) {
      const sameSpeaker = !speaker || !last.dataset.speaker || last.dataset.speaker === speaker;
      const gap = tStart - Number(last.dataset.tEnd || last.dataset.tStart);
      if (sameSpeaker && gap < TURN_GAP_S) return last;
    }
    const hint = ui.transcript.querySelector(".empty-hint");
    if (hint) hint.remove();
    const turn = el("li", "turn");
    turn.dataset.speaker = speaker || "";
    turn.dataset.tStart = tStart;
    const meta = el("div", "turn-meta");
    meta.appendChild(speakerChip(speaker));
    meta.appendChild(el("span", "time"));
    meta.appendChild(el("span", "emotions"));
    turn.appendChild(meta);
    turn.appendChild(el("p", "text"));
    ui.transcript.appendChild(turn);
    return turn;
  }

  function newSegment(turn, uttId, tStart) {
    const seg = el("span", "seg");
    seg.dataset.utt = uttId;
    seg.dataset.tStart = tStart;
    turn.querySelector(".text").appendChild(seg);
    return seg;
  }

  function removeSegment(seg) {
    const turn = seg.closest(".turn");
    seg.remove();
    if (turn && !turn.querySelector(".seg")) turn.remove();
    else if (turn) updateTurn(turn);
  }

  // Only a clear lean is marked on the words; the timeline shows every value.
  function valenceClass(v) {
    return v > 0.35 ? "pos" : v < -0.35 ? "neg" : "neu";
  }

  // Refresh a turn's header from its segments: speaker, time span, emotion labels in order.
  function updateTurn(turn) {
    if (!turn) return;
    const segs = [...turn.querySelectorAll(".seg")];
    const finals = segs.filter((x) => x.classList.contains("final"));
    const speaker = turn.dataset.speaker || null;
    const chip = turn.querySelector(".speaker");
    chip.textContent = speakerName(speaker);
    chip.style.setProperty("--spk", speakerColour(speaker));
    turn.style.setProperty("--spk", speakerColour(speaker));
    turn.classList.toggle("final", finals.length > 0);
    turn.classList.toggle("live", segs.some((x) => x.classList.contains("partial")));
    const tStart = Math.min(...segs.map((x) => Number(x.dataset.tStart)));
    const ends = finals.map((x) => Number(x.dataset.tEnd));
    turn.dataset.tStart = tStart;
    if (ends.length) turn.dataset.tEnd = Math.max(...ends);
    turn.querySelector(".time").textContent = ends.length ? `${clock(tStart)}–${clock(Math.max(...ends))}` : clock(tStart);
    const labels = turn.querySelector(".emotions");
    labels.replaceChildren();
    let previous = null;
    for (const seg of finals) {
      if (!seg.dataset.emotion) continue;
      if (previous && previous.textContent === seg.dataset.emotion) {
        previous.title += "\n\n" + seg.title;
        continue;
      }
      previous = el("span", "emotion-label", seg.dataset.emotion);
      previous.dataset.label = seg.dataset.emotion;
      previous.title = seg.title;
      labels.appendChild(previous);
    }
  }

  function addMoment(li) {
    const hint = ui.moments.querySelector(".empty-hint");
    if (hint) hint.remove();
    ui.moments.appendChild(li);
  }

  function addSpeaker(s, speaker) {
    if (!speaker || s.speakers.includes(speaker)) return;
    s.speakers.push(speaker);
    ui.speakerLegend.replaceChildren(...s.speakers.map(speakerChip));
  }

  // ---------- charts (inline SVG) ----------

  // The drawing is as wide as its box, so text stays at its CSS size on a phone and a wall screen.
  const CHART = { w: 600, h: 200, left: 34, right: 10, top: 10, bottom: 24 };

  function chartFrame(container, yMin, yMax, xMax, yTicks, label) {
    CHART.w = Math.max(260, Math.round(container.clientWidth) || 600);
    const root = svg("svg", { viewBox: `0 0 ${CHART.w} ${CHART.h}`, role: "img", "aria-label": label,
      preserveAspectRatio: "xMidYMid meet" });
    const x = (t) => CHART.left + (t / xMax) * (CHART.w - CHART.left - CHART.right);
    const y = (v) => CHART.top + (1 - (v - yMin) / (yMax - yMin)) * (CHART.h - CHART.top - CHART.bottom);
    for (const v of yTicks) {
      root.appendChild(svg("line", { x1: CHART.left, x2: CHART.w - CHART.right, y1: y(v), y2: y(v), class: v === 0 ? "axis" : "gridline" }));
      const label = svg("text", { x: CHART.left - 6, y: y(v) + 4, class: "tick", "text-anchor": "end" });
      label.textContent = String(v);
      root.appendChild(label);
    }
    const step = niceStep(xMax);
    for (let t = 0; t <= xMax + 1e-6; t += step) {
      const label = svg("text", { x: x(t), y: CHART.h - 6, class: "tick", "text-anchor": "middle" });
      label.textContent = clock(t);
      root.appendChild(label);
    }
    container.replaceChildren(root);
    return { root, x, y };
  }

  function niceStep(xMax) {
    const ticks = CHART.w < 450 ? 4 : 6;
    for (const s of [5, 10, 15, 30, 60, 120, 300, 600]) if (xMax / s <= ticks) return s;
    return 1200;
  }

  function polyline(root, pts, colour, dash, className) {
    if (!pts.length) return;
    root.appendChild(svg("polyline", { points: pts.map((p) => `${p[0].toFixed(1)},${p[1].toFixed(1)}`).join(" "),
      stroke: colour, fill: "none", "stroke-width": 2.2, "stroke-dasharray": dash || "none", class: className || "" }));
  }

  function drawEmotion(s) {
    const pts = s.emotionPoints.filter((p) => typeof p.valence === "number");
    const xMax = Math.max(10, lastTime(s), ...pts.map((p) => p.t));
    const speakerNames = [...new Set(pts.map((p) => speakerName(p.speaker)))].join(", ");
    const { root, x, y } = chartFrame(ui.emotion, -1, 1, xMax, [-1, -0.5, 0, 0.5, 1],
      `Valence and arousal from -1 to 1 over ${clock(xMax)} for ${speakerNames || "no speaker yet"}`);
    for (const tr of s.transitions) {
      root.appendChild(svg("line", { x1: x(tr.t), x2: x(tr.t), y1: y(1), y2: y(-1), stroke: speakerColour(tr.speaker), class: "marker" }));
    }
    const speakers = [...new Set(pts.map((p) => p.speaker))];
    for (const spk of speakers) {
      const mine = pts.filter((p) => p.speaker === spk).sort((a, b) => a.t - b.t);
      const colour = speakerColour(spk);
      polyline(root, mine.map((p) => [x(p.t), y(p.valence)]), colour, null, "valence");
      polyline(root, mine.filter((p) => typeof p.arousal === "number").map((p) => [x(p.t), y(p.arousal)]), colour, "6 4", "arousal");
      for (const p of mine) {
        if (typeof p.arousal === "number") {
          root.appendChild(svg("circle", { cx: x(p.t), cy: y(p.arousal), r: 3.5, fill: "#fff", stroke: colour,
            "stroke-width": 2, class: "arousal-point" }));
        }
        const dot = svg("circle", { cx: x(p.t), cy: y(p.valence), r: 4, fill: colour, class: "point" });
        const tip = svg("title");
        tip.textContent = `${speakerName(spk)} ${clock(p.t)}: ${p.label} (valence ${fmt(p.valence)}, arousal ${fmt(p.arousal)})`;
        dot.appendChild(tip);
        root.appendChild(dot);
      }
    }
  }

  function drawTrend(s) {
    const pts = s.cognitivePoints.slice().sort((a, b) => a.t - b.t);
    const xMax = Math.max(10, lastTime(s), ...pts.map((p) => p.t));
    const { root, x, y } = chartFrame(ui.trend, 0, 1, xMax, [0, 0.5, 1],
      `Engagement, focus and cognitive load from 0 to 1 over ${clock(xMax)}`);
    const series = [["engagement", "#0d9488", null], ["focus", "#6366f1", "2 4"], ["load", "#ea580c", "6 4"]];
    for (const [key, colour, dash] of series) {
      polyline(root, pts.filter((p) => typeof p[key] === "number").map((p) => [x(p.t), y(p[key])]), colour, dash, key);
    }
    for (const p of pts) {
      if (typeof p.engagement !== "number") continue;
      root.appendChild(svg("circle", { cx: x(p.t), cy: y(p.engagement), r: 3.5, fill: speakerColour(p.speaker), class: "point" }));
    }
    const legend = svg("text", { x: CHART.w - CHART.right, y: CHART.top + 10, class: "tick", "text-anchor": "end" });
    legend.textContent = "— engagement  ··· focus  - - load";
    root.appendChild(legend);
  }

  // ---------- summary ----------

  function renderSummary(d) {
    const box = ui.summary;
    box.replaceChildren();
    ui.summaryState.textContent = d.is_final === false ? "(interim)" : "";
    box.dataset.final = d.is_final === false ? "false" : "true";
    if (d.overview) box.appendChild(el("p", "overview", d.overview));
    const facts = el("p", "facts muted");
    const bits = [];
    if (d.duration_s) bits.push(`${clock(d.duration_s)} of audio`);
    if (d.goal) bits.push(`goal: ${d.goal}`);
    if (d.conversation_quality && typeof d.conversation_quality !== "object") bits.push(`quality: ${d.conversation_quality}`);
    facts.textContent = bits.join(" · ");
    if (bits.length) box.appendChild(facts);
    const cols = el("div", "summary-cols");
    listSection(cols, "Key insights", d.key_insights);
    listSection(cols, "Recommendations", d.recommendations);
    listSection(cols, "Went well", d.what_went_well);
    listSection(cols, "Went wrong", d.what_went_wrong);
    listSection(cols, "Patterns", d.notable_patterns);
    if (d.key_phrases && d.key_phrases.length) {
      listSection(cols, "Key phrases", [d.key_phrases.map((p) => (typeof p === "string" ? p : p.phrase || JSON.stringify(p))).join(", ")]);
    }
    if (d.conversation_quality && typeof d.conversation_quality === "object") {
      listSection(cols, "Quality", Object.entries(d.conversation_quality).map(([k, v]) => `${k.replace(/_/g, " ")}: ${plain(v)}`));
    }
    box.appendChild(cols);
    const dyn = d.speaker_dynamics || {};
    const speakers = Object.keys(dyn);
    if (speakers.length) box.appendChild(dynamicsTable(dyn, speakers));
  }

  function plain(v) {
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(2);
    if (v && typeof v === "object") return Object.entries(v).map(([k, x]) => `${k} ${plain(x)}`).join(", ");
    return String(v);
  }

  function listSection(parent, title, items) {
    if (!items || !items.length) return;
    const sec = el("section", "summary-list");
    sec.appendChild(el("h3", null, title));
    const ul = el("ul");
    for (const item of items) ul.appendChild(el("li", null, typeof item === "string" ? item : plain(item)));
    sec.appendChild(ul);
    parent.appendChild(sec);
  }

  function dynamicsTable(dyn, speakers) {
    const keys = [...new Set(speakers.flatMap((sp) => Object.keys(dyn[sp] || {})))];
    const wrap = el("div", "table-wrap");
    const table = el("table", "dynamics");
    const head = el("tr");
    head.appendChild(el("th", null, "speaker"));
    for (const k of keys) head.appendChild(el("th", null, k.replace(/_/g, " ")));
    table.appendChild(head);
    for (const sp of speakers) {
      const row = el("tr");
      const cell = el("td");
      cell.appendChild(speakerChip(sp));
      row.appendChild(cell);
      for (const k of keys) row.appendChild(el("td", null, dyn[sp][k] === undefined ? "" : plain(dyn[sp][k])));
      table.appendChild(row);
    }
    wrap.appendChild(table);
    return wrap;
  }

  // ---------- page state ----------

  function setState(state) {
    document.body.dataset.state = state;
    const capturing = ["opening", "recording", "uploading"].includes(state);
    const busy = capturing || state === "finishing" || state === "cancelling";
    ui.record.disabled = busy;
    ui.fileInput.disabled = busy;
    ui.dropZone.classList.toggle("disabled", busy);
    ui.stop.disabled = !capturing;
    ui.cancel.disabled = !busy || state === "cancelling";
    ui.record.classList.toggle("live", state === "recording");
    ui.record.querySelector(".label").textContent = state === "recording" ? "Recording…" : "Record";
    const phases = { opening: "opening mic", recording: "recording", uploading: "uploading",
      finishing: "finishing", cancelling: "cancelling", cancelled: "cancelled", failed: "failed", done: "completed" };
    if (phases[state]) setPhase(phases[state]);
  }

  function setPhase(phase) {
    ui.phase.textContent = phase.replace(/_/g, " ");
    ui.phase.dataset.phase = phase;
  }

  function setLink(state) {
    ui.link.dataset.state = state;
    ui.link.textContent = { open: "live", connecting: "connecting", reconnecting: "reconnecting", closed: "" }[state] || "";
  }

  function setProgress(fraction) {
    document.documentElement.style.setProperty("--progress", fraction === null ? "0" : String(Math.max(0, Math.min(1, fraction))));
  }

  function resetView() {
    ui.messages.replaceChildren();
    ui.transcript.replaceChildren(el("li", "empty-hint", "Speech appears here as it is recognised."));
    followingTranscript = true;
    ui.moments.replaceChildren(el("li", "empty-hint", "Questions, objections, commitments and shifts show up here."));
    ui.emotion.replaceChildren();
    ui.trend.replaceChildren();
    ui.trendNote.textContent = "";
    ui.speakerLegend.replaceChildren();
    ui.summary.replaceChildren(el("p", "empty-hint", "The summary is written when the session ends."));
    ui.summaryState.textContent = "";
    ui.clock.textContent = "0:00";
    ui.lag.textContent = "";
    debug.finals = [];
    debug.events = [];
    setProgress(null);
  }

  // ---------- wiring ----------

  ui.record.addEventListener("click", () => {
    if (session && !session.finished && !session.closed) return;
    startMicrophone();
  });
  ui.stop.addEventListener("click", () => {
    if (!session) return;
    if (session.source === "file") session.fileDone = true;
    finalize(session);
  });
  ui.cancel.addEventListener("click", () => { if (session) cancel(session); });
  ui.fileInput.addEventListener("change", () => {
    const file = ui.fileInput.files && ui.fileInput.files[0];
    ui.fileInput.value = "";
    if (file) startFile(file);
  });
  for (const type of ["dragenter", "dragover"]) {
    ui.dropZone.addEventListener(type, (e) => { e.preventDefault(); ui.dropZone.classList.add("over"); });
  }
  ui.dropZone.addEventListener("dragleave", () => ui.dropZone.classList.remove("over"));
  ui.dropZone.addEventListener("drop", (e) => {
    e.preventDefault();
    ui.dropZone.classList.remove("over");
    const file = e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0];
    if (ui.fileInput.disabled) {
      showMessage("warn", "A session is still running: stop or cancel it before streaming a file.", "file");
    } else if (file) {
      startFile(file);
    }
  });
  // A file dropped anywhere else must not navigate away from a live session.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      if (!session) return;
      if (session.emotionPoints.length) drawEmotion(session);
      if (session.cognitivePoints.length) drawTrend(session);
    }, 150);
  });
  window.addEventListener("beforeunload", () => {
    if (session && session.id && !session.finished && !session.closed) {
      const key = session.key ? "?api_key=" + encodeURIComponent(session.key) : "";
      navigator.sendBeacon(session.controlEndpoint + key,
        new Blob([JSON.stringify({ action: "cancel", reason: "page closed" })], { type: "application/json" }));
    }
  });

  // Say up front when the server wants a key or is still loading its models.
  async function checkServer(first) {
    try {
      const health = await api("GET", "/healthz");
      if (first && health.auth && !ui.apiKey.value) {
        ui.apiKey.closest("details").open = true;
        showMessage("info", "This server needs an API key: enter it under Settings before recording.", "auth");
      }
      if (!health.ready) {
        showMessage("warn", "The server is still loading its speech models; results start once it is ready.", "health");
        setTimeout(() => checkServer(false), 3000);
      } else {
        clearMessage("health");
      }
    } catch (err) {
      showMessage("error", describeApiError(err, "check the server"), "health");
    }
  }

  setState("idle");
  setPhase("idle");
  checkServer(true);
})();
