import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import { Broker, decodeMessage, encodeMessage, topologyFor } from '../src/broker';
import { AppError } from '../src/errors';
import { createLogger } from '../src/logger';
import { serviceUrls } from '../../test/support/services';
import { deleteTopology } from '../../test/support/amqp';

const logger = createLogger('test', 'silent');
const message = { id: 'j1', file: 'a.csv', options: { step: 10, offset: 0 } };

describe('Broker against the real RabbitMQ', () => {
  const topology = topologyFor(`test-broker-${randomUUID().slice(0, 8)}`, 3);
  let url: string;
  let broker: Broker;

  beforeAll(async () => {
    url = (await serviceUrls()).amqpUrl;
    broker = new Broker({ urls: [url], topology, logger });
    await broker.start();
  });
  afterAll(async () => {
    await broker.close();
    await deleteTopology(url, topology);
  });

  it('declares a quorum work queue whose rejected messages reach the dead-letter queue', async () => {
    const conn = await amqp.connect(url);
    try {
      const ch = await conn.createChannel();
      await broker.publish(message);
      const got = await ch.get(topology.jobs, { noAck: false });
      expect(got && decodeMessage(got.content)).toEqual(message);
      expect(got && got.properties.deliveryMode).toBe(2);
      ch.nack(got as amqp.GetMessage, false, false);
      const dead = await waitForMessage(ch, topology.dead);
      expect(decodeMessage(dead.content)).toEqual(message);
      expect(dead.properties.headers?.['x-first-death-queue']).toBe(topology.jobs);
      ch.ack(dead);
      // Declaring with other arguments fails: the limit and dead-lettering are really on the queue.
      const probe = await conn.createChannel();
      probe.on('error', () => undefined);
      await expect(probe.assertQueue(topology.jobs, { durable: true, arguments: { 'x-queue-type': 'classic' } })).rejects.toThrow(/PRECONDITION_FAILED/);
    } finally {
      await conn.close();
    }
  });

  it('dead-letters a message after the delivery limit', async () => {
    const conn = await amqp.connect(url);
    try {
      const ch = await conn.createChannel();
      await broker.publish({ ...message, id: 'j2' });
      // Limit 2 redeliveries for MAX_ATTEMPTS=3: the third requeue sends it to the dead-letter queue.
      for (let i = 0; i < 3; i++) {
        const m = await waitForMessage(ch, topology.jobs);
        ch.nack(m, false, true);
      }
      const dead = await waitForMessage(ch, topology.dead);
      expect(decodeMessage(dead.content)?.id).toBe('j2');
      expect(dead.properties.headers?.['x-first-death-reason']).toBe('delivery_limit');
      ch.ack(dead);
    } finally {
      await conn.close();
    }
  });

  it('refuses to publish with BROKER_UNAVAILABLE when not connected', async () => {
    const idle = new Broker({ urls: [url], topology, logger });
    await expect(idle.publish(message)).rejects.toMatchObject({ code: 'BROKER_UNAVAILABLE', status: 503 });
    await expect(idle.publish(message)).rejects.toBeInstanceOf(AppError);
  });

  it('takes a list of nodes and connects to the next when one refuses', async () => {
    // Nothing listens on port 1: the first node refuses at once, and the reconnect tries the second.
    const refusing = new URL(url);
    refusing.port = '1';
    const listed = new Broker({ urls: [refusing.toString(), url], topology, logger, reconnectMs: 50 });
    try {
      await listed.start();
      expect(listed.connected).toBe(true);
      await listed.publish({ ...message, id: 'j3' });
      const conn = await amqp.connect(url);
      try {
        const ch = await conn.createChannel();
        const got = await waitForMessage(ch, topology.jobs);
        expect(decodeMessage(got.content)?.id).toBe('j3');
        ch.ack(got);
      } finally {
        await conn.close();
      }
    } finally {
      await listed.close();
    }
  });

  it('tells a poison message from a job', () => {
    expect(decodeMessage(Buffer.from('not json'))).toBeUndefined();
    expect(decodeMessage(Buffer.from('{"id":"x"}'))).toBeUndefined();
    expect(decodeMessage(encodeMessage(message))).toEqual(message);
  });
});

async function waitForMessage(ch: amqp.Channel, queue: string): Promise<amqp.GetMessage> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const m = await ch.get(queue, { noAck: false });
    if (m) { return m; }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no message on ${queue}`);
}
