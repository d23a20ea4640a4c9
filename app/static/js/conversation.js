// Everything one session has said so far, as data: the SSE events applied to a model the views
// render and the downloads export. Knows nothing of the DOM.
import { Transcript } from "./transcript.js";

export class Conversation {
  constructor(source) {
    this.source = source;
    this.sessionId = null;
    this.conversationId = null;
    this.goal = null;
    this.transcript = new Transcript();
    this.utterances = new Map(); // utterance_id -> the final_transcript as received
    this.emotions = [];
    this.cognitive = [];
    this.transitions = [];
    this.moments = [];
    this.feed = []; // moments and transitions in arrival order, as the Moments panel lists them
    this.summary = null;
    this.speakers = [];
    this.status = { phase: null, audioSeconds: 0, lagSeconds: 0, progress: null };
  }

  // Applies one event; returns the names of the parts that changed (what needs rendering).
  apply(name, d) {
    const apply = APPLY[name];
    return apply ? apply(this, d) : [];
  }

  // Session time of the latest final's end: how far the charts' time axis must reach.
  lastTime() {
    let t = 0;
    for (const u of this.utterances.values()) t = Math.max(t, u.t_end || 0);
    return t;
  }

  // Middle of an utterance, where its emotion and engagement are plotted.
  timeOf(utteranceId) {
    const u = this.utterances.get(utteranceId);
    return u ? (u.t_start + u.t_end) / 2 : this.lastTime();
  }

  addSpeaker(speaker) {
    if (!speaker || this.speakers.includes(speaker)) return false;
    this.speakers.push(speaker);
    return true;
  }

  get hasTranscript() {
    return this.utterances.size > 0;
  }
}

const APPLY = {
  status(c, d) {
    c.status = { phase: d.phase, audioSeconds: d.audio_seconds || 0, lagSeconds: d.lag_seconds || 0,
      progress: d.phase === "processing" ? d.progress : null };
    return ["status"];
  },

  partial_transcript(c, d) {
    c.transcript.partial(d);
    return ["transcript"];
  },

  final_transcript(c, d) {
    c.transcript.final(d);
    c.utterances.set(d.utterance_id, d);
    return ["transcript", "downloads"].concat(c.addSpeaker(d.speaker) ? ["speakers"] : []);
  },

  emotion(c, d) {
    c.transcript.emotion(d);
    const scores = d.scores || {};
    c.emotions.push({ event: d, t: c.timeOf(d.utterance_id), speaker: d.speaker, valence: scores.valence,
      arousal: scores.arousal, label: d.label });
    return ["transcript", "emotion"].concat(c.addSpeaker(d.speaker) ? ["speakers"] : []);
  },

  cognitive(c, d) {
    c.cognitive.push({ event: d, t: c.timeOf(d.utterance_id), speaker: d.speaker, engagement: d.engagement,
      focus: d.focus, load: d.cognitive_load });
    return ["trend"];
  },

  transition(c, d) {
    const entry = { kind: "transition", event: d, t: d.at_ms / 1000, speaker: d.speaker };
    c.transitions.push(entry);
    c.feed.push(entry);
    return ["moments", "emotion"];
  },

  moment(c, d) {
    const entry = { kind: "moment", event: d, t: d.start_ms / 1000, speaker: d.speaker };
    c.moments.push(entry);
    c.feed.push(entry);
    return ["moments"];
  },

  summary_update(c, d) {
    c.summary = d;
    return ["summary", "downloads"];
  },

  done(c, d) {
    c.conversationId = d.conversation_id || c.conversationId;
    // A whole-file analysis has no /start answer: its id comes with `done`.
    c.sessionId = c.sessionId || d.session_id || null;
    return [];
  },
};
