import { EventEmitter } from 'node:events';
import amqp, { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage } from 'amqplib';
import { AppError } from './errors';
import { JobMessageSchema, type JobMessage } from './job';
import type { Logger } from './logger';

export interface Topology {
  /** The quorum work queue. */
  jobs: string;
  /** Where messages go past the delivery limit or when rejected. */
  deadExchange: string;
  dead: string;
  deliveryLimit: number;
}

export function topologyFor(prefix: string, maxAttempts: number): Topology {
  return {
    jobs: `${prefix}.jobs`,
    deadExchange: `${prefix}.dlx`,
    dead: `${prefix}.jobs.dead`,
    // x-delivery-limit counts redeliveries, so the first delivery is free.
    deliveryLimit: Math.max(0, maxAttempts - 1),
  };
}

/** Declares exchanges and queues; idempotent, and run again on every reconnect. */
export async function assertTopology(ch: Channel, t: Topology): Promise<void> {
  await ch.assertExchange(t.deadExchange, 'fanout', { durable: true });
  await ch.assertQueue(t.dead, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await ch.bindQueue(t.dead, t.deadExchange, '');
  await ch.assertQueue(t.jobs, {
    durable: true,
    arguments: {
      'x-queue-type': 'quorum',
      'x-delivery-limit': t.deliveryLimit,
      'x-dead-letter-exchange': t.deadExchange,
    },
  });
}

export function encodeMessage(msg: JobMessage): Buffer {
  return Buffer.from(JSON.stringify(msg));
}

/** Undefined for a message that is not a job: a poison message. */
export function decodeMessage(content: Buffer): JobMessage | undefined {
  try {
    const parsed = JobMessageSchema.safeParse(JSON.parse(content.toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export interface BrokerOptions {
  url: string;
  topology: Topology;
  logger: Logger;
  publishTimeoutMs?: number;
  maxReconnectDelayMs?: number;
}

type Setup = (conn: ChannelModel) => Promise<void>;

/**
 * One AMQP connection that reconnects with backoff and runs every registered setup
 * (topology, consumers) again on each new connection.
 */
export class Broker extends EventEmitter {
  private conn?: ChannelModel;
  private publisher?: ConfirmChannel;
  private readonly setups: Setup[] = [];
  private closing = false;
  private attempt = 0;
  private timer?: NodeJS.Timeout;
  private firstConnect?: Promise<void>;

  constructor(private readonly options: BrokerOptions) {
    super();
  }

  get connected(): boolean {
    return this.publisher !== undefined;
  }

  get topology(): Topology {
    return this.options.topology;
  }

  /** Adds a setup that runs now (if connected) and after every reconnect. */
  async use(setup: Setup): Promise<void> {
    this.setups.push(setup);
    if (this.conn) { await setup(this.conn); }
  }

  /** Resolves on the first connection; keeps reconnecting in the background after that. */
  start(): Promise<void> {
    this.firstConnect ??= new Promise<void>((resolve) => {
      this.once('connected', () => resolve());
      void this.connect();
    });
    return this.firstConnect;
  }

  private async connect(): Promise<void> {
    if (this.closing) { return; }
    const { logger, url, topology } = this.options;
    let conn: ChannelModel | undefined;
    try {
      conn = await amqp.connect(url, { timeout: 5000 });
      conn.on('error', (err: Error) => logger.warn({ err }, 'amqp connection error'));
      conn.on('close', () => this.lost(conn));
      const publisher = await conn.createConfirmChannel();
      publisher.on('error', (err: Error) => logger.warn({ err }, 'amqp publish channel error'));
      publisher.on('close', () => {
        // A channel closed by the broker leaves the connection up: start over so publishing works again.
        if (this.conn === conn && !this.closing) { void conn?.close().catch(() => undefined); }
      });
      await assertTopology(publisher, topology);
      this.conn = conn;
      this.publisher = publisher;
      for (const setup of this.setups) { await setup(conn); }
      this.attempt = 0;
      logger.info({ queue: topology.jobs }, 'amqp connected');
      this.emit('connected');
    } catch (err) {
      logger.warn({ err }, 'amqp connect failed');
      if (conn) { await conn.close().catch(() => undefined); }
      else { this.schedule(); }
    }
  }

  private lost(conn: ChannelModel | undefined): void {
    if (conn !== undefined && this.conn !== undefined && this.conn !== conn) { return; }
    const wasUp = this.conn !== undefined;
    this.conn = undefined;
    this.publisher = undefined;
    if (this.closing) { return; }
    if (wasUp) {
      this.options.logger.warn('amqp connection lost; reconnecting');
      this.emit('disconnected');
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.closing || this.timer) { return; }
    const max = this.options.maxReconnectDelayMs ?? 10_000;
    const delay = Math.min(max, 100 * 2 ** this.attempt++) * (0.5 + Math.random() / 2);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.connect();
    }, delay);
  }

  /** Resolves once the broker confirmed the message; BROKER_UNAVAILABLE otherwise. */
  async publish(msg: JobMessage): Promise<void> {
    const ch = this.publisher;
    if (!ch) { throw new AppError('BROKER_UNAVAILABLE', 'the message broker is unavailable; try again shortly', { status: 503 }); }
    const timeoutMs = this.options.publishTimeoutMs ?? 5000;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new AppError('BROKER_UNAVAILABLE', 'the message broker did not confirm in time', { status: 503 })),
        timeoutMs,
      );
      try {
        ch.sendToQueue(
          this.options.topology.jobs,
          encodeMessage(msg),
          { persistent: true, contentType: 'application/json', messageId: msg.id },
          (err: unknown) => {
            clearTimeout(timer);
            if (err) { reject(new AppError('BROKER_UNAVAILABLE', 'the message broker refused the message', { status: 503, cause: err })); }
            else { resolve(); }
          },
        );
      } catch (err) {
        clearTimeout(timer);
        reject(new AppError('BROKER_UNAVAILABLE', 'the message broker is unavailable', { status: 503, cause: err }));
      }
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.timer);
    const conn = this.conn;
    this.conn = undefined;
    this.publisher = undefined;
    if (conn) { await conn.close().catch(() => undefined); }
  }
}

export type { ConsumeMessage, Channel, ChannelModel };
