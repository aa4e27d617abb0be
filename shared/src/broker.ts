import { AmqpConnectionManagerClass, type AmqpConnectionManager, type ChannelWrapper } from 'amqp-connection-manager';
import type { Channel, ConfirmChannel, ConsumeMessage } from 'amqplib';
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
  /** One or more nodes; a reconnect tries the next. */
  urls: string[];
  topology: Topology;
  logger: Logger;
  publishTimeoutMs?: number;
  /** Wait between connection attempts; 1 s when absent. */
  reconnectMs?: number;
}

/** Runs on every new channel, after the topology is declared: consumers, prefetch. */
export type ChannelSetup = (ch: Channel) => Promise<void> | void;

const unavailable = (detail: string, cause?: unknown) => new AppError('BROKER_UNAVAILABLE', detail, { status: 503, cause });

/**
 * The process's AMQP connection (amqp-connection-manager: it reconnects, round-robin over the nodes,
 * and runs every channel's setup again on each new connection) and the confirm channel jobs are
 * published on. Consumers open their own channels with `channel()`.
 */
export class Broker {
  private readonly manager: AmqpConnectionManager;
  private readonly publisher: ChannelWrapper;
  private publisherUp = false;
  private started?: Promise<void>;
  private closing = false;
  private failures = 0;
  private restart?: NodeJS.Timeout;

  constructor(private readonly options: BrokerOptions) {
    const { logger } = options;
    this.manager = new AmqpConnectionManagerClass(options.urls, {
      reconnectTimeInSeconds: (options.reconnectMs ?? 1000) / 1000,
      connectionOptions: { timeout: 5000 },
    });
    this.manager.on('connect', () => {
      this.failures = 0;
      logger.info({ queue: options.topology.jobs }, 'amqp connected');
    });
    this.manager.on('disconnect', ({ err }) => {
      if (!this.closing) { logger.warn({ err }, 'amqp connection lost; reconnecting'); }
    });
    this.manager.on('connectFailed', ({ err }) => {
      // One line per outage, not one per attempt.
      if (this.failures++ === 0) { logger.warn({ err }, 'amqp connect failed; retrying'); }
    });
    this.publisher = this.channel(
      'publisher',
      (ch) => {
        ch.once('close', () => (this.publisherUp = false));
        this.publisherUp = true;
      },
      { confirm: true },
    );
  }

  /** True while a message can be published and confirmed. */
  get connected(): boolean {
    return this.publisherUp;
  }

  get topology(): Topology {
    return this.options.topology;
  }

  /** Connects; resolves once the topology is declared, and keeps reconnecting in the background for good. */
  start(): Promise<void> {
    this.started ??= (async () => {
      // Rejects only on refused credentials; the manager keeps trying meanwhile.
      this.manager.connect().catch((err: unknown) => this.options.logger.error({ err }, 'amqp connect refused'));
      await this.publisher.waitForConnect();
    })();
    return this.started;
  }

  /**
   * A channel whose setup (after the topology) runs on every connection. A channel the broker closes
   * on its own leaves the connection up, so the connection is started over to bring the channel back.
   */
  channel(name: string, setup: ChannelSetup, { confirm = false } = {}): ChannelWrapper {
    const { logger, topology } = this.options;
    const wrapper = this.manager.createChannel({
      name,
      confirm,
      setup: async (ch: ConfirmChannel) => {
        ch.on('error', (err: Error) => {
          logger.warn({ err, channel: name }, 'amqp channel closed by the broker; reconnecting');
          this.reconnectSoon();
        });
        await assertTopology(ch, topology);
        await setup(ch);
      },
    });
    wrapper.on('error', (err: Error) => logger.warn({ err, channel: name }, 'amqp channel setup failed'));
    return wrapper;
  }

  /** After the reconnect wait, so a channel the broker keeps refusing does not spin. */
  private reconnectSoon(): void {
    if (this.closing || this.restart) { return; }
    this.restart = setTimeout(() => {
      this.restart = undefined;
      if (!this.closing) { this.manager.reconnect(); }
    }, this.options.reconnectMs ?? 1000);
  }

  /** Resolves once the broker confirmed the message; BROKER_UNAVAILABLE (nothing was queued) otherwise. */
  async publish(msg: JobMessage): Promise<void> {
    if (!this.connected) { throw unavailable('the message broker is unavailable; try again shortly'); }
    try {
      await this.publisher.sendToQueue(this.options.topology.jobs, encodeMessage(msg), {
        persistent: true,
        contentType: 'application/json',
        messageId: msg.id,
        // A message not confirmed in time is dropped from the wrapper's queue, so it is never sent late.
        timeout: this.options.publishTimeoutMs ?? 5000,
      });
    } catch (err) {
      throw unavailable(
        err instanceof Error && err.message === 'timeout' ? 'the message broker did not confirm in time' : 'the message broker refused the message',
        err,
      );
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    this.publisherUp = false;
    clearTimeout(this.restart);
    await this.manager.close();
  }
}

export type { Channel, ChannelWrapper, ConsumeMessage };
