import net from 'node:net';
import { once } from 'node:events';

/** What one proxied connection does to the bytes flowing from the server to the client. */
export interface ConnectionPlan {
  /** Forward this many response bytes, then close both sides (a dropped connection). */
  cutAfterBytes?: number;
  /** With cutAfterBytes: send a TCP reset instead of a clean close. */
  reset?: boolean;
  /** Forward this many response bytes, then forward nothing more (the connection stays open). */
  stallAfterBytes?: number;
  /** Forward at most this many bytes per second. */
  throttleBytesPerSec?: number;
}

export interface ProxyStats {
  connections: number;
  /** Request lines seen from clients, e.g. "GET /bucket/key HTTP/1.1". */
  requests: string[];
  /** Bytes forwarded from the server to clients, headers included. */
  bytesToClient: number;
  /** Of those, response body bytes (bodies framed by Content-Length). */
  bodyBytesToClient: number;
}

const emptyStats = (): ProxyStats => ({ connections: 0, requests: [], bytesToClient: 0, bodyBytesToClient: 0 });

const REQUEST_LINE = /(?:GET|HEAD|PUT|POST|DELETE) \S+ HTTP\/1\.1\r\n/g;

/** Tells response headers from bodies in a stream of Content-Length framed HTTP/1.1 responses. */
class ResponseFramer {
  private head = Buffer.alloc(0);
  private bodyLeft = 0;
  /** Methods of requests sent on this connection and not answered yet. */
  readonly methods: string[] = [];

  /** How many of piece's bytes are response body. */
  body(piece: Buffer): number {
    let body = 0;
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
    }
    return body;
  }
}

/**
 * A TCP proxy in front of a server that misbehaves on purpose: each new connection takes the next
 * plan from the queue (or the default plan) and may be cut, stalled or throttled.
 */
export class FaultProxy {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private plans: ConnectionPlan[] = [];
  private fallback: ConnectionPlan = {};
  stats: ProxyStats = emptyStats();

  private constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer((client) => this.handle(client));
  }

  static async start(target: { host: string; port: number }): Promise<FaultProxy> {
    const proxy = new FaultProxy(target);
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

  /** Plans for the next connections, in order; later ones get the default. */
  plan(...plans: ConnectionPlan[]): this {
    this.plans.push(...plans);
    return this;
  }

  setDefault(plan: ConnectionPlan): this {
    this.fallback = plan;
    return this;
  }

  reset(): void {
    this.plans = [];
    this.fallback = {};
    this.stats = emptyStats();
  }

  /** Drops every open connection now. */
  cutAll(): void {
    for (const s of this.sockets) { s.destroy(); }
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(client: net.Socket): void {
    const plan = this.plans.shift() ?? this.fallback;
    this.stats.connections += 1;
    const framer = new ResponseFramer();
    const upstream = net.connect(this.target.port, this.target.host);
    this.sockets.add(client);
    this.sockets.add(upstream);
    let closed = false;
    const closeBoth = (hard = false) => {
      if (closed) { return; }
      closed = true;
      upstream.destroy();
      if (hard) {
        client.resetAndDestroy();
      } else {
        // end() flushes what was written, so the client gets exactly the bytes counted.
        client.end();
        setTimeout(() => client.destroy(), 1000).unref();
      }
    };
    client.on('close', () => {
      this.sockets.delete(client);
      closeBoth();
    });
    upstream.on('close', () => {
      this.sockets.delete(upstream);
      if (!closed) { client.end(); }
    });
    client.on('error', () => closeBoth());
    upstream.on('error', () => closeBoth());

    client.on('data', (chunk: Buffer) => {
      const text = chunk.toString('latin1');
      for (const m of text.matchAll(REQUEST_LINE)) {
        this.stats.requests.push(m[0].trimEnd());
        framer.methods.push(m[0].slice(0, m[0].indexOf(' ')));
      }
      upstream.write(chunk);
    });

    let sent = 0;
    const write = async (piece: Buffer): Promise<void> => {
      if (piece.length === 0 || closed) { return; }
      sent += piece.length;
      this.stats.bytesToClient += piece.length;
      this.stats.bodyBytesToClient += framer.body(piece);
      if (!client.write(piece)) { await once(client, 'drain').catch(() => undefined); }
    };
    const forward = async (chunk: Buffer): Promise<void> => {
      const rest = chunk;
      const limit = plan.cutAfterBytes ?? plan.stallAfterBytes;
      if (limit !== undefined && sent + rest.length >= limit) {
        await this.throttled(rest.subarray(0, limit - sent), plan, write);
        if (plan.cutAfterBytes !== undefined) {
          closeBoth(plan.reset);
        } else {
          // Stalled: keep the connection open and silent until the client gives up.
          upstream.removeAllListeners('data');
          upstream.pause();
        }
        return;
      }
      await this.throttled(rest, plan, write);
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

  private async throttled(chunk: Buffer, plan: ConnectionPlan, write: (b: Buffer) => Promise<void>): Promise<void> {
    const rate = plan.throttleBytesPerSec;
    if (rate === undefined) { return write(chunk); }
    // Slices of a tenth of a second's budget.
    const slice = Math.max(1, Math.floor(rate / 10));
    for (let i = 0; i < chunk.length; i += slice) {
      await write(chunk.subarray(i, i + slice));
      await new Promise((r) => setTimeout(r, (1000 * Math.min(slice, chunk.length - i)) / rate));
    }
  }
}
