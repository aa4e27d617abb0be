import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { untilNotified } from './wait';

export interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The status this receiver answered. */
  status: number;
}

/** What the receiver answers to its n-th request (1-based): a status, and headers. */
export type Answer = (n: number) => { status: number; headers?: Record<string, string> };

/** A webhook receiver on a loopback port that records every request and answers as told. */
export class Receiver {
  readonly received: Received[] = [];
  private readonly listeners = new Set<() => void>();

  private constructor(
    private readonly server: http.Server,
    private answer: Answer,
  ) {}

  static async start(answer: Answer = () => ({ status: 204 })): Promise<Receiver> {
    const server = http.createServer();
    const receiver = new Receiver(server, answer);
    server.on('request', (req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (d: string) => (body += d));
      req.on('end', () => {
        const { status, headers } = receiver.answer(receiver.received.length + 1);
        receiver.received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, status });
        res.writeHead(status, headers).end();
        for (const l of receiver.listeners) { l(); }
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return receiver;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  url(path = '/hook', host = '127.0.0.1'): string {
    return `http://${host}:${this.port}${path}`;
  }

  answering(answer: Answer): this {
    this.answer = answer;
    return this;
  }

  /** Resolves once `n` requests have come in. */
  until(n: number, timeoutMs = 20_000): Promise<Received[]> {
    return untilNotified(
      this.listeners,
      () => (this.received.length >= n ? this.received : undefined),
      timeoutMs,
      () => new Error(`the receiver got ${this.received.length} of ${n} requests within ${timeoutMs} ms`),
    );
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}
