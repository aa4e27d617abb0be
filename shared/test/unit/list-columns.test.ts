import { JobSchema, withColumnsCut, type Job } from '../../src/job';

const column = (i: number) => ({ name: `c${i}`, index: i, sum: '1', value: 1, count: 1 });
const job = (columns: number): Job => ({
  id: 'j',
  owner: 'local',
  status: 'succeeded',
  file: 'a.csv',
  options: { step: 1, offset: 0 },
  createdAt: '2025-01-01T00:00:00.000Z',
  attempts: 1,
  progress: { bytesRead: 1, bytesTotal: 1, rows: 1 },
  result: { rows: 1, columns: Array.from({ length: columns }, (_, i) => column(i)) },
});

describe('withColumnsCut (LIST_MAX_COLUMNS)', () => {
  it('keeps a job within the bound as it is', () => {
    const j = job(3);
    expect(withColumnsCut(j, 3)).toBe(j);
  });

  it('cuts the columns past the bound, marks the cut and counts them, and still fits the job schema', () => {
    const cut = withColumnsCut(job(250), 100);
    expect(cut.result?.columns).toHaveLength(100);
    expect(cut.result?.columns[99].name).toBe('c99');
    expect(cut.result).toMatchObject({ columnsTruncated: true, columnCount: 250 });
    expect(JobSchema.safeParse(cut).success).toBe(true);
  });
});
