// The transcript as data: turns of one speaker, each a list of segments — partials that settle
// into finals. The view renders it; nothing reads the DOM back.

// Consecutive utterances of one speaker with short gaps read as one turn (the pipeline commits
// stable prefixes early, so one sentence may arrive as several finals).
export const TURN_GAP_S = 1.0;

class Turn {
  constructor(id, speaker) {
    this.id = id;
    this.speaker = speaker || null;
    this.segments = [];
    // Bumped on every change, so the view re-renders only the turns that changed.
    this.version = 0;
  }

  get tStart() {
    return Math.min(...this.segments.map((s) => s.tStart));
  }

  // End of the last final, or null while the turn holds only partials.
  get tEnd() {
    const ends = this.segments.filter((s) => s.final).map((s) => s.tEnd);
    return ends.length ? Math.max(...ends) : null;
  }

  get final() {
    return this.segments.some((s) => s.final);
  }

  get live() {
    return this.segments.some((s) => !s.final);
  }

  // The finals' emotion labels in order, a run of one label merged into one entry.
  get emotions() {
    const runs = [];
    for (const seg of this.segments) {
      if (!seg.final || !seg.emotion) continue;
      const last = runs[runs.length - 1];
      if (last && last.label === seg.emotion.label) last.readings.push(seg.emotion);
      else runs.push({ label: seg.emotion.label, readings: [seg.emotion] });
    }
    return runs;
  }

  // What the turn says: its segments' texts with one space between them.
  get text() {
    return this.segments.map((s) => s.text).join(" ");
  }
}

export class Transcript {
  constructor() {
    this.turns = [];
    this.segments = new Map();
    this.nextTurnId = 1;
  }

  partial(d) {
    let seg = this.segments.get(d.utterance_id);
    if (seg && seg.final) return;
    if (!seg) seg = this.add(d.utterance_id, d.t_start, this.turnFor(d.speaker, d.t_start, null));
    seg.text = d.text;
    seg.turn.version += 1;
  }

  final(d) {
    let seg = this.segments.get(d.utterance_id);
    const turn = this.turnFor(d.speaker, d.t_start, seg ? seg.turn : null);
    if (!seg) seg = this.add(d.utterance_id, d.t_start, turn);
    else if (seg.turn !== turn) this.move(seg, turn);
    Object.assign(seg, { final: true, text: d.text, speaker: d.speaker || null, tEnd: d.t_end,
      confidence: typeof d.confidence === "number" ? d.confidence : null });
    turn.speaker = d.speaker || null;
    turn.version += 1;
    // Partials that started earlier and were never finalised under their own id are stale.
    for (const other of [...this.segments.values()]) {
      if (!other.final && other.tStart <= d.t_start) this.remove(other);
    }
  }

  emotion(d) {
    const seg = this.segments.get(d.utterance_id);
    if (!seg) return;
    seg.emotion = { label: d.label, scores: d.scores || {}, distribution: d.emotion || {}, confidence: d.confidence };
    seg.turn.version += 1;
  }

  // At the end of a session nothing is still being said.
  dropPartials() {
    for (const seg of [...this.segments.values()]) if (!seg.final) this.remove(seg);
  }

  finals() {
    return this.turns.flatMap((t) => t.segments.filter((s) => s.final));
  }

  turnFor(speaker, tStart, current) {
    if (current && (!current.speaker || !speaker || current.speaker === speaker)) return current;
    const last = this.turns[this.turns.length - 1];
    if (last && last !== current) {
      const sameSpeaker = !speaker || !last.speaker || last.speaker === speaker;
      const end = last.tEnd === null ? last.tStart : last.tEnd;
      if (sameSpeaker && tStart - end < TURN_GAP_S) return last;
    }
    const turn = new Turn(this.nextTurnId++, speaker);
    this.turns.push(turn);
    return turn;
  }

  add(uttId, tStart, turn) {
    const seg = { uttId, tStart, tEnd: null, text: "", final: false, speaker: null, confidence: null,
      emotion: null, turn };
    turn.segments.push(seg);
    this.segments.set(uttId, seg);
    return seg;
  }

  move(seg, turn) {
    this.detach(seg);
    seg.turn = turn;
    turn.segments.push(seg);
  }

  remove(seg) {
    this.detach(seg);
    this.segments.delete(seg.uttId);
  }

  detach(seg) {
    const old = seg.turn;
    old.segments.splice(old.segments.indexOf(seg), 1);
    old.version += 1;
    if (!old.segments.length) this.turns.splice(this.turns.indexOf(old), 1);
  }
}
