// Server-Sent Events read from a fetch() body: EventSource can only GET, and a whole-file
// analysis (POST /analyze/stream) answers its upload with the event stream.
// Parsed as the SSE standard says: lines end in CRLF, LF or CR; a line starting with `:` is a
// comment (the server's keepalives); a message is dispatched at a blank line, and one cut off by
// the end of the stream is dropped, never delivered half-read.

const LINE_END = /\r\n|\r|\n/;

// Yields { event, data, id } (id a number or null) for each complete message of `body`.
export async function* sseMessages(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let message = { event: "", data: [], id: null };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = LINE_END.exec(buffer)) !== null) {
        // A CR that ends the buffer may be the first half of a CRLF: wait for the next read.
        if (end[0] === "\r" && end.index === buffer.length - 1) break;
        const line = buffer.slice(0, end.index);
        buffer = buffer.slice(end.index + end[0].length);
        if (line === "") {
          if (message.data.length) {
            yield { event: message.event || "message", data: message.data.join("\n"), id: message.id };
          }
          message = { event: "", data: [], id: null };
        } else if (!line.startsWith(":")) {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let text = colon < 0 ? "" : line.slice(colon + 1);
          if (text.startsWith(" ")) text = text.slice(1);
          if (field === "event") message.event = text;
          else if (field === "data") message.data.push(text);
          else if (field === "id" && /^\d+$/.test(text)) message.id = Number(text);
        }
      }
    }
  } finally {
    // Left early (done, cancel): cancelling the body closes the connection, which stops the work.
    reader.cancel().catch(() => {});
  }
}
