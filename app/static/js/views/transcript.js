// Renders the transcript model into the list: one <li> per turn, one <span> per segment, real
// spaces between segments (so copying and screen readers get words, not "truckarrived").
// Partials are hidden from assistive technology; each final is a new node, so the list's live
// region announces finals only.
import { clock, el, fmt, speakerColour, speakerName } from "../dom.js";

const EMPTY_HINT = "Press Record or drop a file; speech appears here as it is recognised.";

// Only a clear lean is marked on the words; the timeline shows every value.
function valenceClass(v) {
  return v > 0.35 ? "pos" : v < -0.35 ? "neg" : "neu";
}

function emotionTitle(e) {
  const top = Object.entries(e.distribution).sort((a, b) => b[1] - a[1]).slice(0, 3)
    .map(([k, v]) => `${k} ${Math.round(v * 100)}%`).join(", ");
  return `${e.label}: ${top}\nvalence ${fmt(e.scores.valence)}, arousal ${fmt(e.scores.arousal)}, ` +
    `dominance ${fmt(e.scores.dominance)}; confidence ${Math.round((e.confidence || 0) * 100)}%`;
}

// Puts exactly `nodes` into `parent` in order, moving or removing as little as it can.
function reconcile(parent, nodes) {
  const wanted = new Set(nodes);
  for (const child of [...parent.childNodes]) if (!wanted.has(child)) child.remove();
  nodes.forEach((node, i) => {
    if (parent.childNodes[i] !== node) parent.insertBefore(node, parent.childNodes[i] || null);
  });
}

export class TranscriptView {
  constructor(list) {
    this.list = list;
    this.rows = new Map(); // turn id -> { li, chip, time, emotions, text, nodes, version, labels }
    // Keep the newest line in view, unless the reader has scrolled up to read earlier ones.
    this.following = true;
    list.addEventListener("scroll", () => {
      this.following = list.scrollHeight - list.scrollTop - list.clientHeight < 48;
    });
  }

  reset() {
    this.rows.clear();
    this.list.replaceChildren(el("li", "empty-hint", EMPTY_HINT));
    this.following = true;
  }

  render(transcript) {
    const alive = new Set();
    for (const turn of transcript.turns) {
      alive.add(turn.id);
      let row = this.rows.get(turn.id);
      if (!row) {
        row = this.createRow(turn);
        this.rows.set(turn.id, row);
        const hint = this.list.querySelector(".empty-hint");
        if (hint) hint.remove();
        // Turns are only ever added at the end of the model's list.
        this.list.appendChild(row.li);
      }
      if (row.version !== turn.version) this.updateRow(row, turn);
    }
    for (const [id, row] of this.rows) {
      if (!alive.has(id)) {
        row.li.remove();
        this.rows.delete(id);
      }
    }
    if (this.following) this.list.scrollTop = this.list.scrollHeight;
  }

  createRow(turn) {
    const li = el("li", "turn");
    const meta = el("div", "turn-meta");
    const chip = el("span", "speaker");
    const time = el("span", "time");
    const emotions = el("span", "emotions");
    meta.append(chip, time, emotions);
    const text = el("p", "text");
    li.append(meta, text);
    return { li, chip, time, emotions, text, nodes: new Map(), version: -1, labels: "" };
  }

  updateRow(row, turn) {
    row.version = turn.version;
    const colour = speakerColour(turn.speaker);
    row.li.dataset.turn = turn.id;
    row.li.style.setProperty("--spk", colour);
    row.li.classList.toggle("final", turn.final);
    row.li.classList.toggle("live", turn.live);
    row.chip.textContent = speakerName(turn.speaker);
    row.chip.style.setProperty("--spk", colour);
    const tEnd = turn.tEnd;
    row.time.textContent = tEnd === null ? clock(turn.tStart) : `${clock(turn.tStart)}–${clock(tEnd)}`;
    this.renderEmotions(row, turn.emotions);
    this.renderSegments(row, turn.segments);
  }

  renderEmotions(row, runs) {
    const signature = JSON.stringify(runs.map((r) => [r.label, r.readings.length]));
    if (signature === row.labels) return;
    row.labels = signature;
    row.emotions.replaceChildren(...runs.map((run) => {
      const label = el("span", "emotion-label", run.label);
      label.dataset.label = run.label;
      label.title = run.readings.map(emotionTitle).join("\n\n");
      return label;
    }));
  }

  renderSegments(row, segments) {
    const nodes = [];
    const used = new Set();
    const node = (key, make) => {
      used.add(key);
      if (!row.nodes.has(key)) row.nodes.set(key, make());
      return row.nodes.get(key);
    };
    segments.forEach((seg, i) => {
      const key = `${seg.uttId}:${seg.final ? "final" : "partial"}`;
      if (i > 0) nodes.push(node("space:" + key, () => document.createTextNode(" ")));
      const span = node(key, () => this.createSegment(seg));
      this.updateSegment(span, seg);
      nodes.push(span);
    });
    for (const key of [...row.nodes.keys()]) if (!used.has(key)) row.nodes.delete(key);
    reconcile(row.text, nodes);
  }

  createSegment(seg) {
    const span = el("span", "seg " + (seg.final ? "final" : "partial"));
    span.dataset.utt = seg.uttId;
    span.dataset.tStart = seg.tStart;
    if (!seg.final) span.setAttribute("aria-hidden", "true");
    return span;
  }

  updateSegment(span, seg) {
    if (span.textContent !== seg.text) span.textContent = seg.text;
    if (!seg.final) return;
    span.dataset.tEnd = seg.tEnd;
    span.dataset.speaker = seg.speaker || "";
    span.classList.toggle("low-confidence", seg.confidence !== null && seg.confidence < 0.5);
    if (seg.emotion) {
      span.dataset.emotion = seg.emotion.label;
      span.dataset.valence = valenceClass(seg.emotion.scores.valence);
      span.title = emotionTitle(seg.emotion);
    }
  }
}
