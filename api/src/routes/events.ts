import { once } from 'node:events';
import { Router, type Response } from 'express';
import { z } from 'zod';
import { AppError, EVENT_ID, compareEventIds, type ActiveCount, type JobEvent, type JobFeed, type JobStore, type Logger } from '@decisum/shared';
import { canSee, requireScope, type Principal } from '../auth';
import { SAMPLE_ID, examples, type ApiDocs } from '../openapi';
import { parse } from '../validate';
import { IdSchema, aboutJob, noSuchJob } from './jobs';

export interface EventsDeps {
  feed: JobFeed;
  store: JobStore;
  logger: Logger;
  /** How often an idle stream gets a comment line, so proxies do not close it. */
  heartbeatMs: number;
  /** Aborted when the API stops: every stream is ended, so the server can close. */
  stopping?: AbortSignal;
}

const EventsQuerySchema = z
  .object({ job: IdSchema.optional().meta({ description: 'only this job\'s events', example: SAMPLE_ID }) })
  .strict();

/** `active` at most this often per process, however many jobs change. */
const ACTIVE_MIN_INTERVAL_MS = 250;
/** A lease that lapses changes `running` without any write: counted again this often while anyone listens. */
const ACTIVE_REFRESH_MS = 5000;
/** A client this far behind is cut off; it reconnects with Last-Event-ID and reads the history instead. */
const MAX_BUFFERED_BYTES = 1 << 20;
/** History read per round when a client resumes. */
const HISTORY_PAGE = 500;
/** How soon a browser's EventSource reconnects after the stream ends. */
const RETRY_MS = 2000;

/** One Server-Sent Event. JSON holds no raw line break, so the data is one line. */
function frame(event: string, data: unknown, id?: string): string {
  return `${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** A job event as a client reads it: `job` with the job, `progress` with the progress, `gone` with the id. */
function frameOf(e: JobEvent): string {
  switch (e.type) {
    case 'job':
      return frame('job', e.job, e.id);
    case 'progress':
      // No id: progress is not replayed, and the last id must stay the last state change's.
      return frame('progress', { id: e.jobId, progress: e.progress });
    case 'gone':
      return frame('gone', { id: e.jobId }, e.id);
  }
}

/** The counts, sent to every open stream when they change: one count per process, at most every 250 ms. */
class ActiveCounts {
  private readonly listeners = new Set<(counts: ActiveCount) => void>();
  private last?: string;
  private countedAt = 0;
  private timer?: NodeJS.Timeout;
  private refresher?: NodeJS.Timeout;
  private unwatch?: () => void;

  constructor(
    private readonly store: JobStore,
    private readonly feed: JobFeed,
    private readonly logger: Logger,
  ) {}

  subscribe(listener: (counts: ActiveCount) => void): () => void {
    if (this.listeners.size === 0) {
      this.unwatch = this.feed.watchAll((e) => {
        if (e.type !== 'progress') { this.schedule(); }
      });
      this.refresher = setInterval(() => this.schedule(), ACTIVE_REFRESH_MS);
    }
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size > 0) { return; }
      this.unwatch?.();
      clearInterval(this.refresher);
      clearTimeout(this.timer);
      this.timer = undefined;
    };
  }

  private schedule(): void {
    if (this.timer) { return; }
    this.timer = setTimeout(() => void this.recount(), Math.max(0, this.countedAt + ACTIVE_MIN_INTERVAL_MS - Date.now()));
  }

  private async recount(): Promise<void> {
    this.countedAt = Date.now();
    try {
      const counts = await this.store.counts();
      const text = JSON.stringify(counts);
      if (text !== this.last) {
        this.last = text;
        for (const listener of this.listeners) { listener(counts); }
      }
    } catch (err) {
      this.logger.warn({ err }, 'could not count active jobs for the event streams');
    } finally {
      this.timer = undefined;
    }
  }
}

/**
 * One client's stream. Events that arrive while the history or the snapshot is being read are held,
 * then sent if they are newer than what was read; after that, events go straight out.
 */
class EventStream {
  private held: JobEvent[] | undefined = [];
  private cursor = '0-0';

  constructor(
    private readonly res: Response,
    private readonly principal: Principal,
    private readonly jobId: string | undefined,
  ) {}

  /** Whether this client may see the event: its job's owner, or an admin; only its job with ?job. */
  wants(e: JobEvent): boolean {
    return (this.jobId === undefined || e.jobId === this.jobId) && canSee(this.principal, { owner: e.owner });
  }

  readonly take = (e: JobEvent): void => {
    if (!this.wants(e)) { return; }
    if (this.held) { this.held.push(e); }
    else { this.write(frameOf(e)); }
  };

  /** Sends what was held back and newer than `cursor`, the last event the client has; from now on events go out as they come. */
  open(cursor: string): void {
    this.cursor = cursor;
    const held = this.held ?? [];
    this.held = undefined;
    for (const e of held) {
      // Progress has no place in the history: it is always news.
      if (e.type === 'progress' || compareEventIds(e.id, this.cursor) > 0) { this.write(frameOf(e)); }
    }
  }

  write(text: string): boolean {
    if (this.res.writableEnded) { return false; }
    if (this.res.writableLength > MAX_BUFFERED_BYTES) {
      this.res.end();
      return false;
    }
    return this.res.write(text);
  }

  /** Writes a history page, waiting for the client to take it in. */
  async writeAll(text: string): Promise<void> {
    if (!this.write(text) && !this.res.writableEnded) { await once(this.res, 'drain'); }
  }

  end(): void {
    if (!this.res.writableEnded) { this.res.end(); }
  }
}

/** The event stream, mounted at /api/v1/events. */
export function createEventsRouter(deps: EventsDeps, docs: ApiDocs, base: string): Router {
  const { feed, store, logger } = deps;
  const router = Router();
  const routes = docs.routes(router, base);
  const open = new Set<EventStream>();
  const counts = new ActiveCounts(store, feed, logger);
  let heartbeat: NodeJS.Timeout | undefined;
  deps.stopping?.addEventListener('abort', () => {
    for (const stream of open) { stream.end(); }
  });

  router.use(requireScope('jobs:read'));
  routes.add(
    'get',
    '/',
    async (req, res) => {
      const principal = res.locals.principal as Principal;
      const { job: jobId } = parse(EventsQuerySchema, req.query, 'query');
      const lastEventId = req.get('Last-Event-ID');
      if (lastEventId !== undefined && !EVENT_ID.test(lastEventId)) {
        throw new AppError('VALIDATION', `Last-Event-ID ${JSON.stringify(lastEventId.slice(0, 40))} is not an event id (such as 1700000000000-0)`, {
          status: 400,
          details: { fields: ['Last-Event-ID'] },
        });
      }
      if (jobId !== undefined) { aboutJob(res, jobId); }
      if (deps.stopping?.aborted) { throw new AppError('STORE_UNAVAILABLE', 'the server is stopping; reconnect', { status: 503 }); }

      const stream = new EventStream(res, principal, jobId);
      // Listening starts before anything is read, so nothing written meanwhile is missed.
      const stops = [jobId === undefined ? feed.watchAll(stream.take) : feed.watch(jobId, stream.take)];
      res.on('close', () => {
        for (const stop of stops) { stop(); }
        open.delete(stream);
        if (open.size === 0) {
          clearInterval(heartbeat);
          heartbeat = undefined;
        }
      });
      const { first, cursor } = await start(store, principal, jobId, lastEventId);

      res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache, no-transform',
        Connection: 'keep-alive',
        // nginx would otherwise hold the events back in its buffer.
        'X-Accel-Buffering': 'no',
      });
      if (res.destroyed) { return; }
      stream.write(`retry: ${RETRY_MS}\n\n`);
      open.add(stream);
      stops.push(counts.subscribe((c) => stream.write(frame('active', c))));
      heartbeat ??= setInterval(() => {
        for (const s of open) { s.write(': keep-alive\n\n'); }
      }, deps.heartbeatMs);
      try {
        for (const text of first) { await stream.writeAll(text); }
        stream.open(lastEventId === undefined ? cursor : await replay(store, stream, lastEventId));
        stream.write(frame('active', await store.counts()));
      } catch (err) {
        // The headers are out: no problem+json now. The client reconnects and resumes.
        logger.warn({ err }, 'an event stream failed while starting; ending it');
        stream.end();
      }
    },
    {
      path: '/',
      tags: ['events'],
      summary: 'A stream of job events (Server-Sent Events)',
      description: [
        'Stays open and sends, as `text/event-stream`:',
        '',
        '- `job`: the job (as `GET /api/v1/jobs/{id}` shows it) after each change of state: queued, running, handed back to the queue, succeeded, failed, cancelled. Carries an `id`.',
        '- `progress`: `{id, progress}` while a job runs, as its executor reports it (about once a second). No `id`: not replayed.',
        '- `active`: `{active, queued, running}` on connecting and whenever the counts change, at most 4 times a second.',
        '- `gone`: `{id}` of a job recorded and taken back because the queue refused it.',
        '- `reset`: the history no longer reaches back to `Last-Event-ID`: read the jobs again.',
        '- a comment line (`: keep-alive`) every `SSE_HEARTBEAT_MS` so proxies keep the stream open.',
        '',
        'Without `Last-Event-ID` the stream starts now; with `?job=` it starts with that job as it is. With `Last-Event-ID` (browsers send it when they reconnect) it first sends every state change after that id, as far back as the history (`EVENT_HISTORY` changes) reaches.',
        'A client sees its own jobs\' events (an admin, every job\'s); `active` counts every job.',
      ].join('\n'),
      request: {
        query: EventsQuerySchema,
        headers: z.object({
          'Last-Event-ID': z.string().optional().meta({ description: 'resume after this event', example: '1735732800000-0' }),
        }),
      },
      responses: {
        200: {
          description: 'The stream, open until the client leaves or the server stops',
          content: {
            'text/event-stream': {
              schema: { type: 'string' },
              example: [
                'retry: 2000',
                '',
                `id: 1735732800000-0\nevent: job\ndata: ${JSON.stringify(examples.queued)}`,
                'event: active\ndata: {"active":1,"queued":1,"running":0}',
                `event: progress\ndata: {"id":"${SAMPLE_ID}","progress":{"bytesRead":65536,"bytesTotal":311548,"rows":35}}`,
                ': keep-alive',
                '',
              ].join('\n'),
            },
          },
        },
        ...docs.problems(
          [400, 'Invalid query or Last-Event-ID', 'VALIDATION', 'invalid job: Too big: expected string to have <=100 characters', { fields: ['job'] }],
          [404, 'No such job (with ?job=)', 'JOB_NOT_FOUND', `no job with id ${SAMPLE_ID}`],
        ),
        ...docs.storeUnavailable,
      },
    },
  );

  return router;
}

/**
 * Where a new stream starts. Resuming: the job (with ?job=) must exist; the history is replayed after
 * the headers. Otherwise: the newest event's id and, with ?job=, the job as of it, read together.
 */
async function start(
  store: JobStore,
  principal: Principal,
  jobId: string | undefined,
  lastEventId: string | undefined,
): Promise<{ first: string[]; cursor: string }> {
  if (lastEventId !== undefined) {
    if (jobId !== undefined) {
      const job = await store.get(jobId);
      if (!job || !canSee(principal, job)) { throw noSuchJob(jobId); }
    }
    return { first: [], cursor: lastEventId };
  }
  const { tip, job } = await store.snapshot(jobId);
  if (jobId === undefined) { return { first: [], cursor: tip }; }
  if (!job || !canSee(principal, job)) { throw noSuchJob(jobId); }
  return { first: [frame('job', job, tip)], cursor: tip };
}

/** Every state change after `lastEventId` the client may see, page by page; the last id sent. */
async function replay(store: JobStore, stream: EventStream, lastEventId: string): Promise<string> {
  let cursor = lastEventId;
  for (let page = 0; ; page++) {
    const { events, complete } = await store.eventsAfter(cursor, HISTORY_PAGE);
    if (page === 0 && !complete) { await stream.writeAll(frame('reset', { reason: 'the history no longer reaches back to Last-Event-ID; read the jobs again' })); }
    const text = events
      .filter((e) => stream.wants(e))
      .map(frameOf)
      .join('');
    if (text) { await stream.writeAll(text); }
    if (events.length > 0) { cursor = events[events.length - 1].id; }
    if (events.length < HISTORY_PAGE) { return cursor; }
  }
}
