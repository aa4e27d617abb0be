import { z } from 'zod';
import { DELIMITERS } from './delimiters';
import { JOB_STATUSES } from './status';
import { LOCAL_OWNER } from './tokens';

/** One schema per thing that crosses a boundary: the HTTP body, the queue message, the stored job. */

export { DELIMITERS, type Delimiter } from './delimiters';

export const JobOptionsSchema = z.object({
  step: z.number().int().min(1).max(1_000_000).default(10).describe('sum every step-th data column'),
  offset: z.number().int().min(0).max(1_000_000).default(0).describe('0-based position of the first summed data column'),
  delimiter: z.enum(DELIMITERS).optional().describe('field delimiter; detected from the header when absent'),
  header: z.boolean().optional().describe('whether the first row is a header; true when absent'),
});
export type JobOptions = z.infer<typeof JobOptionsSchema>;

export const CallbackRequestSchema = z
  .object({
    url: z.string().min(1).max(2048).describe('http(s) URL decisum POSTs the finished job to; its host must be in CALLBACK_HOSTS'),
  })
  .strict();

export const JobSubmissionSchema = z
  .object({
    file: z
      .string()
      .min(1, 'file is required')
      .max(4096)
      .describe('s3://bucket/key, or a path relative to DATA_DIR (also file:reports/a.csv)'),
    step: JobOptionsSchema.shape.step,
    offset: JobOptionsSchema.shape.offset,
    delimiter: z
      .enum([...DELIMITERS, 'auto'])
      .optional()
      .transform((d) => (d === 'auto' ? undefined : d))
      .describe('one of , ; | or a tab; "auto" or absent to detect'),
    header: z
      .union([z.boolean(), z.literal('auto')])
      .optional()
      .transform((h) => (h === 'auto' ? undefined : h))
      .describe('whether the first row is a header; "auto" or absent means true'),
    callback: CallbackRequestSchema.optional().describe('a webhook called once the job is final, signed with Decisum-Signature'),
  })
  .strict();
export type JobSubmission = z.infer<typeof JobSubmissionSchema>;

export const ColumnSumSchema = z.object({
  name: z.string(),
  index: z.number().int().describe('0-based field index in the record'),
  sum: z.string().describe('exact decimal sum'),
  value: z.number().describe('nearest double to sum'),
  count: z.number().int().describe('non-empty cells summed'),
});
export type ColumnSum = z.infer<typeof ColumnSumSchema>;

export const JobResultSchema = z.object({
  rows: z.number().int(),
  columns: z.array(ColumnSumSchema),
  columnCount: z
    .number()
    .int()
    .optional()
    .describe('in the list endpoint, when `columns` was cut: how many columns the result has (GET the job for all of them)'),
  columnsTruncated: z
    .literal(true)
    .optional()
    .describe('in the list endpoint: `columns` holds only the first LIST_MAX_COLUMNS; GET the job for all of them'),
});
export type JobResult = z.infer<typeof JobResultSchema>;

/** The job as the list endpoint shows it: at most maxColumns per-column results, the cut marked. */
export function withColumnsCut(job: Job, maxColumns: number): Job {
  const result = job.result;
  if (!result || result.columns.length <= maxColumns) { return job; }
  return {
    ...job,
    result: { ...result, columns: result.columns.slice(0, maxColumns), columnCount: result.columns.length, columnsTruncated: true },
  };
}

export const JobErrorSchema = z.object({
  code: z.string(),
  message: z.string(),
  row: z.number().int().optional(),
  column: z.string().optional(),
});
export type JobError = z.infer<typeof JobErrorSchema>;

export const ProgressSchema = z.object({
  bytesRead: z.number().int(),
  bytesTotal: z.number().int(),
  rows: z.number().int(),
});
export type Progress = z.infer<typeof ProgressSchema>;

export const CALLBACK_STATUSES = ['pending', 'delivered', 'failed'] as const;

export const CallbackStateSchema = z.object({
  url: z.string(),
  status: z.enum(CALLBACK_STATUSES).describe('pending until the job is final and a delivery is accepted (2xx); failed once given up'),
  attempts: z.number().int().describe('deliveries tried so far'),
  lastError: z.string().optional().describe('why the last attempt failed'),
});
export type CallbackState = z.infer<typeof CallbackStateSchema>;

/** A job's owner: the name of the token that submitted it; records from before owners belong to the local owner. */
const OwnerSchema = z.string().min(1).default(LOCAL_OWNER).describe('the name of the API token that submitted the job ("local" in protected mode)');

export const JobSchema = z.object({
  id: z.string(),
  owner: OwnerSchema,
  status: z.enum(JOB_STATUSES),
  file: z.string(),
  options: JobOptionsSchema,
  createdAt: z.string(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  attempts: z.number().int(),
  progress: ProgressSchema,
  result: JobResultSchema.optional(),
  error: JobErrorSchema.optional(),
  callback: CallbackStateSchema.optional(),
});
export type Job = z.infer<typeof JobSchema>;

/** A page of `GET /api/v1/jobs`, newest first. */
export const JobPageSchema = z.object({
  jobs: z.array(JobSchema),
  nextCursor: z.string().optional().describe('pass as `cursor` for the next page; absent on the last page'),
});
export type JobPage = z.infer<typeof JobPageSchema>;

/**
 * The queue message: a durable copy of the job, enough to record it again should Redis lose it (see
 * DESIGN "Durability"), and the Redis epoch it was recorded under. Redis holds the truth while it has
 * the record. The copy's fields are optional so messages published before they existed still decode.
 */
export const JobMessageSchema = z.object({
  id: z.string().min(1),
  /** Who submitted it; absent in messages published before jobs had owners. */
  owner: z.string().min(1).optional(),
  file: z.string().min(1),
  options: JobOptionsSchema,
  createdAt: z.string().optional(),
  idempotencyKey: z.string().optional(),
  callback: CallbackRequestSchema.optional(),
  /** The Redis epoch the job was recorded under: a different one now means Redis lost its data since. */
  epoch: z.string().optional(),
});
export type JobMessage = z.infer<typeof JobMessageSchema>;

export const ActiveCountSchema = z.object({
  active: z.number().int(),
  queued: z.number().int(),
  running: z.number().int(),
});
export type ActiveCount = z.infer<typeof ActiveCountSchema>;
