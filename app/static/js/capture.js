// Audio sources for a session: the microphone, recorded in short slices, and files, cut into chunks.

// A short timeslice keeps the sentence-end -> final latency low; each slice is one HTTP POST.
export const TIMESLICE_MS = 250;
export const FILE_CHUNK_BYTES = 256 * 1024;
// Order matters: Chromium and Firefox record WebM/Opus, Safari only MP4.
const RECORDING_TYPES = [
  { mime: "audio/webm;codecs=opus", suffix: ".webm" },
  { mime: "audio/webm", suffix: ".webm" },
  { mime: "audio/mp4", suffix: ".mp4" },
  { mime: "audio/ogg;codecs=opus", suffix: ".ogg" },
];

// `?record_type=audio/mp4` puts one type first (e.g. to try Safari's MP4 path in Chromium).
export function pickRecordingType(search) {
  if (typeof MediaRecorder === "undefined") return null;
  const wanted = new URLSearchParams(search).get("record_type");
  const types = RECORDING_TYPES.slice().sort((a, b) => (b.mime === wanted) - (a.mime === wanted));
  return types.find((t) => MediaRecorder.isTypeSupported(t.mime)) || null;
}

// Why this page cannot record at all, or null.
export function microphoneUnavailable() {
  if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return "The microphone needs a secure page: open Harken over HTTPS or on localhost.";
  }
  if (typeof MediaRecorder === "undefined") {
    return "This browser cannot record audio (no MediaRecorder); drop an audio file instead.";
  }
  return null;
}

export function micErrorText(err) {
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

// Gain control clips the signal, so all processing is off; the track is then stereo whatever
// `channelCount` says, and is downmixed to mono before recording.
export function openMicrophone() {
  return navigator.mediaDevices.getUserMedia({ audio: {
    echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 } });
}

// Records an open microphone stream as mono slices of `type`, with a level analyser beside it.
export class MicrophoneRecorder {
  // Hooks: onSlice(blob), onEnded() when the device stops delivering, onError(message).
  constructor(stream, type, hooks) {
    this.stream = stream;
    this.type = type;
    this.hooks = hooks;
    this.context = null;
    this.recorder = null;
    this.analyser = null;
    // An unplugged microphone or a revoked permission ends the track.
    for (const track of stream.getAudioTracks()) {
      track.addEventListener("ended", () => { if (this.live) hooks.onEnded(); });
    }
  }

  get live() {
    return this.stream !== null;
  }

  async start() {
    const ctx = this.context = new AudioContext();
    if (ctx.state === "suspended") await ctx.resume();
    const source = ctx.createMediaStreamSource(this.stream);
    const mono = ctx.createMediaStreamDestination();
    mono.channelCount = 1;
    mono.channelCountMode = "explicit";
    mono.channelInterpretation = "speakers";
    source.connect(mono);
    this.analyser = ctx.createAnalyser();
    this.analyser.fftSize = 512;
    source.connect(this.analyser);
    const recorder = this.recorder = new MediaRecorder(mono.stream, { mimeType: this.type.mime });
    recorder.addEventListener("dataavailable", (e) => this.hooks.onSlice(e.data));
    recorder.addEventListener("error", (e) => this.hooks.onError(e.error ? e.error.message : "unknown error"));
    recorder.start(TIMESLICE_MS);
  }

  // Stops recording; resolves once the last slice has been handed on (`dataavailable` precedes `stop`).
  async stop() {
    const recorder = this.recorder;
    if (recorder && recorder.state !== "inactive") {
      await new Promise((resolve) => {
        recorder.addEventListener("stop", resolve, { once: true });
        recorder.stop();
      });
    }
    this.release();
  }

  // Frees the device at once; a slice still in the recorder is lost.
  release() {
    if (this.recorder && this.recorder.state !== "inactive") {
      try { this.recorder.stop(); } catch (_) { /* already stopping */ }
    }
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    if (this.context && this.context.state !== "closed") this.context.close();
    this.stream = null;
    this.context = null;
  }
}

export function suffixOf(name) {
  const m = /\.[A-Za-z0-9]+$/.exec(name || "");
  return m ? m[0].toLowerCase() : "";
}

// The file's duration in seconds as the browser reads it, or null when it cannot tell.
export function audioDuration(file) {
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

// Chunk size and pace for a file: at real-time pace half a second of audio per chunk, so a
// recorded file behaves like a microphone; otherwise fixed chunks as fast as the server takes them.
export function filePlan(file, durationS) {
  if (!durationS) return { chunkBytes: FILE_CHUNK_BYTES, bytesPerSecond: null };
  const bytesPerSecond = file.size / durationS;
  return { chunkBytes: Math.max(4096, Math.round(bytesPerSecond / 2)), bytesPerSecond };
}
