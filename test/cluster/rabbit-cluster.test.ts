import amqp from 'amqplib';
import { startRabbitCluster, type RabbitCluster } from '../support/clusters';
import { waitFor } from '../support/wait';

/**
 * A private three-node RabbitMQ cluster (one Erlang cookie, joined with rabbitmqctl join_cluster).
 * A quorum queue keeps every confirmed message when the node leading it is killed, takes new ones
 * on the nodes left, and hands them all out from any of them.
 */

let cluster: RabbitCluster;

beforeAll(async () => {
  cluster = await startRabbitCluster(3);
}, 240_000);

afterAll(() => cluster?.destroy(), 120_000);

async function publishConfirmed(url: string, queue: string, bodies: string[]): Promise<void> {
  const conn = await amqp.connect(url);
  try {
    const ch = await conn.createConfirmChannel();
    for (const b of bodies) { ch.sendToQueue(queue, Buffer.from(b), { persistent: true }); }
    await ch.waitForConfirms();
  } finally {
    await conn.close();
  }
}

test('a quorum queue keeps its confirmed messages when its leader node is killed', async () => {
  const queue = `decisum-cluster-test-${Date.now()}`;
  const setup = await amqp.connect(cluster.urls[0]);
  const ch = await setup.createChannel();
  await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await setup.close();
  const members = JSON.parse(await cluster.nodes[0].ctl('list_queues', 'name', 'members', '--formatter', 'json', '--quiet')) as {
    name: string;
    members: string[];
  }[];
  expect(members.find((q) => q.name === queue)?.members.sort()).toEqual(cluster.nodes.map((n) => n.nodeName).sort());

  const before = Array.from({ length: 200 }, (_, i) => `before-${i}`);
  await publishConfirmed(cluster.urls[1], queue, before);

  const leader = await cluster.leaderOf(queue);
  await leader.stop('crash');
  const survivors = cluster.nodes.filter((n) => n !== leader);
  const next = await waitFor(
    async () => {
      const l = await cluster.leaderOf(queue);
      return l !== leader ? l : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 500, what: `a new leader of ${queue}` },
  );
  expect(survivors).toContain(next);

  // The two nodes left are a majority: they take new messages too.
  const after = Array.from({ length: 50 }, (_, i) => `after-${i}`);
  await publishConfirmed(survivors[0].url, queue, after);

  const conn = await amqp.connect(survivors[1].url);
  try {
    const consumer = await conn.createChannel();
    const expected = [...before, ...after];
    const got: string[] = [];
    await waitFor(
      async () => {
        for (let msg = await consumer.get(queue); msg !== false; msg = await consumer.get(queue)) {
          got.push(msg.content.toString());
          consumer.ack(msg);
        }
        return got.length >= expected.length ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: `${expected.length} messages from ${queue}` },
    );
    expect(got.sort()).toEqual(expected.sort());
    expect(await consumer.get(queue)).toBe(false);
    await consumer.deleteQueue(queue);
  } finally {
    await conn.close();
  }
}, 180_000);
