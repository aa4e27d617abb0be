import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { JobStore, createLogger, createResultsArchive, createStorage, loadConfig, type JobMessage, type Renewal, type RenewalState, type ResultsArchive } from '@decisum/shared';
import { Archiver } from '../src/archiving';
import { LeaseManager, type Lease } from '../src/lease';
import { JobRestorer } from '../src/restore';
import { serviceUrls } from '../../test/support/services';
import { waitFor } from '../../test/support/wait';

const logger = createLogger('test', 'silent');
const options = { step: 10, offset: 0 };
const result = { rows: 1, columns: [{ name: 'a', index: 0, sum: '1', value: 1, count: 1 }] };

/** The real store, with every batch of renewals it was asked for written down. */
class RecordingStore extends JobStore {
  readonly renewals: string[][] = [];
  override renew(renewals: Renewal[]): Promise<RenewalState[]> {
    this.renewals.push(renewals.map((r) => r.id));
    return super.renew(renewals);
  }
}

describe('LeaseManager against the real Redis', () => {
  let redis: Redis;
  let store: RecordingStore;
  let prefix: string;
  let clock: number | undefined;
  let archive: ResultsArchive;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'decisum-lease-'));
  const managers: LeaseManager[] = [];
  const messages = new Map<string, JobMessage>();

  const manager = (heartbeatMs: number) => {
    const deps = { store, archive };
    const m = new LeaseManager(
      { ...deps, restorer: new JobRestorer(deps), archiver: new Archiver(deps), logger },
      { heartbeatMs },
      new AbortController().signal,
    );
    m.start();
    managers.push(m);
    return m;
  };
  const newJob = async (idempotencyKey?: string) => {
    const { job, message } = await store.create({ file: 'a.csv', options, callbackUrl: 'http://hooks.test/x' }, idempotencyKey);
    messages.set(job.id, message);
    return job.id;
  };
  const messageOf = (id: string): JobMessage => messages.get(id) ?? { id, file: 'a.csv', options };
  const claim = async (m: LeaseManager, id: string): Promise<Lease> => {
    const lease = await m.claim(messageOf(id), new AbortController().signal, logger);
    if (typeof lease === 'string') { throw new Error(`job ${id} was not claimed: ${lease}`); }
    return lease;
  };
  const leaseUntil = async (id: string) => Number(await redis.zscore(`${prefix}:running`, id));

  beforeAll(async () => {
    redis = new Redis((await serviceUrls()).redisUrl);
  });
  beforeEach(() => {
    prefix = `test-lease-${randomUUID().slice(0, 8)}`;
    clock = undefined;
    store = new RecordingStore(redis, { prefix, ttlSeconds: 60, leaseMs: 5000, now: () => clock ?? Date.now() });
    const config = loadConfig({ DATA_DIR: dataDir, DECISUM_PREFIX: prefix });
    archive = createResultsArchive(config, createStorage(config).storage);
  });
  afterEach(async () => {
    for (const m of managers.splice(0)) { m.close(); }
    await store.destroy();
  });
  afterAll(async () => {
    await redis.quit();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('renews every lease it holds in one batch per beat, extending each', async () => {
    const m = manager(100);
    const [a, b] = [await newJob(), await newJob()];
    await claim(m, a);
    await claim(m, b);
    const claimed = [await leaseUntil(a), await leaseUntil(b)];

    await waitFor(() => (store.renewals.some((ids) => ids.length === 2) ? true : undefined), { what: 'a renewal of both leases' });
    const both = store.renewals.find((ids) => ids.length === 2)!;
    expect([...both].sort()).toEqual([a, b].sort());
    await waitFor(async () => ((await leaseUntil(a)) > claimed[0] && (await leaseUntil(b)) > claimed[1] ? true : undefined), {
      what: 'both leases extended',
    });
  });

  it('writes the size as soon as it is reported, without waiting for the next beat', async () => {
    // No beat comes within the test: only the write on the first report can set the size.
    const m = manager(600_000);
    const id = await newJob();
    const lease = await claim(m, id);
    expect((await store.get(id))?.progress.bytesTotal).toBe(0);
    lease.report({ bytesRead: 4096, bytesTotal: 1_000_000, rows: 10 });
    const job = await waitFor(async () => {
      const j = await store.get(id);
      return j?.progress.bytesTotal === 1_000_000 ? j : undefined;
    }, { timeoutMs: 10_000, what: 'the size to be written' });
    expect(job.progress).toEqual({ bytesRead: 4096, bytesTotal: 1_000_000, rows: 10 });
  });

  it('stops the job when its lease is lost: the signal aborts with "cancelled"', async () => {
    const m = manager(50);
    const id = await newJob();
    const lease = await claim(m, id);
    expect(lease.signal.aborted).toBe(false);
    expect(await store.cancel(id)).toBe('ended');
    await waitFor(() => (lease.signal.aborted ? true : undefined), { what: 'the lease to be lost' });
    expect(lease.signal.reason).toBe('cancelled');
  });

  it('aborts with the caller\'s reason when the caller stops the job', async () => {
    const m = manager(600_000);
    const stop = new AbortController();
    const lease = await claimWith(m, await newJob(), stop.signal);
    stop.abort('shutdown');
    expect(lease.signal.reason).toBe('shutdown');
  });

  it('fences the outcome by attempt: a lapsed attempt writes nothing, the newer one writes once', async () => {
    clock = Date.now();
    const m = manager(600_000);
    const id = await newJob();
    const stale = await claim(m, id);
    clock += 10_000;
    const other = manager(600_000);
    const fresh = await claim(other, id);
    expect([stale.attempt, fresh.attempt]).toEqual([1, 2]);

    expect(await m.finish(stale, { result })).toBe(false);
    expect((await store.get(id))?.status).toBe('running');
    expect(await other.finish(fresh, { result })).toBe(true);
    expect(await store.get(id)).toMatchObject({ status: 'succeeded', attempts: 2, result });
  });

  it('claims nothing for a finished or unknown job', async () => {
    const m = manager(600_000);
    const id = await newJob();
    await store.cancel(id);
    expect(await m.claim(messageOf(id), new AbortController().signal, logger)).toBe('ack');
    expect(await m.claim(messageOf('no-such-job'), new AbortController().signal, logger)).toBe('ack');
  });

  it('records a job Redis lost again from its message, idempotency key and callback included, and runs it', async () => {
    const m = manager(600_000);
    const id = await newJob('key-1');
    const before = await store.get(id);
    expect(messageOf(id)).toMatchObject({ id, createdAt: before?.createdAt, idempotencyKey: 'key-1', callback: { url: 'http://hooks.test/x' } });
    await store.destroy(); // Redis forgets everything under the prefix, its epoch included.

    const lease = await claim(m, id);
    expect(lease.attempt).toBe(1);
    expect(await store.get(id)).toMatchObject({ id, status: 'running', file: 'a.csv', createdAt: before?.createdAt, callback: { status: 'pending' } });
    expect((await store.create({ file: 'a.csv', options, callbackUrl: 'http://hooks.test/x' }, 'key-1')).job.id).toBe(id);
  });

  it('drops the message of a job that expired or was removed under the same epoch', async () => {
    const m = manager(600_000);
    const id = await newJob();
    await redis.del(`${prefix}:job:${id}`);
    expect(await m.claim(messageOf(id), new AbortController().signal, logger)).toBe('ack');
    expect(await store.get(id)).toBeUndefined();
  });

  it('does not run again a job Redis lost that the results archive holds finished', async () => {
    const m = manager(600_000);
    const id = await newJob();
    const lease = await claim(m, id);
    expect(await m.finish(lease, { result })).toBe(true);
    await archive.put((await store.get(id))!);
    await store.destroy();
    expect(await m.claim(messageOf(id), new AbortController().signal, logger)).toBe('ack');
    expect(await store.get(id)).toBeUndefined();
  });

  it('keeps a running job whose record Redis lost: the record comes back as its attempt\'s and takes its result', async () => {
    const m = manager(50);
    const id = await newJob();
    const lease = await claim(m, id);
    await store.destroy();
    await waitFor(async () => ((await store.get(id))?.status === 'running' ? true : undefined), { what: 'the renewal to restore the record' });
    expect(lease.signal.aborted).toBe(false);
    expect(await m.finish(lease, { result })).toBe(true);
    expect(await store.get(id)).toMatchObject({ status: 'succeeded', attempts: 1, result });
  });

  it('writes the result of a job whose record vanished just before the outcome, when Redis lost it', async () => {
    const m = manager(600_000);
    const id = await newJob();
    const lease = await claim(m, id);
    await store.destroy();
    expect(await m.finish(lease, { result })).toBe(true);
    expect(await store.get(id)).toMatchObject({ status: 'succeeded', result });
  });

  async function claimWith(m: LeaseManager, id: string, stop: AbortSignal): Promise<Lease> {
    const lease = await m.claim(messageOf(id), stop, logger);
    if (typeof lease === 'string') { throw new Error(`job ${id} was not claimed: ${lease}`); }
    return lease;
  }
});
