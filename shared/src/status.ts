/** Job statuses, in a module with no imports: the CLI loads it without loading the service's clients. */

export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const FINAL_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled'];

export function isFinal(status: string | null | undefined): boolean {
  return FINAL_STATUSES.includes(status as JobStatus);
}
