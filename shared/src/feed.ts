import type { Redis } from 'ioredis';
import type { Job } from './job';
import { decodeEvent, streamKeys, type JobEvent, type StreamName } from './jobStore';
import type { Logger } from './logger';
import { pause, retryDelay } from './retry';
import { isFinal } from './status';

export type FeedListener = (event: JobEvent) => void;

const BATCH = 1000;

/**
 * The one reader of the job streams in a process: a blocking XREAD on a connection of its own,
 * fanned out in memory to every listener, so a thousand waiting requests and event streams cost one
 * Redis connection and no polling. Events reach listeners in the order the scripts wrote them.
 */
export class JobFeed {
  private readonly byJob = new Map<string, Set<FeedListener>>();
  private readonly everyone = new Set<FeedListener>();
  private readonly keys: Record<StreamName, string>;
  private readonly closing = new AbortController();
  private loop?: Promise<void>;

  constructor(
    /** Its own connection: a blocking read holds it. */
    private readonly redis: Redis,
    prefix: string,
    private readonly logger: Logger,
    private readonly blockMs = 5000,
  ) {
    this.keys = streamKeys(prefix);
  }

  /** Reads from the streams' current ends on; resolves once the first read is under way. */
  async start(): Promise<void> {
    const tips = (await this.redis
      .pipeline()
      .xrevrange(this.keys.events, '+', '-', 'COUNT', 1)
      .xrevrange(this.keys.progress, '+', '-', 'COUNT', 1)
      .exec()) as [[Error | null, [string, string[]][]], [Error | null, [string, string[]][]]];
    const [events, progress] = tips.map(([err, entries]) => {
      if (err) { throw err; }
      return entries[0]?.[0] ?? '0-0';
    });
    this.loop = this.read({ events, progress });
  }

  /** Events of one job. Returns the way to stop listening. */
  watch(jobId: string, listener: FeedListener): () => void {
    let set = this.byJob.get(jobId);
    if (!set) { this.byJob.set(jobId, (set = new Set())); }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.byJob.get(jobId) === set) { this.byJob.delete(jobId); }
    };
  }

  /** How many listen to one job's events: waiting requests and `?job=` streams. */
  listening(jobId: string): number {
    return this.byJob.get(jobId)?.size ?? 0;
  }

  /** Every event. Returns the way to stop listening. */
  watchAll(listener: FeedListener): () => void {
    this.everyone.add(listener);
    return () => void this.everyone.delete(listener);
  }

  /**
   * The job once it is final, or as `read` finds it when ms pass (or the signal, or the feed, ends
   * first); undefined when the job does not exist or was taken back. The watch starts before the
   * first read, so a change written between the two is not missed.
   */
  async untilFinal(jobId: string, read: () => Promise<Job | undefined>, ms: number, signal?: AbortSignal): Promise<Job | undefined> {
    let settle: (job: Job | undefined) => void = () => undefined;
    const final = new Promise<{ job: Job | undefined }>((resolve) => (settle = (job) => resolve({ job })));
    const stop = this.watch(jobId, (e) => {
      if (e.type === 'gone') { settle(undefined); }
      if (e.type === 'job' && isFinal(e.job.status)) { settle(e.job); }
    });
    const timer = new AbortController();
    try {
      const now = await read();
      if (!now || isFinal(now.status) || ms <= 0) { return now; }
      const until = AbortSignal.any([timer.signal, this.closing.signal, ...(signal ? [signal] : [])]);
      const outcome = await Promise.race([final, pause(ms, until).then(() => undefined)]);
      return outcome ? outcome.job : await read();
    } finally {
      timer.abort();
      stop();
    }
  }

  /** Stops reading, lets every wait answer, and closes the connection. */
  async close(): Promise<void> {
    this.closing.abort();
    this.redis.disconnect();
    await this.loop;
  }

  private async read(cursors: Record<StreamName, string>): Promise<void> {
    for (let failures = 0; !this.closing.signal.aborted; ) {
      let reply: Awaited<ReturnType<Redis['xread']>>;
      try {
        reply = await this.redis.xread('COUNT', BATCH, 'BLOCK', this.blockMs, 'STREAMS', this.keys.events, this.keys.progress, cursors.events, cursors.progress);
        failures = 0;
      } catch (err) {
        if (this.closing.signal.aborted) { return; }
        if (failures++ === 0) { this.logger.warn({ err }, 'reading job events failed; retrying'); }
        await pause(retryDelay(failures, { baseMs: 100, maxMs: 5000 }), this.closing.signal);
        continue;
      }
      const batches: Record<StreamName, JobEvent[]> = { events: [], progress: [] };
      for (const [key, entries] of reply ?? []) {
        const stream: StreamName = key === this.keys.events ? 'events' : 'progress';
        for (const [id, fields] of entries) {
          cursors[stream] = id;
          const event = decodeEvent(stream, id, fields);
          if (event) { batches[stream].push(event); }
          else { this.logger.warn({ stream, id }, 'skipped a job event that does not decode'); }
        }
      }
      for (const event of inOrder(batches.events, batches.progress)) { this.dispatch(event); }
    }
  }

  private dispatch(event: JobEvent): void {
    for (const listener of [...(this.byJob.get(event.jobId) ?? []), ...this.everyone]) {
      try {
        listener(event);
      } catch (err) {
        this.logger.error({ err, jobId: event.jobId }, 'a job event listener failed');
      }
    }
  }
}

/**
 * The two streams of one read merged in the order they were written. Their ids come from one clock
 * but separate sequences, so within one millisecond a claim precedes its progress and any other
 * state change (finish, release, end) follows it: a heartbeat writes progress only while running.
 */
function inOrder(changes: JobEvent[], progress: JobEvent[]): JobEvent[] {
  const out: JobEvent[] = [];
  let i = 0;
  let j = 0;
  const ms = (id: string) => Number(id.split('-')[0]);
  while (i < changes.length || j < progress.length) {
    const a = changes[i];
    const b = progress[j];
    if (!b) { out.push(changes[i++]); continue; }
    if (!a) { out.push(progress[j++]); continue; }
    const byTime = ms(a.id) - ms(b.id) || (a.type === 'job' && a.job.status === 'running' ? -1 : 1);
    out.push(byTime < 0 ? changes[i++] : progress[j++]);
  }
  return out;
}
