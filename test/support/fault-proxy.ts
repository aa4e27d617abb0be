import net from 'node:net';
import { once } from 'node:events';

/** What one proxied connection does to the bytes flowing between client and server. */
export interface ConnectionPlan {
  /** Forward this many response bytes, then close both sides (a dropped connection). */
  cutAfterBytes?: number;
  /** With cutAfterBytes: send a TCP reset instead of a clean close. */
  reset?: boolean;
  /** Forward this many response bytes, then forward nothing more (the connection stays open). */
  stallAfterBytes?: number;
  /** Forward at most this many bytes per second. */
  throttleBytesPerSec?: number;
  /** Each request reaches the server this much later: added time to first byte. */
  firstByteDelayMs?: number;
  /** The share (0–1) of responses whose connection is cut at a random byte of their body. */
  cutShare?: number;
  /** Answer every request with this instead of asking the server, then close the connection. */
  respond?: CannedResponse;
}

export interface CannedResponse {
  status: number;
  reason: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface ProxyStats {
  connections: number;
  /** Request lines seen from clients, e.g. "GET /bucket/key HTTP/1.1". */
  requests: string[];
  /** The whole head of each request, headers included. */
  heads: string[];
  /** Bytes forwarded from the server to clients, headers included. */
  bytesToClient: number;
  /** Of those, response body bytes (bodies framed by Content-Length). */
  bodyBytesToClient: number;
  /** Responses cut mid-body by cutShare. */
  cuts: number;
}

const emptyStats = (): ProxyStats => ({ connections: 0, requests: [], heads: [], bytesToClient: 0, bodyBytesToClient: 0, cuts: 0 });

const REQUEST_HEADS = /(?:GET|HEAD|PUT|POST|DELETE) \S+ HTTP\/1\.1\r\n[\s\S]*?\r\n\r\n/g;
const REQUEST_HEAD = new RegExp(REQUEST_HEADS.source);

/** Tells response headers from bodies in a stream of Content-Length framed HTTP/1.1 responses. */
class ResponseFramer {
  private head = Buffer.alloc(0);
  private bodyLeft = 0;
  /** Methods of requests sent on this connection and not answered yet. */
  readonly methods: string[] = [];

  /** Whether every request sent has been answered in full. */
  get idle(): boolean {
    return this.methods.length === 0 && this.bodyLeft === 0 && this.head.length === 0;
  }

  /** How many of piece's bytes are response body, and where in piece each new body starts and how long it is. */
  feed(piece: Buffer): { body: number; bodies: { at: number; length: number }[] } {
    let body = 0;
    const bodies: { at: number; length: number }[] = [];
    let i = 0;
    while (i < piece.length) {
      if (this.bodyLeft > 0) {
        const n = Math.min(this.bodyLeft, piece.length - i);
        this.bodyLeft -= n;
        body += n;
        i += n;
        continue;
      }
      const combined = Buffer.concat([this.head, piece.subarray(i)]);
      const end = combined.indexOf('\r\n\r\n');
      if (end < 0) {
        this.head = combined;
        break;
      }
      i += end + 4 - this.head.length;
      this.head = Buffer.alloc(0);
      const text = combined.subarray(0, end).toString('latin1');
      const status = Number(text.slice(9, 12));
      const method = this.methods.shift();
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(text);
      this.bodyLeft = method === 'HEAD' || status === 204 || status === 304 ? 0 : Number(length?.[1] ?? 0);
      if (this.bodyLeft > 0) { bodies.push({ at: i, length: this.bodyLeft }); }
    }
    return { body, bodies };
  }
}

/** A small seeded generator, so a run's cuts can be repeated. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A TCP proxy in front of a server that misbehaves on purpose: each new connection takes the next
 * plan from the queue (or the default plan) and may be cut, stalled, throttled or delayed.
 */
export class FaultProxy {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly clients = new Set<net.Socket>();
  private readonly framers = new Set<ResponseFramer>();
  private plans: ConnectionPlan[] = [];
  private fallback: ConnectionPlan = {};
  private held: Promise<void> | undefined;
  private release_: (() => void) | undefined;
  private random: () => number;
  stats: ProxyStats = emptyStats();

  private constructor(
    private readonly target: { host: string; port: number },
    seed: number,
  ) {
    this.random = mulberry32(seed);
    this.server = net.createServer((client) => this.handle(client));
  }

  static async start(target: { host: string; port: number }, options: { seed?: number } = {}): Promise<FaultProxy> {
    const proxy = new FaultProxy(target, options.seed ?? 1);
    proxy.server.listen(0, '127.0.0.1');
    await once(proxy.server, 'listening');
    return proxy;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Client connections open now. */
  get openConnections(): number {
    return this.clients.size;
  }

  /** Whether every request forwarded so far has had its whole response forwarded back. */
  get quiet(): boolean {
    return [...this.framers].every((f) => f.idle);
  }

  /** Plans for the next connections, in order; later ones get the default. */
  plan(...plans: ConnectionPlan[]): this {
    this.plans.push(...plans);
    return this;
  }

  setDefault(plan: ConnectionPlan): this {
    this.fallback = plan;
    return this;
  }

  /** Requests from now on wait at the proxy until release(). */
  hold(): void {
    this.held ??= new Promise<void>((resolve) => (this.release_ = resolve));
  }

  release(): void {
    this.release_?.();
    this.held = undefined;
    this.release_ = undefined;
  }

  reset(): void {
    this.release();
    this.plans = [];
    this.fallback = {};
    this.stats = emptyStats();
  }

  /** Drops every open connection now. */
  cutAll(): void {
    for (const s of this.sockets) { s.destroy(); }
  }

  async close(): Promise<void> {
    this.release();
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(client: net.Socket): void {
    const plan = this.plans.shift() ?? this.fallback;
    this.stats.connections += 1;
    this.sockets.add(client);
    this.clients.add(client);
    client.on('close', () => {
      this.sockets.delete(client);
      this.clients.delete(client);
    });
    if (plan.respond) {
      this.answer(client, plan.respond);
      return;
    }
    const toClient = new ResponseFramer();
    const fromServer = new ResponseFramer();
    this.framers.add(toClient);
    const upstream = net.connect(this.target.port, this.target.host);
    this.sockets.add(upstream);
    let closed = false;
    const closeBoth = (hard = false) => {
      if (closed) { return; }
      closed = true;
      this.framers.delete(toClient);
      upstream.destroy();
      if (hard) {
        client.resetAndDestroy();
      } else {
        // end() flushes what was written, so the client gets exactly the bytes counted.
        client.end();
        setTimeout(() => client.destroy(), 1000).unref();
      }
    };
    client.on('close', () => closeBoth());
    upstream.on('close', () => {
      this.sockets.delete(upstream);
      this.framers.delete(toClient);
      if (!closed) { client.end(); }
    });
    client.on('error', () => closeBoth());
    upstream.on('error', () => closeBoth());

    // Requests go upstream in order, each after the hold (if any) and the first-byte delay.
    let sending = Promise.resolve();
    client.on('data', (chunk: Buffer) => {
      const heads = [...chunk.toString('latin1').matchAll(REQUEST_HEADS)].map((m) => m[0]);
      sending = sending.then(async () => {
        if (heads.length > 0) {
          await this.held;
          if (plan.firstByteDelayMs) { await sleep(plan.firstByteDelayMs); }
        }
        if (closed) { return; }
        for (const head of heads) {
          const method = head.slice(0, head.indexOf(' '));
          this.stats.requests.push(head.slice(0, head.indexOf('\r\n')));
          this.stats.heads.push(head);
          toClient.methods.push(method);
          fromServer.methods.push(method);
        }
        upstream.write(chunk);
      });
    });

    let sent = 0;
    let received = 0;
    /** The connection offset at which cutShare cuts the current response, if it does. */
    let cutAt: number | undefined;
    const pace = { due: 0 };
    const write = async (piece: Buffer): Promise<void> => {
      if (piece.length === 0 || closed) { return; }
      sent += piece.length;
      this.stats.bytesToClient += piece.length;
      this.stats.bodyBytesToClient += toClient.feed(piece).body;
      if (!client.write(piece)) { await once(client, 'drain').catch(() => undefined); }
    };
    const forward = async (chunk: Buffer): Promise<void> => {
      for (const b of fromServer.feed(chunk).bodies) {
        if (plan.cutShare && cutAt === undefined && this.random() < plan.cutShare) {
          cutAt = received + b.at + Math.floor(this.random() * b.length);
        }
      }
      received += chunk.length;
      const limits = [plan.cutAfterBytes, plan.stallAfterBytes, cutAt].filter((x): x is number => x !== undefined);
      const limit = limits.length > 0 ? Math.min(...limits) : undefined;
      if (limit !== undefined && sent + chunk.length >= limit) {
        await this.throttled(chunk.subarray(0, limit - sent), plan, pace, write);
        if (limit === cutAt) { this.stats.cuts += 1; }
        if (limit === plan.stallAfterBytes && limit !== cutAt && limit !== plan.cutAfterBytes) {
          // Stalled: keep the connection open and silent until the client gives up.
          upstream.removeAllListeners('data');
          upstream.pause();
        } else {
          closeBoth(plan.reset);
        }
        return;
      }
      await this.throttled(chunk, plan, pace, write);
    };
    upstream.on('data', (chunk: Buffer) => {
      upstream.pause();
      forward(chunk).then(
        () => {
          if (!closed && upstream.listenerCount('data') > 0) { upstream.resume(); }
        },
        () => closeBoth(),
      );
    });
  }

  /** A canned answer to the first request, then the connection closes. */
  private answer(client: net.Socket, response: CannedResponse): void {
    let seen = '';
    client.on('error', () => client.destroy());
    client.on('data', (chunk: Buffer) => {
      seen += chunk.toString('latin1');
      const head = REQUEST_HEAD.exec(seen)?.[0];
      if (head === undefined) { return; }
      client.removeAllListeners('data');
      this.stats.requests.push(head.slice(0, head.indexOf('\r\n')));
      this.stats.heads.push(head);
      const body = Buffer.from(response.body ?? '');
      const headers = { ...response.headers, 'Content-Length': String(body.length), Connection: 'close' };
      const lines = [`HTTP/1.1 ${response.status} ${response.reason}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
      client.end(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), head.startsWith('HEAD') ? Buffer.alloc(0) : body]));
    });
  }

  /** Writes chunk at no more than the plan's rate: a token bucket per connection, so timer slack does not lower the rate. */
  private async throttled(chunk: Buffer, plan: ConnectionPlan, pace: { due: number }, write: (b: Buffer) => Promise<void>): Promise<void> {
    const rate = plan.throttleBytesPerSec;
    if (rate === undefined) { return write(chunk); }
    // Slices of 20 ms of budget.
    const slice = Math.max(1, Math.floor(rate / 50));
    for (let i = 0; i < chunk.length; i += slice) {
      const piece = chunk.subarray(i, i + slice);
      await write(piece);
      const now = performance.now();
      // Up to 50 ms of lag is caught up later, so a late timer does not lower the average rate.
      pace.due = Math.max(pace.due, now - 50) + (1000 * piece.length) / rate;
      // Sleep only when 10 ms ahead: a timer per 64 KB chunk would cost the proxy more CPU than the data.
      if (pace.due - now > 10) { await sleep(pace.due - now); }
    }
  }
}
