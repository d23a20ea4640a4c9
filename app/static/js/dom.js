// Small DOM and formatting helpers the views share: element builders, times, numbers, speakers.
const SVG_NS = "http://www.w3.org/2000/svg";
const SPEAKER_COLOURS = ["#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2",
  "#65a30d", "#dc2626"];
const NO_SPEAKER_COLOUR = "#6b7280";

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

export function svg(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

// Seconds as m:ss, the way the transcript, the charts and the header show session time.
export function clock(seconds) {
  const s = Math.max(0, Math.round(Number(seconds) || 0));
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
}

// A score to two decimals, or a dash when the server sent none.
export function fmt(v) {
  return typeof v === "number" ? v.toFixed(2) : "–";
}

// Any summary value as one readable line: numbers rounded, objects as "key value" pairs.
export function plain(v) {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(2);
  if (v && typeof v === "object") return Object.entries(v).map(([k, x]) => `${k} ${plain(x)}`).join(", ");
  return String(v);
}

export function words(name) {
  return String(name).replace(/_/g, " ");
}

// `Speaker_3` always gets the same colour, in every panel.
export function speakerColour(speaker) {
  if (!speaker) return NO_SPEAKER_COLOUR;
  const m = /(\d+)$/.exec(speaker);
  const n = m ? Number(m[1]) : [...speaker].reduce((a, c) => a + c.charCodeAt(0), 0);
  return SPEAKER_COLOURS[n % SPEAKER_COLOURS.length];
}

export function speakerName(speaker) {
  return speaker ? words(speaker) : "…";
}

export function speakerChip(speaker) {
  const chip = el("span", "speaker", speakerName(speaker));
  chip.style.setProperty("--spk", speakerColour(speaker));
  return chip;
}
