import { JOB_STATUSES, type Job } from '@decisum/shared';
import { LIST_STATUSES } from '../../src/cli';
import { listText, progressText } from '../../src/cli/output';
import { formatDuration, ProgressLine, RateMeter, transferText } from '../../src/cli/progress';

/** A clock the test moves by hand. */
function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

function running(bytesRead: number, bytesTotal: number, rows: number): Job {
  return {
    id: 'j1',
    owner: 'local',
    status: 'running',
    file: 'big.csv',
    options: { step: 10, offset: 0 },
    createdAt: '2026-11-25T00:00:00.123Z',
    attempts: 1,
    progress: { bytesRead, bytesTotal, rows },
  };
}

describe('RateMeter', () => {
  it('has no rate from one sample, then measures bytes and rows per second and the time left', () => {
    const c = clock();
    const meter = new RateMeter(10_000, c.now);
    meter.add(0, 0);
    expect(meter.perSecond()).toBeUndefined();
    expect(meter.secondsLeft(1000)).toBeUndefined();
    c.advance(2000);
    meter.add(200, 50);
    expect(meter.perSecond()).toBe(100);
    expect(meter.perSecond('rows')).toBe(25);
    expect(meter.secondsLeft(1000)).toBe(8);
    expect(meter.secondsLeft(0)).toBeUndefined();
  });

  it('measures over the last window only, so an early stall fades out', () => {
    const c = clock();
    const meter = new RateMeter(5_000, c.now);
    meter.add(0);
    c.advance(20_000); // a long queue-like pause with nothing read
    meter.add(0);
    for (let i = 1; i <= 10; i++) {
      c.advance(1000);
      meter.add(i * 1000);
    }
    expect(meter.perSecond()).toBe(1000);
  });

  it('starts over when less is done than before (a retried attempt reads from the start)', () => {
    const c = clock();
    const meter = new RateMeter(10_000, c.now);
    meter.add(500);
    c.advance(1000);
    meter.add(900);
    c.advance(1000);
    meter.add(100);
    expect(meter.perSecond()).toBeUndefined();
  });
});

describe('the texts', () => {
  it('formats durations short where that is enough', () => {
    expect([0.2, 59, 61, 3599, 3600, 7380].map(formatDuration)).toEqual(['1 s', '59 s', '1 min 01 s', '59 min 59 s', '1 h 00 min', '2 h 03 min']);
  });

  it('says rows/s and the time left for a running job once the meter has a rate, and neither without a total', () => {
    const c = clock();
    const meter = new RateMeter(10_000, c.now);
    meter.add(250_000, 1000);
    expect(progressText(running(250_000, 1_000_000, 1000), meter)).toBe('250.0 KB of 1.0 MB · 1000 rows');
    c.advance(1000);
    meter.add(500_000, 2000);
    expect(progressText(running(500_000, 1_000_000, 2000), meter)).toBe('500.0 KB of 1.0 MB · 2000 rows · 1000 rows/s · 2 s left');
    expect(progressText(running(500_000, 0, 2000), meter)).toBe('500.0 KB read · 2000 rows · 1000 rows/s');
    expect(transferText(500_000, 1_000_000, meter)).toBe('500.0 KB of 1.0 MB · 250.0 KB/s · 2 s left');
  });

  it('lists jobs in fixed columns, with what each came to', () => {
    const text = listText([
      running(500, 1000, 10),
      { ...running(0, 0, 0), id: 'j2', status: 'failed', error: { code: 'NON_NUMERIC', message: 'x' } },
      { ...running(0, 0, 7), id: 'j3' },
    ]);
    const lines = text.split('\n');
    expect(lines[0]).toBe(`${'j1'.padEnd(36)}  running    2026-11-25T00:00:00Z  50%               big.csv`);
    expect(lines[1]).toMatch(/^j2 +failed +\S+ +NON_NUMERIC +big\.csv$/);
    expect(lines[2]).toMatch(/^j3 +running +\S+ +7 rows +big\.csv$/);
  });

  it('offers --status exactly the job states the API has', () => {
    expect([...LIST_STATUSES]).toEqual([...JOB_STATUSES]);
  });
});

describe('ProgressLine', () => {
  function sink(isTTY: boolean, columns?: number) {
    const chunks: string[] = [];
    return { out: { isTTY, columns, write: (s: string) => chunks.push(s) }, chunks };
  }

  it('on a terminal redraws one line in place with a bar and the percent, cut to the width', () => {
    const { out, chunks } = sink(true, 60);
    const line = new ProgressLine(out);
    line.update('running', 0.5, 'x'.repeat(100));
    expect(chunks[0].startsWith('\r\x1b[K[##########----------]  50% running · xxx')).toBe(true);
    expect(chunks[0].endsWith('xx…')).toBe(true);
    expect(chunks[0].length - '\r\x1b[K'.length).toBe(59);
    line.update('running', undefined, '10 rows');
    expect(chunks[1]).toBe(`\r\x1b[K[${'-'.repeat(20)}]     running · 10 rows`);
    line.clear();
    expect(chunks[2]).toBe('\r\x1b[K');
  });

  it('elsewhere writes a plain line per change of state, then one every 10 s, and nothing when plain is off', () => {
    const c = clock();
    const { out, chunks } = sink(false);
    const line = new ProgressLine(out, { plain: true, now: c.now });
    line.update('job j1 queued', undefined, 'waiting for an executor');
    line.update('job j1 running', 0.1, 'a');
    c.advance(5000);
    line.update('job j1 running', 0.2, 'b');
    c.advance(5000);
    line.update('job j1 running', 0.3, 'c');
    line.clear();
    expect(chunks).toEqual(['job j1 queued · waiting for an executor\n', 'job j1 running 10% · a\n', 'job j1 running 30% · c\n']);

    const silent = sink(false);
    new ProgressLine(silent.out, { plain: false }).update('running', 0.5, 'x');
    expect(silent.chunks).toEqual([]);
  });
});
