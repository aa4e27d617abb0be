import type { ActiveCount, FileEntry, FileListing, Job, JobPage, Problem } from '@decisum/shared';

export type { FileEntry, FileListing, Problem };

type Answer = { body: unknown };

// supertest types every body as any: these say what a test expects it to be, so the type checker
// and typed lint check the rest of the test.
export const jobOf = (res: Answer): Job => res.body as Job;
export const problemOf = (res: Answer): Problem => res.body as Problem;
export const pageOf = (res: Answer): JobPage => res.body as JobPage;
export const activeOf = (res: Answer): ActiveCount => res.body as ActiveCount;
export const listingOf = (res: Answer): FileListing => res.body as FileListing;
export const fileOf = (res: Answer): FileEntry => res.body as FileEntry;
