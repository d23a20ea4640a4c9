// The session's one event stream: an EventSource that resumes after a drop, hands on each event
// once, and reopens by hand a bounded number of times when the browser gives up on it.

export const EVENT_NAMES = ["status", "partial_transcript", "final_transcript", "emotion", "cognitive",
  "transition", "moment", "summary_update", "error", "done"];
// A reconnect answered with an error status (e.g. 409 while the server has not yet noticed the
// old connection died) makes the browser give up; it is opened again after a pause, this often.
const MAX_REOPENS = 3;
const REOPEN_DELAY_MS = 2000;

export class EventStream {
  // Hooks: onEvent(name, data, id), onLink(state), onDropped(), onResumed(), onRefused(n, max),
  // onLost(), onUnreadable(name), quiet() — true while a cancel is under way (drops are expected).
  constructor(endpoint, key, hooks) {
    this.endpoint = endpoint;
    this.key = key;
    this.hooks = hooks;
    this.lastEventId = 0;
    this.reopens = 0;
    this.dropped = false;
    this.source = null;
    this.closed = false;
    this.timer = null;
  }

  open() {
    const params = new URLSearchParams();
    // EventSource cannot send headers: the key goes as a query parameter.
    if (this.key) params.set("api_key", this.key);
    // A new EventSource sends no Last-Event-ID header; the query parameter carries it instead.
    if (this.lastEventId) params.set("last_event_id", String(this.lastEventId));
    const query = params.toString();
    const es = this.source = new EventSource(this.endpoint + (query ? "?" + query : ""));
    this.hooks.onLink(this.dropped ? "reconnecting" : "connecting");
    es.addEventListener("open", () => {
      this.reopens = 0;
      this.hooks.onLink("open");
      if (this.dropped) {
        this.dropped = false;
        this.hooks.onResumed();
      }
    });
    for (const name of EVENT_NAMES) {
      if (name !== "error") es.addEventListener(name, (e) => this.deliver(name, e));
    }
    // The server's `error` event and the browser's connection error share one name.
    es.addEventListener("error", (e) => (typeof e.data === "string" ? this.deliver("error", e) : this.broken(es)));
    return this;
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    if (this.source) this.source.close();
    this.source = null;
    this.hooks.onLink("closed");
  }

  deliver(name, e) {
    if (this.closed) return;
    const id = e.lastEventId ? Number(e.lastEventId) : null;
    if (id !== null && id <= this.lastEventId) return; // replayed after a reconnect: none twice
    if (id !== null) this.lastEventId = id;
    let data;
    try { data = JSON.parse(e.data); } catch (_) {
      this.hooks.onUnreadable(name);
      return;
    }
    this.hooks.onEvent(name, data, id);
  }

  broken(es) {
    if (this.closed || es !== this.source) return;
    if (this.hooks.quiet()) {
      // Cancelled: its `error` event may not come; the cancel's own timeout settles the page.
      if (es.readyState === EventSource.CLOSED) this.close();
      return;
    }
    this.dropped = true;
    if (es.readyState === EventSource.CONNECTING) {
      this.hooks.onLink("reconnecting");
      this.hooks.onDropped();
    } else if (this.reopens < MAX_REOPENS) {
      this.reopens += 1;
      this.hooks.onLink("reconnecting");
      this.hooks.onRefused(this.reopens, MAX_REOPENS);
      this.timer = setTimeout(() => { if (!this.closed) this.open(); }, REOPEN_DELAY_MS);
    } else {
      this.hooks.onLost();
    }
  }
}
