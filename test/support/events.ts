import http from 'node:http';
import { SseParser, type SseMessage } from '../../api/src/cli/sse';
import { untilNotified } from './wait';

/**
 * A client of GET /api/v1/events that keeps everything it read: the events, parsed by the CLI's
 * parser, and the raw text (comments included), so a test can wait on either.
 */
export class EventClient {
  readonly messages: SseMessage[] = [];
  raw = '';
  private readonly parser = new SseParser();
  private readonly listeners = new Set<() => void>();
  private ended = false;

  private constructor(
    private readonly req: http.ClientRequest,
    readonly res: http.IncomingMessage,
  ) {
    res.setEncoding('utf8');
    res.on('data', (text: string) => {
      this.raw += text;
      this.messages.push(...this.parser.push(text));
      this.notify();
    });
    res.on('close', () => {
      this.ended = true;
      this.notify();
    });
  }

  /** Opens the stream; resolves once the server answered, with its status (a problem's body is in `raw`). */
  static open(base: string, options: { job?: string; lastEventId?: string; token?: string } = {}): Promise<EventClient> {
    const url = new URL('/api/v1/events', base);
    if (options.job !== undefined) { url.searchParams.set('job', options.job); }
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (options.lastEventId !== undefined) { headers['last-event-id'] = options.lastEventId; }
    if (options.token !== undefined) { headers.authorization = `Bearer ${options.token}`; }
    return new Promise((resolve, reject) => {
      const req = http.get(url, { headers }, (res) => resolve(new EventClient(req, res)));
      req.on('error', reject);
    });
  }

  get status(): number {
    return this.res.statusCode ?? 0;
  }

  /** The `job` events' jobs, in order, for one job id. */
  jobs(id?: string): { id?: string; status: string; attempts: number }[] {
    return this.messages
      .filter((m) => m.event === 'job')
      .map((m) => ({ eventId: m.id, ...(JSON.parse(m.data) as { id: string; status: string; attempts: number }) }))
      .filter((j) => id === undefined || j.id === id)
      .map((j) => ({ id: j.eventId, status: j.status, attempts: j.attempts }));
  }

  /** Waits until `check` holds over what was read so far; fails with what was read. */
  until<T>(check: (client: EventClient) => T | undefined, { timeoutMs = 15_000, what = 'an event' } = {}): Promise<T> {
    return untilNotified(
      this.listeners,
      () => {
        const found = check(this);
        if (found === undefined && this.ended) { throw new Error(`the stream ended before ${what}:\n${this.raw}`); }
        return found;
      },
      timeoutMs,
      () => new Error(`no ${what} within ${timeoutMs} ms; read:\n${this.raw}`),
    );
  }

  /** The first event of this kind (and matching `match`) from index `from` on. */
  next(event: string, match: (data: unknown) => boolean = () => true, from = 0): Promise<SseMessage> {
    return this.until((c) => c.messages.slice(from).find((m) => m.event === event && match(JSON.parse(m.data))), { what: `a ${event} event` });
  }

  close(): void {
    this.req.destroy();
  }

  private notify(): void {
    for (const l of this.listeners) { l(); }
  }
}
