import { z } from 'zod';
import { ERROR_CODES } from './errors';

/** Bodies the HTTP API answers that are not a job (those are in job.ts): the handlers build these types, the OpenAPI document shows these schemas. */

export const ProblemSchema = z.object({
  type: z.string().describe('a URI naming the kind of problem'),
  title: z.string(),
  status: z.number().int(),
  detail: z.string().describe('what went wrong, in words'),
  code: z.enum(ERROR_CODES).describe('stable code to match on'),
  row: z.number().int().optional(),
  column: z.string().optional(),
  fields: z.array(z.string()).optional().describe('for VALIDATION: the fields at fault'),
});
export type Problem = z.infer<typeof ProblemSchema>;

export const FileEntrySchema = z.object({
  path: z.string().describe('relative to the listed root: the path under DATA_DIR, or the S3 key'),
  location: z.string().describe("the LOCATION to submit as a job's `file`"),
  size: z.number().int().describe('bytes'),
  modified: z.string().describe('ISO 8601 modification time'),
});
export type FileEntry = z.infer<typeof FileEntrySchema>;

export const FileListingSchema = z.object({
  location: z.string(),
  nextCursor: z.string().optional().describe('pass as `cursor` for the next page (`limit` files each, LISTING_PAGE_SIZE at most); absent on the last page'),
  entries: z.array(FileEntrySchema),
});
export type FileListing = z.infer<typeof FileListingSchema>;

export const FileWrittenSchema = z.object({
  location: z.string(),
  size: z.number().int(),
  modified: z.string(),
});
export type FileWritten = z.infer<typeof FileWrittenSchema>;

export const HealthSchema = z.object({ status: z.literal('ok') });
export type Health = z.infer<typeof HealthSchema>;

export const RedisEpochSchema = z
  .object({
    current: z.string().optional().describe('the Redis epoch this process saw last'),
    changes: z.number().int().describe('times this process saw the epoch change since it started: each means Redis lost its data'),
    lastChange: z.object({ at: z.string(), previous: z.string(), current: z.string() }).optional(),
  })
  .describe('a change does not make the process unready (jobs are recorded again from their messages); it is logged, counted and alerted on');

export const ReadySchema = z.object({
  status: z.enum(['ready', 'unavailable']),
  checks: z.record(z.string(), z.boolean()).describe('each dependency by name: whether it answered'),
  redisEpoch: RedisEpochSchema.optional(),
});
export type Ready = z.infer<typeof ReadySchema>;
