// The Summary panel, drawn whole from each summary_update (a few per session at most).
import { clock, el, plain, speakerChip, words } from "../dom.js";

const EMPTY_HINT = "The summary is written when the session ends.";

// The summary's list sections, in the order the panel and the text download show them.
export function summarySections(d) {
  const sections = [
    ["Key insights", d.key_insights], ["Recommendations", d.recommendations], ["Went well", d.what_went_well],
    ["Went wrong", d.what_went_wrong], ["Patterns", d.notable_patterns],
  ];
  if (d.key_phrases && d.key_phrases.length) {
    sections.push(["Key phrases", [d.key_phrases.map((p) => (typeof p === "string" ? p : p.phrase || JSON.stringify(p))).join(", ")]]);
  }
  if (d.conversation_quality && typeof d.conversation_quality === "object") {
    sections.push(["Quality", Object.entries(d.conversation_quality).map(([k, v]) => `${words(k)}: ${plain(v)}`)]);
  }
  return sections.filter(([, items]) => items && items.length)
    .map(([title, items]) => [title, items.map((item) => (typeof item === "string" ? item : plain(item)))]);
}

// "1:05 of audio · goal: … · quality: …"
export function summaryFacts(d) {
  const bits = [];
  if (d.duration_s) bits.push(`${clock(d.duration_s)} of audio`);
  if (d.goal) bits.push(`goal: ${d.goal}`);
  if (d.conversation_quality && typeof d.conversation_quality !== "object") bits.push(`quality: ${d.conversation_quality}`);
  return bits.join(" · ");
}

function dynamicsTable(dyn) {
  const speakers = Object.keys(dyn);
  const keys = [...new Set(speakers.flatMap((sp) => Object.keys(dyn[sp] || {})))];
  const table = el("table", "dynamics");
  const head = el("tr");
  head.append(el("th", null, "speaker"), ...keys.map((k) => el("th", null, words(k))));
  table.appendChild(head);
  for (const sp of speakers) {
    const row = el("tr");
    const cell = el("td");
    cell.appendChild(speakerChip(sp));
    row.append(cell, ...keys.map((k) => el("td", null, dyn[sp][k] === undefined ? "" : plain(dyn[sp][k]))));
    table.appendChild(row);
  }
  const wrap = el("div", "table-wrap");
  wrap.appendChild(table);
  return wrap;
}

export class SummaryView {
  constructor(box, state) {
    this.box = box;
    this.state = state;
  }

  reset() {
    this.box.replaceChildren(el("p", "empty-hint", EMPTY_HINT));
    this.state.textContent = "";
    delete this.box.dataset.final;
  }

  render(d) {
    if (!d) return;
    this.state.textContent = d.is_final === false ? "(interim)" : "";
    this.box.dataset.final = d.is_final === false ? "false" : "true";
    const parts = [];
    if (d.overview) parts.push(el("p", "overview", d.overview));
    const facts = summaryFacts(d);
    if (facts) parts.push(el("p", "facts muted", facts));
    const cols = el("div", "summary-cols");
    for (const [title, items] of summarySections(d)) {
      const sec = el("section", "summary-list");
      const ul = el("ul");
      ul.append(...items.map((item) => el("li", null, item)));
      sec.append(el("h3", null, title), ul);
      cols.appendChild(sec);
    }
    parts.push(cols);
    if (Object.keys(d.speaker_dynamics || {}).length) parts.push(dynamicsTable(d.speaker_dynamics));
    this.box.replaceChildren(...parts);
  }
}
