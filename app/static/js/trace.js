// A hook for the browser tests: they define `window.harkenTrace` (an array) before the page loads
// to see which events the page applied. Users never have it, and then this does nothing.
export function trace(kind, detail) {
  const sink = window.harkenTrace;
  if (Array.isArray(sink)) sink.push(Object.assign({ kind, at: performance.now() }, detail));
}
