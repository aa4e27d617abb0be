import type { Broker, Channel, ChannelWrapper, ConsumeMessage, Logger } from '@decisum/shared';
import type { StopReason } from './lease';

/** A message, and how to settle it on the channel it came on. */
export interface Delivery {
  content: Buffer;
  headers: Record<string, unknown>;
  /** Aborts when that channel closes: the broker has put the message back for someone else. */
  lost: AbortSignal;
  settle(how: 'ack' | 'requeue' | 'reject'): void;
}

export interface DeliveryHandlers {
  /** A message of the work queue. */
  job(delivery: Delivery): Promise<void>;
  /** A message of the dead-letter queue. */
  dead(delivery: Delivery): Promise<void>;
}

/**
 * The executor's consumer channel: prefetch and a consumer on the work queue and one on the
 * dead-letter queue, set up again on every connection (amqp-connection-manager runs the setup).
 */
export class QueueConsumer {
  private wrapper?: ChannelWrapper;
  private current?: { channel: Channel; tags: string[] };
  private consuming = true;

  constructor(
    private readonly broker: Broker,
    private readonly prefetch: number,
    private readonly handlers: DeliveryHandlers,
    private readonly logger: Logger,
  ) {}

  /** Resolves once the consumers are on the broker. */
  async start(): Promise<void> {
    this.wrapper = this.broker.channel('consumer', (ch) => this.setup(ch));
    await this.broker.start();
    await this.wrapper.waitForConnect();
  }

  private async setup(channel: Channel): Promise<void> {
    if (!this.consuming) { return; }
    const lost = new AbortController();
    channel.once('close', () => lost.abort('channel-lost' satisfies StopReason));
    await channel.prefetch(this.prefetch);
    const { jobs, dead } = this.broker.topology;
    const consume = async (queue: string, handle: (d: Delivery) => Promise<void>) => {
      const { consumerTag } = await channel.consume(queue, (msg) => msg && void handle(delivery(channel, msg, lost.signal)), { noAck: false });
      return consumerTag;
    };
    const tags = [await consume(jobs, (d) => this.handlers.job(d)), await consume(dead, (d) => this.handlers.dead(d))];
    this.current = { channel, tags };
    this.logger.info({ queue: jobs, prefetch: this.prefetch }, 'consuming jobs');
  }

  /** Takes no more messages, on this connection or the next; the ones held can still be settled. */
  async stop(): Promise<void> {
    this.consuming = false;
    const current = this.current;
    for (const tag of current?.tags ?? []) { await current?.channel.cancel(tag).catch(() => undefined); }
  }

  /**
   * A quorum queue drops an ack still in flight when the connection closes under it (RabbitMQ 3.10):
   * closing the channel first waits for the broker to take our last acks.
   */
  async close(): Promise<void> {
    await this.wrapper?.close().catch(() => undefined);
  }
}

function delivery(channel: Channel, msg: ConsumeMessage, lost: AbortSignal): Delivery {
  return {
    content: msg.content,
    headers: msg.properties.headers ?? {},
    lost,
    settle(how) {
      try {
        if (how === 'ack') { channel.ack(msg); }
        else { channel.nack(msg, false, how === 'requeue'); }
      } catch {
        // The channel is gone: the broker has already put the message back.
      }
    },
  };
}
