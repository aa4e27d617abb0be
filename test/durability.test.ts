import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { ArchivedJobSchema } from '@decisum/shared';
import { startStack, type Stack } from './support/stack';
import { SAMPLE } from './support/sample';
import { jobOf, problemOf } from './support/http';
import { waitFor } from './support/wait';

/**
 * The results archive and the Redis epoch through the in-process API and executor: every finished
 * job is archived before its message is acked, GET reads the archive when Redis has no record, the
 * archive's folder is out of the API's reach, and a Redis that came back without its data is noticed.
 */

let stack: Stack | undefined;

beforeAll(async () => {
  stack = await startStack({ executors: 1 });
}, 60_000);

afterAll(() => stack?.stop(), 30_000);

const api = () => request(stack!.url);

test('a finished job is archived, and GET answers it from the archive once Redis has no record', async () => {
  const file = stack!.writeFile('sample.csv', fs.readFileSync(SAMPLE));
  const { body } = await api().post('/api/v1/jobs').send({ file }).expect(202);
  const id = jobOf({ body }).id;
  const done = await stack!.waitForJob(id);
  expect(done.status).toBe('succeeded');
  const doc = path.join(stack!.dataDir, '.decisum', 'results', stack!.config.prefix, `${id}.json`);
  await waitFor(() => (fs.existsSync(doc) ? true : undefined), { what: 'the archive document' });
  expect(ArchivedJobSchema.parse(JSON.parse(fs.readFileSync(doc, 'utf8'))).job).toEqual(done);

  await stack!.redis.del(`${stack!.config.prefix}:job:${id}`);
  expect(jobOf(await api().get(`/api/v1/jobs/${id}`).expect(200))).toEqual(done);
  expect(jobOf(await api().get(`/api/v1/jobs/${id}?wait=5`).expect(200))).toEqual(done);
  const missing = await api().get('/api/v1/jobs/00000000-0000-4000-8000-000000000000').expect(404);
  expect(problemOf(missing).code).toBe('JOB_NOT_FOUND');
});

test('a job on a file in the archive folder is refused with 403 PATH_RESERVED', async () => {
  const res = await api().post('/api/v1/jobs').send({ file: `.decisum/results/${stack!.config.prefix}/x.json` }).expect(403);
  expect(problemOf(res).code).toBe('PATH_RESERVED');
});

test('a Redis that lost its data is noticed on reconnection: /readyz says it, the metric counts it', async () => {
  const before = (await api().get('/readyz').expect(200)).body as { redisEpoch: { current: string; changes: number } };
  expect(before.redisEpoch).toEqual({ current: expect.any(String) as string, changes: 0 });
  // Everything under the prefix goes, the epoch with it, as a restart without persistence would do; then the client reconnects.
  await stack!.store.destroy();
  stack!.redis.disconnect(true);
  const after = await waitFor(
    async () => {
      const body = (await api().get('/readyz')).body as { status: string; redisEpoch: { current: string; changes: number; lastChange?: object } };
      return body.redisEpoch.changes === 1 ? body : undefined;
    },
    { what: 'the API to notice the new epoch' },
  );
  expect(after.status).toBe('ready');
  expect(after.redisEpoch.current).not.toBe(before.redisEpoch.current);
  expect(after.redisEpoch.lastChange).toMatchObject({ previous: before.redisEpoch.current, current: after.redisEpoch.current });
  const metrics = (await request(stack!.metricsUrl).get('/metrics').expect(200)).text;
  expect(metrics).toMatch(/^decisum_redis_epoch_changes_total 1$/m);
});
