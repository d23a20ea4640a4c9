// Audio chunks to the server one at a time and in order, retrying the same chunk_seq on transient
// failures. Slices may be queued before the session exists (the microphone records at once).
import { delayMs, shouldRetry, sleep } from "./backoff.js";

export class ChunkUploader {
  // `send(seq, blob)` posts one chunk and resolves with the server's receipt. The hooks:
  // onSent(bytesSent), onRetry(err, seq, waitMs), onRecovered(), onSkipped(err, seq), onFatal(err, seq).
  constructor(send, policy, hooks) {
    this.send = send;
    this.policy = policy;
    this.hooks = hooks;
    this.queue = [];
    this.nextSeq = 0;
    this.sentBytes = 0;
    this.ready = false;
    this.running = false;
    this.stopped = false;
    this.waiters = [];
  }

  push(blob) {
    if (this.stopped || !blob || blob.size === 0) return;
    this.queue.push(blob);
    this.pump();
  }

  // The session exists: start posting from `nextSeq`.
  begin(nextSeq) {
    this.nextSeq = nextSeq;
    this.ready = true;
    this.pump();
  }

  // Drops what is queued and posts nothing more.
  abort() {
    this.stopped = true;
    this.queue.length = 0;
    if (!this.running) this.wake();
  }

  get pending() {
    return this.queue.length;
  }

  // Resolves once everything queued so far is sent, skipped or dropped.
  drained() {
    if (!this.running && (!this.queue.length || this.stopped)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  wake() {
    for (const resolve of this.waiters.splice(0)) resolve();
  }

  async pump() {
    if (this.running || !this.ready) return;
    this.running = true;
    let attempt = 0;
    while (this.queue.length && !this.stopped) {
      const blob = this.queue[0];
      const seq = this.nextSeq;
      try {
        const receipt = await this.send(seq, blob);
        if (this.stopped) break;
        this.queue.shift();
        this.sentBytes += blob.size;
        this.nextSeq = typeof receipt.next_chunk_seq === "number" ? receipt.next_chunk_seq : seq + 1;
        if (attempt) this.hooks.onRecovered();
        attempt = 0;
        this.hooks.onSent(this.sentBytes);
      } catch (err) {
        if (this.stopped) break;
        const expected = err.extra && err.extra.expected_chunk_seq;
        if (err.code === "chunk_out_of_order" && typeof expected === "number" && expected > seq) {
          // A retry whose first try was accepted but whose answer was lost: skip ahead.
          while (expected > this.nextSeq && this.queue.length) {
            this.sentBytes += this.queue.shift().size;
            this.nextSeq += 1;
          }
          continue;
        }
        if (shouldRetry(this.policy, attempt, err)) {
          const wait = delayMs(this.policy, attempt, err);
          attempt += 1;
          this.hooks.onRetry(err, seq, wait);
          await sleep(wait);
          continue;
        }
        if (err.code === "invalid_chunk" && seq > 0) {
          // The server keeps the session usable; this slice is lost but later ones may decode.
          this.queue.shift();
          attempt = 0;
          this.hooks.onSkipped(err, seq);
          continue;
        }
        this.stopped = true;
        this.queue.length = 0;
        this.hooks.onFatal(err, seq);
      }
    }
    this.running = false;
    this.wake();
  }
}
