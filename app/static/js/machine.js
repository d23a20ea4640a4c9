// The page's one session state machine: every state, the moves allowed from it, and what the
// controls and the status pill show in it. Nothing else keeps a flag about where a session is.

const ENDED = ["done", "cancelled", "failed"];
const START = ["opening", "uploading", "analysing"];
const LIVE_END = ["finishing", "cancelling", "cancelled", "failed", "done"];

const MOVES = {
  idle: START,
  // The microphone prompt is open; a denied or missing microphone goes back to idle.
  opening: ["recording", "idle", "cancelling", "cancelled", "failed"],
  recording: LIVE_END,
  uploading: LIVE_END,
  // A whole file sent to POST /analyze/stream: nothing to stop, only to cancel (or, on a server
  // without models, to stream through the live API instead).
  analysing: ["uploading", "cancelling", "cancelled", "failed", "done"],
  // Stop was pressed: the last slices go up, then finalize; `done` ends it.
  finishing: ["cancelling", "cancelled", "failed", "done"],
  // Cancel was sent; the stream's `error` coded `cancelled` (or a timeout) ends it.
  cancelling: ["cancelled", "failed", "done"],
  done: START,
  cancelled: START,
  failed: START,
};

// What the status pill says in each state (server phases replace it while a session is live).
export const STATE_LABELS = {
  idle: "idle", opening: "opening mic", recording: "recording", uploading: "uploading", analysing: "analysing",
  finishing: "finishing", cancelling: "cancelling", cancelled: "cancelled", failed: "failed", done: "completed",
};

export class SessionMachine {
  constructor() {
    this.state = "idle";
    this.listeners = [];
  }

  can(to) {
    return MOVES[this.state].includes(to);
  }

  // Moves to `to` and tells the listeners; a move the table does not allow is refused (false),
  // which is how late answers (a `done` after a failure, a microphone after Cancel) are ignored.
  go(to) {
    if (!this.can(to)) return false;
    const from = this.state;
    this.state = to;
    for (const listener of this.listeners) listener(to, from);
    return true;
  }

  onChange(listener) {
    this.listeners.push(listener);
  }

  // A session exists or is being made and has not been stopped or cancelled.
  get live() {
    return ["opening", "recording", "uploading", "analysing", "finishing"].includes(this.state);
  }

  // No session is running: a new one may start.
  get free() {
    return this.state === "idle" || ENDED.includes(this.state);
  }
}

// Which controls are usable in `state`.
export function controlsFor(state) {
  const capturing = ["opening", "recording", "uploading", "analysing"].includes(state);
  const busy = capturing || state === "finishing" || state === "cancelling";
  return {
    start: !busy,
    stop: state === "recording" || state === "uploading",
    cancel: busy && state !== "cancelling",
  };
}
