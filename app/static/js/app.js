// The page: finds its elements, wires the controls to a LiveSession, and renders the current
// session's model into the views once per animation frame.
import { describeApiError, request } from "./api.js";
import { microphoneUnavailable, pickRecordingType } from "./capture.js";
import { speakerChip } from "./dom.js";
import { resultJson, resultText, save, transcriptJson, transcriptText } from "./exports.js";
import { SessionMachine } from "./machine.js";
import { LiveSession } from "./session.js";
import { EmotionChart, TrendChart } from "./views/charts.js";
import { Header, drawLevel } from "./views/header.js";
import { Messages } from "./views/messages.js";
import { MomentsView } from "./views/moments.js";
import { SummaryView } from "./views/summary.js";
import { TranscriptView } from "./views/transcript.js";

const HEALTH_RETRY_MS = 3000;
const RESIZE_DEBOUNCE_MS = 150;
const DOWNLOADS = {
  "transcript-txt": [transcriptText, "transcript.txt", "text/plain"],
  "transcript-json": [transcriptJson, "transcript.json", "application/json"],
  "result-txt": [resultText, "result.txt", "text/plain"],
  "result-json": [resultJson, "result.json", "application/json"],
};

function elements(doc) {
  const $ = (id) => doc.getElementById(id);
  return {
    record: $("record"), stop: $("stop"), cancel: $("cancel"), level: $("level"),
    fileInput: $("file-input"), dropZone: $("drop-zone"), apiKey: $("api-key"), goal: $("goal"),
    realtime: $("realtime"), messages: $("messages"), transcript: $("transcript"),
    emotion: $("emotion-timeline"), speakerLegend: $("speaker-legend"), trend: $("trend"), trendNote: $("trend-note"),
    moments: $("moments"), summary: $("summary"), summaryState: $("summary-state"),
    phase: $("phase"), clock: $("clock"), lag: $("lag"), link: $("link"),
    downloads: [...doc.querySelectorAll("[data-download]")],
  };
}

class Page {
  constructor(doc) {
    const ui = this.ui = elements(doc);
    this.machine = new SessionMachine();
    this.messages = new Messages(ui.messages);
    this.header = new Header(ui);
    this.session = null;
    // Until /healthz says otherwise, a dropped file is analysed whole (POST /analyze/stream).
    this.wholeFiles = true;
    this.views = {
      transcript: new TranscriptView(ui.transcript),
      emotion: new EmotionChart(ui.emotion),
      trend: new TrendChart(ui.trend, ui.trendNote),
      moments: new MomentsView(ui.moments),
      summary: new SummaryView(ui.summary, ui.summaryState),
    };
    this.dirty = new Set();
    this.frame = 0;
    this.machine.onChange((state) => {
      this.header.state(state);
      this.renderDownloads();
    });
    this.header.state(this.machine.state);
    this.renderDownloads();
  }

  // ---------- rendering ----------

  // Parts of the current model changed: render them with the next frame, all at once.
  changed(parts) {
    for (const part of parts) this.dirty.add(part);
    if (this.dirty.size && !this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  // Renders what changed now (before a state change the tests and the user read at once).
  flush() {
    cancelAnimationFrame(this.frame);
    this.frame = 0;
    const parts = [...this.dirty];
    this.dirty.clear();
    const c = this.session && this.session.model;
    if (!c) return;
    for (const part of parts) {
      if (part === "transcript") this.views.transcript.render(c.transcript);
      else if (part === "summary") this.views.summary.render(c.summary);
      else if (part === "status") this.header.status(c.status);
      else if (part === "speakers") this.ui.speakerLegend.replaceChildren(...c.speakers.map(speakerChip));
      else if (part === "downloads") this.renderDownloads();
      else this.views[part].render(c);
    }
  }

  renderDownloads() {
    const c = this.session && this.session.model;
    for (const button of this.ui.downloads) {
      const what = button.dataset.download;
      button.disabled = !c || !(what.startsWith("transcript") ? c.hasTranscript : c.hasTranscript || c.summary);
    }
  }

  download(what) {
    const c = this.session && this.session.model;
    if (!c) return;
    const [build, name, type] = DOWNLOADS[what];
    const doc = build(c, this.machine.state === "done");
    const content = typeof doc === "string" ? doc : JSON.stringify(doc, null, 2) + "\n";
    save(`harken-${c.sessionId || "session"}-${name}`, content, type);
  }

  reset() {
    cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.dirty.clear();
    this.messages.clearAll();
    for (const view of Object.values(this.views)) view.reset();
    this.ui.speakerLegend.replaceChildren();
    this.header.reset();
  }

  showLevel(capture) {
    drawLevel(this.ui.level, capture.analyser, () => capture.live && this.session && this.session.capture === capture);
  }

  // ---------- sessions ----------

  newSession(source) {
    this.reset();
    this.session = new LiveSession(this, source, { key: this.ui.apiKey.value.trim(), goal: this.ui.goal.value.trim() });
    this.renderDownloads();
    return this.session;
  }

  record() {
    if (!this.machine.free) return;
    const problem = microphoneUnavailable();
    const type = problem ? null : pickRecordingType(location.search);
    if (problem || !type) {
      this.messages.show("error", problem || "This browser cannot record audio in any type Harken reads; drop an audio file instead.", "mic");
      return;
    }
    this.newSession("microphone").recordMicrophone(type);
  }

  streamFile(file) {
    if (!this.machine.free) {
      this.messages.show("warn", "A session is still running: stop or cancel it before streaming a file.", "file");
      return;
    }
    const session = this.newSession("file");
    // At real-time pace a file behaves like a microphone (the live API); otherwise it is analysed whole.
    if (this.ui.realtime.checked || !this.wholeFiles) session.streamFile(file, this.ui.realtime.checked);
    else session.analyzeFile(file);
  }

  // Says up front when the server wants a key or is still loading its models.
  async checkServer(first) {
    try {
      const health = await request("GET", "/healthz");
      // A server without speech models cannot analyse a whole file; the live API still takes it.
      this.wholeFiles = !health.pipeline || health.pipeline.pipeline !== "none";
      if (first && health.auth && !this.ui.apiKey.value) {
        this.ui.apiKey.closest("details").open = true;
        this.messages.show("info", "This server needs an API key: enter it under Settings before recording.", "auth");
      }
      if (!health.ready) {
        this.messages.show("warn", "The server is still loading its speech models; results start once it is ready.", "health");
        setTimeout(() => this.checkServer(false), HEALTH_RETRY_MS);
      } else {
        this.messages.clear("health");
      }
    } catch (err) {
      this.messages.show("error", describeApiError(err, "check the server"), "health");
    }
  }

  wire() {
    const ui = this.ui;
    ui.record.addEventListener("click", () => this.record());
    ui.stop.addEventListener("click", () => this.session && this.session.stop());
    ui.cancel.addEventListener("click", () => this.session && this.session.cancel());
    ui.fileInput.addEventListener("change", () => {
      const file = ui.fileInput.files && ui.fileInput.files[0];
      ui.fileInput.value = "";
      if (file) this.streamFile(file);
    });
    for (const type of ["dragenter", "dragover"]) {
      ui.dropZone.addEventListener(type, (e) => { e.preventDefault(); ui.dropZone.classList.add("over"); });
    }
    ui.dropZone.addEventListener("dragleave", () => ui.dropZone.classList.remove("over"));
    ui.dropZone.addEventListener("drop", (e) => {
      e.preventDefault();
      ui.dropZone.classList.remove("over");
      const file = e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0];
      if (file) this.streamFile(file);
    });
    // A file dropped anywhere else must not navigate away from a live session.
    window.addEventListener("dragover", (e) => e.preventDefault());
    window.addEventListener("drop", (e) => e.preventDefault());
    for (const button of ui.downloads) button.addEventListener("click", () => this.download(button.dataset.download));
    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => this.changed(["emotion", "trend"]), RESIZE_DEBOUNCE_MS);
    });
    window.addEventListener("beforeunload", () => this.session && this.session.beacon());
  }
}

export function start(doc) {
  const page = new Page(doc);
  page.wire();
  page.checkServer(true);
  return page;
}
