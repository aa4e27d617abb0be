/** One Server-Sent Event. `id` is set when the event carried one. */
export interface SseMessage {
  event: string;
  data: string;
  id?: string;
}

/**
 * Splits a text/event-stream into events, as the HTML standard's EventSource reads it: lines end in
 * CRLF, LF or CR; `:` starts a comment; a blank line ends an event; data lines join with a newline.
 */
export class SseParser {
  private rest = '';
  private data: string[] = [];
  private event = '';
  private id: string | undefined;

  /** Feeds a piece of the stream; returns the events it completed. */
  push(text: string): SseMessage[] {
    const out: SseMessage[] = [];
    let buffer = this.rest + text;
    // A CR at the end may be the first half of a CRLF: the line it ends waits for the next piece.
    const cr = buffer.endsWith('\r') ? '\r' : '';
    if (cr) { buffer = buffer.slice(0, -1); }
    const lines = buffer.split(/\r\n|\n|\r/);
    this.rest = (lines.pop() ?? '') + cr;
    for (const line of lines) {
      if (line === '') {
        if (this.data.length > 0) { out.push({ event: this.event || 'message', data: this.data.join('\n'), ...(this.id === undefined ? {} : { id: this.id }) }); }
        this.data = [];
        this.event = '';
        this.id = undefined;
        continue;
      }
      if (line.startsWith(':')) { continue; }
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') { this.data.push(value); }
      else if (field === 'event') { this.event = value; }
      else if (field === 'id' && !value.includes('\0')) { this.id = value; }
    }
    return out;
  }
}
