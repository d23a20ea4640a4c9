// The message strip under the controls: one box per key, dismissable, read out by screen readers.
import { el } from "../dom.js";

export class Messages {
  constructor(box) {
    this.box = box;
  }

  // `kind` is error, warn or info; a new message with the same `key` replaces the old one.
  show(kind, text, key) {
    if (key) this.clear(key);
    const msg = el("div", "msg msg-" + kind);
    if (key) msg.dataset.key = key;
    msg.dataset.kind = kind;
    const close = el("button", "msg-close", "×");
    close.type = "button";
    close.setAttribute("aria-label", "Dismiss");
    close.addEventListener("click", () => msg.remove());
    msg.append(el("span", "msg-text", text), close);
    this.box.appendChild(msg);
  }

  clear(key) {
    for (const old of this.box.querySelectorAll(`[data-key="${CSS.escape(key)}"]`)) old.remove();
  }

  clearAll() {
    this.box.replaceChildren();
  }
}
