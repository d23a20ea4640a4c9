// The top bar and the capture controls: state pill, audio clock, analysis lag, event-stream light,
// progress bar, and which buttons work in the current state.
import { clock, words } from "../dom.js";
import { STATE_LABELS, controlsFor } from "../machine.js";

const LINK_LABELS = { open: "live", connecting: "connecting", reconnecting: "reconnecting", closed: "" };

export class Header {
  constructor(ui) {
    this.ui = ui;
  }

  // The page's state: body[data-state] for CSS and tests, the pill, the buttons.
  state(state) {
    const ui = this.ui;
    document.body.dataset.state = state;
    const can = controlsFor(state);
    ui.record.disabled = !can.start;
    ui.fileInput.disabled = !can.start;
    ui.dropZone.classList.toggle("disabled", !can.start);
    ui.stop.disabled = !can.stop;
    ui.cancel.disabled = !can.cancel;
    ui.record.classList.toggle("live", state === "recording");
    ui.record.querySelector(".label").textContent = state === "recording" ? "Recording…" : "Record";
    this.phase(STATE_LABELS[state]);
  }

  // The pill: the page's state, or the server's phase while a session runs.
  phase(phase) {
    this.ui.phase.textContent = words(phase);
    this.ui.phase.dataset.phase = phase;
  }

  status(s) {
    this.ui.clock.textContent = clock(s.audioSeconds);
    this.ui.lag.textContent = s.lagSeconds > 0.5 ? `analysis ${s.lagSeconds.toFixed(1)} s behind` : "";
  }

  link(state) {
    this.ui.link.dataset.state = state;
    this.ui.link.textContent = LINK_LABELS[state] || "";
  }

  // The thin bar under the top bar: a file's upload, then the server's processing; null hides it.
  progress(fraction) {
    const value = fraction === null || fraction === undefined ? 0 : Math.max(0, Math.min(1, fraction));
    document.documentElement.style.setProperty("--progress", String(value));
  }

  reset() {
    this.status({ audioSeconds: 0, lagSeconds: 0 });
    this.progress(null);
  }
}

// The microphone level next to the buttons, drawn each frame while `live()` holds.
export function drawLevel(canvas, analyser, live) {
  const g = canvas.getContext("2d");
  const samples = new Float32Array(analyser.fftSize);
  let shown = 0;
  const frame = () => {
    if (!live()) { g.clearRect(0, 0, canvas.width, canvas.height); return; }
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const v of samples) sum += v * v;
    const db = 20 * Math.log10(Math.sqrt(sum / samples.length) + 1e-9);
    // Fall back slowly so the meter reads as a level, not a flicker.
    shown = Math.max(Math.max(0, Math.min(1, (db + 60) / 60)), shown * 0.9);
    g.clearRect(0, 0, canvas.width, canvas.height);
    g.fillStyle = "#e5e7eb";
    g.fillRect(0, 0, canvas.width, canvas.height);
    g.fillStyle = shown > 0.9 ? "#dc2626" : "#10b981";
    g.fillRect(0, 0, canvas.width * shown, canvas.height);
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}
