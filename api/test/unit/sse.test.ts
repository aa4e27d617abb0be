import { SseParser } from '../../src/cli/sse';

describe('SseParser: text/event-stream as EventSource reads it', () => {
  it('reads events with an id, an event name and data; a comment is no event', () => {
    const parser = new SseParser();
    expect(parser.push('retry: 2000\n\n: keep-alive\n\nid: 1-0\nevent: job\ndata: {"a":1}\n\nevent: active\ndata: {"active":0}\n\n')).toEqual([
      { event: 'job', data: '{"a":1}', id: '1-0' },
      { event: 'active', data: '{"active":0}' },
    ]);
  });

  it('joins data lines with a newline, names an unnamed event "message", and takes the field without its first space only', () => {
    expect(new SseParser().push('data: a\ndata:  b\ndata\n\n')).toEqual([{ event: 'message', data: 'a\n b\n' }]);
  });

  it('holds an event cut across pieces until its blank line, CRLF split between two pieces included', () => {
    const parser = new SseParser();
    const text = 'id: 7-1\r\nevent: job\r\ndata: {"id":"x"}\r\n\r\nevent: gone\rdata: {}\r\r\n';
    const out = [];
    for (const piece of text.match(/[\s\S]{1,3}/g)!) { out.push(...parser.push(piece)); }
    expect(out).toEqual([
      { event: 'job', data: '{"id":"x"}', id: '7-1' },
      { event: 'gone', data: '{}' },
    ]);
    expect(new SseParser().push('event: job\ndata: {}')).toEqual([]);
  });

  it('ignores unknown fields and an id holding NUL', () => {
    expect(new SseParser().push('foo: bar\nid: a\u0000b\ndata: x\n\n')).toEqual([{ event: 'message', data: 'x' }]);
  });
});
