import amqp from 'amqplib';
import type { Topology } from '@decisum/shared';

/** Removes a test prefix's queues and exchange. */
export async function deleteTopology(amqpUrl: string, t: Topology): Promise<void> {
  const conn = await amqp.connect(amqpUrl);
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
