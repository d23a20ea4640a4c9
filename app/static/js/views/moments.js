// The Moments panel: moments and emotional shifts in arrival order; new entries are appended.
import { clock, el, fmt, plain, speakerChip, words } from "../dom.js";

const EMPTY_HINT = "Questions, objections, commitments and shifts show up here.";

// A transition driver is a name, or a measured cue that moved from one value to another.
export function describeDriver(x) {
  if (typeof x === "string") return words(x);
  if (x && x.cue !== undefined) {
    const arrow = typeof x.from === "number" && typeof x.to === "number" ? ` ${fmt(x.from)}→${fmt(x.to)}` : "";
    return words(x.cue) + arrow;
  }
  return plain(x);
}

// "calm → tense (pitch 0.10→0.40)": what a transition says in one line.
export function describeShift(d) {
  const drivers = (d.drivers || []).map(describeDriver).join(", ");
  return `${(d.from_state || {}).label || "?"} → ${(d.to_state || {}).label || "?"}${drivers ? " (" + drivers + ")" : ""}`;
}

function momentItem(entry) {
  const d = entry.event;
  const li = el("li", "moment");
  if (entry.kind === "transition") {
    li.classList.add("transition");
    li.append(el("span", "cat cat-transition", "shift"), el("span", "time", clock(entry.t)),
      speakerChip(d.speaker), el("span", "evidence", describeShift(d)));
    return li;
  }
  li.dataset.category = d.category;
  const cat = el("span", "cat", words(d.category));
  cat.dataset.category = d.category;
  li.append(cat, el("span", "time", clock(entry.t)), speakerChip(d.speaker), el("q", "evidence", d.evidence || ""));
  li.title = `confidence ${Math.round((d.confidence || 0) * 100)}%`;
  return li;
}

export class MomentsView {
  constructor(list) {
    this.list = list;
    this.shown = 0;
  }

  reset() {
    this.shown = 0;
    this.list.replaceChildren(el("li", "empty-hint", EMPTY_HINT));
  }

  render(c) {
    if (this.shown === c.feed.length) return;
    if (this.shown === 0) this.list.replaceChildren();
    this.list.append(...c.feed.slice(this.shown).map(momentItem));
    this.shown = c.feed.length;
  }
}
