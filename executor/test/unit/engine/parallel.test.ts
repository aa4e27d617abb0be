import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AppError, DEFAULT_READ_POLICY, LocalFile } from '@decisum/shared';
import { sumObject } from '../../../src/engine/parallel';
import { createSummer, sumFile as sumFileFrom, type EngineOptions, type SumFileOptions } from '../../../src/engine';
import { SAMPLE } from '../../../../test/support/sample';
import { builtWorkerEntry } from '../../../../test/support/worker';

let dir: string;
let workerEntry: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'decisum-engine-'));
  workerEntry = await builtWorkerEntry();
});

/** The runner with its worker threads loaded from the build. */
const sumFile = (p: string, options: SumFileOptions) => sumFileFrom(p, { ...options, workerEntry });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string | Buffer): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}

function inMemory(text: string | Buffer, options: EngineOptions) {
  const s = createSummer(options);
  s.push(Buffer.from(text));
  return s.finish();
}

/** Rows of numbers whose sums are easy to know. */
function numbers(rows: number, from = 0): string {
  let out = '';
  for (let i = from; i < from + rows; i++) { out += `${i},x${i},${(i % 7) - 3}.25\n`; }
  return out;
}

describe('sumFile', () => {
  it('sums the sample on one thread and across threads alike', async () => {
    const want = inMemory(readFileSync(SAMPLE), { step: 10, offset: 0 });
    for (const threads of [1, 2, 3]) {
      const got = await sumFile(SAMPLE, { step: 10, offset: 0, threads, minParallelBytes: 0, bufferBytes: 4096 });
      expect(got).toEqual(want);
    }
  });

  it('splits a file by byte range and merges exact sums', async () => {
    const text = `a,b,c\n${numbers(20_000)}`;
    const p = file('split.csv', text);
    const progress: number[] = [];
    const got = await sumFile(p, { step: 2, offset: 0, threads: 2, minParallelBytes: 0, onProgress: (x) => progress.push(x.bytesRead) });
    expect(got).toEqual(inMemory(text, { step: 2, offset: 0, header: true, delimiter: ',' }));
    expect(got.rows).toBe(20_000);
    expect(progress[progress.length - 1]).toBe(Buffer.byteLength(text));
  });

  it('stays right when a quoted field with line breaks spans the split point', async () => {
    // A quoted cell of many short lines sits across the middle, so the guessed start of the
    // second range lands inside it, on a line that looks like a well-formed record.
    const fake = '1,y,2.5\n'.repeat(3000);
    const text = `a,b,c\n${numbers(500)}7,"${fake}",1.5\n${numbers(500, 500)}`;
    const p = file('quoted.csv', text);
    const want = inMemory(text, { step: 2, offset: 0 });
    expect(want.rows).toBe(1001);
    for (const threads of [2, 3, 4]) {
      expect(await sumFile(p, { step: 2, offset: 0, threads, minParallelBytes: 0, bufferBytes: 1024 })).toEqual(want);
    }
  });

  it('gives the file-wide row number of an error in a later range', async () => {
    const text = `a,b,c\n${numbers(5000)}1,z,oops\n${numbers(10)}`;
    const p = file('bad.csv', text);
    for (const threads of [1, 2]) {
      const err = await sumFile(p, { step: 2, offset: 0, threads, minParallelBytes: 0 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AppError);
      expect(err).toMatchObject({ code: 'NON_NUMERIC', row: 5002, column: 'c', message: 'row 5002, column c: "oops" is not a number' });
    }
  });

  it('fails an empty file with EMPTY_FILE', async () => {
    const err = await sumFile(file('empty.csv', ''), { step: 10, offset: 0, threads: 2 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'EMPTY_FILE' });
  });

  it('holds the header limits on one thread and across threads, before reading the data', async () => {
    const wide = file('wide.csv', `${Array(101).fill('c').join(',')}\n${numbers(20_000)}`);
    const long = file('long-header.csv', `a,${'h'.repeat(300_000)},c\n${numbers(20_000)}`);
    for (const threads of [1, 2]) {
      const progress: number[] = [];
      const onProgress = (p: { bytesRead: number }) => progress.push(p.bytesRead);
      await expect(sumFile(wide, { step: 1, offset: 0, threads, minParallelBytes: 0, maxColumns: 100, onProgress })).rejects.toMatchObject({
        code: 'TOO_MANY_COLUMNS',
        row: 1,
      });
      await expect(sumFile(long, { step: 2, offset: 0, threads, minParallelBytes: 0, maxHeaderBytes: 100_000, onProgress })).rejects.toMatchObject({
        code: 'HEADER_TOO_LARGE',
        row: 1,
      });
      // Across threads the header is read alone, before any range; one thread reads a file this small
      // in one buffer (the one-pass path), so at most that buffer came in before the refusal.
      if (threads > 1) { expect(progress).toEqual([]); }
      expect(Math.max(0, ...progress)).toBeLessThanOrEqual(1 << 20);
      expect(await sumFile(long, { step: 2, offset: 0, threads, minParallelBytes: 0 })).toEqual(inMemory(readFileSync(long), { step: 2, offset: 0 }));
    }
  });

  it('stops when cancelled', async () => {
    const p = file('cancel.csv', `a,b,c\n${numbers(50_000)}`);
    const controller = new AbortController();
    controller.abort();
    await expect(sumFile(p, { step: 2, offset: 0, threads: 2, signal: controller.signal })).rejects.toMatchObject({ code: 'CANCELLED' });
  });

  it('fails with FILE_CHANGED when another file takes the name after it was opened, on one thread or many', async () => {
    const p = file('replaced.csv', `a,b,c\n${numbers(20_000)}`);
    for (const threads of [1, 2]) {
      writeFileSync(p, `a,b,c\n${numbers(20_000)}`);
      const opened = await LocalFile.open({ path: p, name: 'replaced.csv' }, DEFAULT_READ_POLICY);
      // A new file under the name: the open descriptor still reads the old one, workers would open the new.
      writeFileSync(`${p}.new`, `a,b,c\n${numbers(20_000, 1)}`);
      renameSync(`${p}.new`, p);
      const err = await sumObject(opened, { step: 2, offset: 0, threads, minParallelBytes: 0, workerEntry }).catch((e: unknown) => e);
      await opened.close();
      expect(err).toBeInstanceOf(AppError);
      expect(err).toMatchObject({ code: 'FILE_CHANGED', message: 'replaced.csv changed while it was being read (another file now has its name)' });
    }
  });
});
