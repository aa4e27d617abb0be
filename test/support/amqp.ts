import amqp from 'amqplib';
import type { Topology } from '@decisum/shared';

/** A connection to the first node that answers, of one AMQP URL or several separated by commas (as AMQP_URL takes them). */
export async function connectAny(amqpUrl: string): Promise<amqp.ChannelModel> {
  let lastError: unknown;
  for (const url of amqpUrl.split(',')) {
    try {
      return await amqp.connect(url.trim());
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}

/** Removes a test prefix's queues and exchange. */
export async function deleteTopology(amqpUrl: string, t: Topology): Promise<void> {
  const conn = await connectAny(amqpUrl);
  try {
    const ch = await conn.createChannel();
    await ch.deleteQueue(t.jobs);
    await ch.deleteQueue(t.dead);
    await ch.deleteExchange(t.deadExchange);
    await ch.close();
  } finally {
    await conn.close();
  }
}
