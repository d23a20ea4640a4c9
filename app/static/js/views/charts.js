// The two time charts as inline SVG. The time axis grows in steps and the frame (grid, ticks) is
// drawn again only when the step or the width changes; otherwise new points are appended and the
// lines' point lists updated, so an event costs a few nodes, not the whole drawing.
import { clock, fmt, speakerColour, speakerName, svg } from "../dom.js";

const HEIGHT = 200;
const PAD = { left: 34, right: 10, top: 10, bottom: 24 };
const DOMAIN_STEPS_S = [10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300, 450, 600, 900, 1200, 1800, 2700, 3600];

// The smallest step that holds `t` seconds (whole hours beyond the table).
export function domainFor(t) {
  return DOMAIN_STEPS_S.find((s) => s >= t) || Math.ceil(t / 3600) * 3600;
}

function tickStep(xMax, width) {
  const ticks = width < 450 ? 4 : 6;
  for (const s of [5, 10, 15, 30, 60, 120, 300, 600]) if (xMax / s <= ticks) return s;
  return 1200;
}

function pointList(pts) {
  return pts.map((p) => `${p[0].toFixed(1)},${p[1].toFixed(1)}`).join(" ");
}

// A framed plot area: y from yMin to yMax, x from 0 to a stepped session time.
class Chart {
  constructor(container, { yMin, yMax, yTicks }) {
    Object.assign(this, { container, yMin, yMax, yTicks });
    this.key = null;
  }

  // Draws the frame again if the width or the time step changed; true when it did (layers empty).
  layout(tMax, label) {
    const width = Math.max(260, Math.round(this.container.clientWidth) || 600);
    const xMax = domainFor(tMax);
    const key = `${width}|${xMax}`;
    if (key === this.key) {
      this.root.setAttribute("aria-label", label);
      return false;
    }
    this.key = key;
    this.width = width;
    this.x = (t) => PAD.left + (t / xMax) * (width - PAD.left - PAD.right);
    this.y = (v) => PAD.top + (1 - (v - this.yMin) / (this.yMax - this.yMin)) * (HEIGHT - PAD.top - PAD.bottom);
    const root = this.root = svg("svg", { viewBox: `0 0 ${width} ${HEIGHT}`, role: "img", "aria-label": label,
      preserveAspectRatio: "xMidYMid meet" });
    for (const v of this.yTicks) {
      root.appendChild(svg("line", { x1: PAD.left, x2: width - PAD.right, y1: this.y(v), y2: this.y(v), class: v === 0 ? "axis" : "gridline" }));
      root.appendChild(this.text(PAD.left - 6, this.y(v) + 4, "end", String(v)));
    }
    const step = tickStep(xMax, width);
    // The last tick sits on the right edge: anchored at its end, so it is not cut off.
    for (let t = 0; t <= xMax + 1e-6; t += step) {
      root.appendChild(this.text(this.x(t), HEIGHT - 6, xMax - t < step / 2 ? "end" : "middle", clock(t)));
    }
    this.markers = root.appendChild(svg("g"));
    this.lines = root.appendChild(svg("g"));
    this.points = root.appendChild(svg("g"));
    this.container.replaceChildren(root);
    return true;
  }

  text(x, y, anchor, content) {
    const node = svg("text", { x, y, class: "tick", "text-anchor": anchor });
    node.textContent = content;
    return node;
  }

  // One polyline per key, created once and given new points on every render.
  line(store, key, attrs, pts) {
    let node = store.get(key);
    if (!node) {
      node = svg("polyline", Object.assign({ fill: "none", "stroke-width": 2.2 }, attrs));
      store.set(key, node);
      this.lines.appendChild(node);
    }
    node.setAttribute("points", pointList(pts));
  }
}

export class EmotionChart {
  constructor(container) {
    this.chart = new Chart(container, { yMin: -1, yMax: 1, yTicks: [-1, -0.5, 0, 0.5, 1] });
    this.container = container;
  }

  reset() {
    this.container.replaceChildren();
    this.chart.key = null;
  }

  render(c) {
    const pts = c.emotions.filter((p) => typeof p.valence === "number");
    if (!pts.length && !c.transitions.length) return;
    const tMax = Math.max(c.lastTime(), ...pts.map((p) => p.t), ...c.transitions.map((tr) => tr.t));
    const names = [...new Set(pts.map((p) => speakerName(p.speaker)))].join(", ");
    const ch = this.chart;
    if (ch.layout(tMax, `Valence and arousal from -1 to 1 over ${clock(tMax)} for ${names || "no speaker yet"}`)) {
      this.drawn = { points: 0, markers: 0, lines: new Map() };
    }
    const drawn = this.drawn;
    for (const tr of c.transitions.slice(drawn.markers)) {
      ch.markers.appendChild(svg("line", { x1: ch.x(tr.t), x2: ch.x(tr.t), y1: ch.y(1), y2: ch.y(-1),
        stroke: speakerColour(tr.speaker), class: "marker" }));
    }
    drawn.markers = c.transitions.length;
    for (const spk of new Set(pts.map((p) => p.speaker))) {
      const mine = pts.filter((p) => p.speaker === spk).sort((a, b) => a.t - b.t);
      const colour = speakerColour(spk);
      ch.line(drawn.lines, "v" + spk, { stroke: colour, class: "valence" }, mine.map((p) => [ch.x(p.t), ch.y(p.valence)]));
      ch.line(drawn.lines, "a" + spk, { stroke: colour, "stroke-dasharray": "6 4", class: "arousal" },
        mine.filter((p) => typeof p.arousal === "number").map((p) => [ch.x(p.t), ch.y(p.arousal)]));
    }
    for (const p of pts.slice(drawn.points)) {
      const colour = speakerColour(p.speaker);
      if (typeof p.arousal === "number") {
        ch.points.appendChild(svg("circle", { cx: ch.x(p.t), cy: ch.y(p.arousal), r: 3.5, fill: "#fff", stroke: colour,
          "stroke-width": 2, class: "arousal-point" }));
      }
      const dot = svg("circle", { cx: ch.x(p.t), cy: ch.y(p.valence), r: 4, fill: colour, class: "point" });
      const tip = svg("title");
      tip.textContent = `${speakerName(p.speaker)} ${clock(p.t)}: ${p.label} (valence ${fmt(p.valence)}, arousal ${fmt(p.arousal)})`;
      dot.appendChild(tip);
      ch.points.appendChild(dot);
    }
    drawn.points = pts.length;
  }
}

const TREND_SERIES = [["engagement", "#0d9488", null], ["focus", "#6366f1", "2 4"], ["load", "#ea580c", "6 4"]];

export class TrendChart {
  constructor(container, note) {
    this.chart = new Chart(container, { yMin: 0, yMax: 1, yTicks: [0, 0.5, 1] });
    this.container = container;
    this.note = note;
  }

  reset() {
    this.container.replaceChildren();
    this.note.textContent = "";
    this.chart.key = null;
  }

  render(c) {
    const pts = c.cognitive.slice().sort((a, b) => a.t - b.t);
    if (!pts.length) return;
    const tMax = Math.max(c.lastTime(), ...pts.map((p) => p.t));
    const ch = this.chart;
    if (ch.layout(tMax, `Engagement, focus and cognitive load from 0 to 1 over ${clock(tMax)}`)) {
      this.drawn = { points: 0, lines: new Map() };
      ch.root.appendChild(ch.text(ch.width - PAD.right, PAD.top + 10, "end", "— engagement  ··· focus  - - load"));
    }
    const drawn = this.drawn;
    for (const [key, colour, dash] of TREND_SERIES) {
      ch.line(drawn.lines, key, { stroke: colour, "stroke-dasharray": dash || "none", class: key },
        pts.filter((p) => typeof p[key] === "number").map((p) => [ch.x(p.t), ch.y(p[key])]));
    }
    for (const p of c.cognitive.slice(drawn.points)) {
      if (typeof p.engagement !== "number") continue;
      ch.points.appendChild(svg("circle", { cx: ch.x(p.t), cy: ch.y(p.engagement), r: 3.5, fill: speakerColour(p.speaker), class: "point" }));
    }
    drawn.points = c.cognitive.length;
    const latest = c.cognitive[c.cognitive.length - 1];
    if (latest.event.rationale) this.note.textContent = `${speakerName(latest.speaker)}: ${latest.event.rationale}`;
  }
}
