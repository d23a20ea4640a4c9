// What the Download buttons save: the transcript and the whole result, each as JSON and as text,
// built from the conversation model (never scraped from the page).
import { clock, speakerName } from "./dom.js";
import { describeShift } from "./views/moments.js";
import { summaryFacts, summarySections } from "./views/summary.js";

// The transcript's turns as the page groups them, finals only.
function turns(c) {
  return c.transcript.turns.map((turn) => {
    const finals = turn.segments.filter((s) => s.final);
    return finals.length && {
      speaker: turn.speaker, t_start: Math.min(...finals.map((s) => s.tStart)), t_end: Math.max(...finals.map((s) => s.tEnd)),
      text: finals.map((s) => s.text).join(" "), utterance_ids: finals.map((s) => s.uttId),
    };
  }).filter(Boolean);
}

function finals(c) {
  return c.transcript.finals().map((s) => c.utterances.get(s.uttId));
}

function transcriptLines(c) {
  return turns(c).map((t) => `[${clock(t.t_start)}–${clock(t.t_end)}] ${speakerName(t.speaker)}: ${t.text}`);
}

function heading(c, what) {
  return `Harken ${what} — session ${c.sessionId || "(not started)"}`;
}

export function transcriptJson(c) {
  return { session_id: c.sessionId, conversation_id: c.conversationId, source: c.source, turns: turns(c),
    utterances: finals(c) };
}

export function transcriptText(c) {
  return [heading(c, "transcript"), "", ...transcriptLines(c)].join("\n") + "\n";
}

// `complete` is true once the session's `done` arrived; before that the result is a snapshot.
export function resultJson(c, complete) {
  const events = (list) => list.map((x) => x.event);
  return { session_id: c.sessionId, conversation_id: c.conversationId, source: c.source, goal: c.goal, complete,
    transcript: finals(c), emotion: events(c.emotions), cognitive: events(c.cognitive),
    transitions: events(c.transitions), moments: events(c.moments), summary: c.summary };
}

export function resultText(c, complete) {
  const lines = [heading(c, "result"), complete ? "Complete." : "Snapshot of a session still running or stopped early."];
  if (c.goal) lines.push(`Goal: ${c.goal}`);
  const d = c.summary;
  lines.push("", "SUMMARY");
  if (!d) lines.push("(no summary yet)");
  else {
    if (d.overview) lines.push(d.overview);
    const facts = summaryFacts(d);
    if (facts) lines.push(facts);
    for (const [title, items] of summarySections(d)) lines.push("", title, ...items.map((item) => `- ${item}`));
  }
  lines.push("", "MOMENTS");
  if (!c.feed.length) lines.push("(none)");
  for (const entry of c.feed) {
    const d = entry.event;
    const what = entry.kind === "transition" ? `shift: ${describeShift(d)}` : `${d.category}: “${d.evidence || ""}”`;
    lines.push(`[${clock(entry.t)}] ${speakerName(entry.speaker)} ${what}`);
  }
  lines.push("", "TRANSCRIPT", ...transcriptLines(c));
  return lines.join("\n") + "\n";
}

// Hands `content` to the browser as a file download.
export function save(filename, content, type) {
  const url = URL.createObjectURL(new Blob([content], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
