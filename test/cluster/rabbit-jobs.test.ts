import { startRabbitCluster, type RabbitCluster } from '../support/clusters';
import { jobOf, problemOf } from '../support/http';
import { Cluster } from '../support/processes';
import { serviceUrls } from '../support/services';
import { waitFor } from '../support/wait';
import { expectSums, SAMPLE_EXPECTED, sampleCsv } from '../reliability/helpers';

/**
 * Real API and executor processes on a private three-node RabbitMQ cluster (AMQP_URL lists all
 * three). The node leading the work queue is killed (-9) while jobs are queued: the API moves to a
 * node left and takes submissions again, executors started afterwards get every queued job from the
 * nodes left, and each job is written once, succeeded with the reference sample's sums.
 */

let rabbit: RabbitCluster | undefined;
let cluster: Cluster | undefined;

beforeAll(async () => {
  rabbit = await startRabbitCluster(3);
  const { redisUrl } = await serviceUrls();
  cluster = await Cluster.start({ redisUrl, amqpUrl: rabbit.urls.join(','), apis: 1, executors: 0 });
  await waitFor(async () => ((await fetch(`${cluster!.url}/readyz`)).status === 200 ? true : undefined), { what: 'the API ready' });
}, 240_000);

afterAll(async () => {
  try {
    await cluster?.stop();
  } finally {
    await rabbit?.destroy();
  }
}, 120_000);

test('the work queue leader killed while jobs are queued: every accepted job finishes once with the right sums', async () => {
  const c = cluster!;
  const file = c.writeFile('sample.csv', sampleCsv());
  const accepted: string[] = [];
  const submit = async (): Promise<number> => {
    const res = await c.submit({ file }).catch(() => ({ status: 0, body: undefined }));
    if (res.status === 202) { accepted.push(jobOf(res).id); }
    else if (res.status === 503) { expect(problemOf(res).code).toBe('BROKER_UNAVAILABLE'); }
    return res.status;
  };

  for (let i = 0; i < 30; i++) { expect(await submit()).toBe(202); }
  expect(await c.queueDepth()).toBe(30);
  // Replicated on every node, so a majority is left whichever one dies.
  const members = JSON.parse(await rabbit!.nodes[0].ctl('list_queues', 'name', 'members', '--formatter', 'json', '--quiet')) as {
    name: string;
    members: string[];
  }[];
  expect(members.find((q) => q.name === c.topology.jobs)?.members.sort()).toEqual(rabbit!.nodes.map((n) => n.nodeName).sort());

  const leader = await rabbit!.leaderOf(c.topology.jobs);
  await leader.stop('crash');

  // The API finds a node left: submissions are answered 202 or 503 meanwhile, then 202 again.
  const statuses: number[] = [];
  await waitFor(
    async () => {
      statuses.push(await submit());
      return statuses.slice(-3).every((s) => s === 202) && statuses.length >= 3 ? true : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 100, what: 'the API to take submissions on the nodes left' },
  );
  expect(statuses.filter((s) => s !== 202 && s !== 503)).toEqual([]);
  // Executors whose AMQP_URL still names the dead node connect to one that answers.
  await Promise.all([c.addExecutor(), c.addExecutor()]);
  for (const id of accepted) { expectSums(await c.waitForJobViaApi(id, 120_000), SAMPLE_EXPECTED); }
  await c.waitForNoActive(60_000);
  const written = c.loggedEverywhere('job succeeded').filter((l) => l.written === true).map((l) => l.jobId);
  expect(written.sort()).toEqual([...accepted].sort());
  expect(await c.queueDepth()).toBe(0);
}, 300_000);
