import { createSummer } from '../../../src/engine';
import { Engine } from '../../../src/engine/engine';
import { SimdRows, compileFastPath } from '../../../src/engine/simd';

/*
 * The WebAssembly fast path on its own: which rows it takes, where it stops, and the sums it
 * leaves. The property tests (property.test.ts) compare the whole engine, with and without it,
 * against a reference implementation.
 */

const SLACK = 16;

/** A SimdRows over `text`, laid out for fieldCount fields with the given summed ones at the given scales. */
function load(text: string, fieldCount: number, indices: number[], scales: number[]): { simd: SimdRows; buf: Buffer } {
  const simd = new SimdRows();
  const data = Buffer.from(text);
  const buf = simd.buffer(data.length, SLACK);
  data.copy(buf);
  expect(simd.setup(44, fieldCount, Int32Array.from(indices))).toBe(true);
  simd.scales(Int32Array.from(scales));
  return { simd, buf };
}

function sums(simd: SimdRows, k: number): bigint[] {
  const totals = new Array<bigint>(k).fill(0n);
  simd.takeSums(totals);
  return totals;
}

describe('SimdRows', () => {
  it('takes plain rows and sums the chosen fields, scaled to each column', () => {
    const text = 'a,1.25,x,-7\n,0.5,yy,8\nz,-3,,1000\n';
    const { simd } = load(text, 4, [1, 3], [2, 0]);
    expect(simd.rows(0, text.length, Infinity, 1 << 20)).toBe(text.length);
    expect({ taken: simd.taken, otherRow: simd.otherRow }).toEqual({ taken: 3, otherRow: false });
    expect(sums(simd, 2)).toEqual([125n + 50n - 300n, -7n + 8n + 1000n]);
    expect(sums(simd, 2)).toEqual([0n, 0n]); // taken out
  });

  it('skips many fields across many 16-byte blocks, and CRLF line ends', () => {
    const row = (i: number) => Array.from({ length: 100 }, (_, c) => (c % 10 === 0 ? String(i * 100 + c) : `${c}.${i}5`)).join(',');
    const text = Array.from({ length: 50 }, (_, i) => row(i)).join('\r\n') + '\r\n';
    const indices = Array.from({ length: 10 }, (_, j) => j * 10);
    const { simd } = load(text, 100, indices, new Array<number>(10).fill(0));
    expect(simd.rows(0, text.length, Infinity, 1 << 20)).toBe(text.length);
    expect(simd.taken).toBe(50);
    let want = 0n;
    for (let i = 0; i < 50; i++) { want += BigInt(i * 100); }
    expect(sums(simd, 10)).toEqual(indices.map((c) => want + 50n * BigInt(c)));
  });

  it.each([
    ['a space', '1,2\n 3,4\n'],
    ['a plus sign', '1,2\n+3,4\n'],
    ['an exponent', '1,2\n3e2,4\n'],
    ['an empty cell', '1,2\n,4\n'],
    ['a sign alone', '1,2\n-,4\n'],
    ['19 digits', '1,2\n1234567890123456789,4\n'],
    ['more fraction digits than the scale', '1,2\n3.125,4\n'],
    ['a field too few', '1,2\n3\n'],
    ['a field too many', '1,2\n3,4,5\n'],
    ['a blank line', '1,2\n\n'],
    ['a CR line', '1,2\n\r\n'],
    ['text in the summed field', '1,2\nabc,4\n'],
  ])('stops at the start of a row with %s, having taken the rows before it', (_, text) => {
    const { simd } = load(text, 2, [0], [2]);
    expect(simd.rows(0, text.length, Infinity, 1 << 20)).toBe(4);
    expect({ taken: simd.taken, otherRow: simd.otherRow, sum: sums(simd, 1)[0] }).toEqual({ taken: 1, otherRow: true, sum: 100n });
  });

  it('stops at a row longer than the record limit', () => {
    const text = '1,2\n3,44444444\n';
    const { simd } = load(text, 2, [0], [0]);
    expect(simd.rows(0, text.length, Infinity, 8)).toBe(4);
    expect(simd.otherRow).toBe(true);
  });

  it('leaves rows that start at or past stop', () => {
    const text = '1,2\n3,4\n5,6\n';
    const { simd } = load(text, 2, [0], [0]);
    expect(simd.rows(0, text.length, 5, 1 << 20)).toBe(8);
    expect({ taken: simd.taken, otherRow: simd.otherRow, sum: sums(simd, 1)[0] }).toEqual({ taken: 2, otherRow: false, sum: 4n });
  });

  it('returns once a sum passes 2^60, with that row taken, so no sum can overflow', () => {
    const big = '999999999999999999'; // 18 digits, about 2^59.8
    const text = `${big},0\n${big},0\n${big},0\n`;
    const { simd } = load(text, 2, [0], [0]);
    const first = simd.rows(0, text.length, Infinity, 1 << 20);
    expect({ at: first, taken: simd.taken, otherRow: simd.otherRow }).toEqual({ at: 2 * (big.length + 3), taken: 2, otherRow: false });
    expect(sums(simd, 1)[0]).toBe(2n * BigInt(big));
    expect(simd.rows(first, text.length, Infinity, 1 << 20)).toBe(text.length);
    expect(sums(simd, 1)[0]).toBe(BigInt(big));
  });

  it('keeps the buffer’s bytes when its memory grows', () => {
    const simd = new SimdRows();
    const small = simd.buffer(64, SLACK);
    small.write('12,34\n');
    const large = simd.buffer(8 << 20, SLACK);
    expect(small.length).toBe(0); // detached by the growth
    expect(large.toString('latin1', 0, 6)).toBe('12,34\n');
  });

  it('says how to build it when rows.wasm is missing', () => {
    expect(() => compileFastPath('/nonexistent/rows.wasm')).toThrow(
      "the CSV engine's WebAssembly fast path is not built (/nonexistent/rows.wasm); run npm run build:wasm",
    );
  });

  it('refuses a layout with more summed columns than it holds', () => {
    const simd = new SimdRows();
    expect(simd.setup(44, 5000, Int32Array.from({ length: 5000 }, (_, i) => i))).toBe(false);
  });
});

describe('the engine with the WebAssembly fast path', () => {
  it('sums rows it does not take, one among many and many together, exactly once', () => {
    // 20 plain, 1 with a space, 20 plain, 12 with a plus sign, 20 plain: the lone row goes to the
    // TypeScript fast path by itself, the run of them with the rest of the chunk.
    const run_ = (n: number, k: string): string[] => Array.from({ length: n }, () => k);
    const kinds = [...run_(20, ''), ' ', ...run_(20, ''), ...run_(12, '+'), ...run_(20, '')];
    const data = Buffer.from(`a,b\n${kinds.map((k, i) => `x,${k}${i}.5`).join('\n')}\n`);
    const run = (simd: boolean) => {
      const s = createSummer({ step: 1, offset: 1 }, { simd });
      s.push(data);
      return s.finish();
    };
    const want = kinds.reduce((t, _, i) => t + i + 0.5, 0);
    expect(run(true).columns[0]).toMatchObject({ sum: want.toFixed(1), count: kinds.length });
    expect(run(true)).toEqual(run(false));
  });

  it('gives the same sums as without it over 18-digit values whose sums pass 2^63', () => {
    const rows = Array.from({ length: 40 }, (_, i) => `${i % 3 === 0 ? '-' : ''}${String(987654321987654321n - BigInt(i))},${i}.5`);
    const data = Buffer.from(`a,b\n${rows.join('\n')}\n`);
    const run = (simd: boolean) => {
      const s = createSummer({ step: 1, offset: 0 }, { simd });
      s.push(data);
      return s.finish();
    };
    const want = rows.reduce((t, r) => t + BigInt(r.split(',')[0]), 0n);
    expect(run(true).columns[0].sum).toBe(want.toString());
    expect(run(true)).toEqual(run(false));
  });

  it('a pooled instance, given back by an engine that failed mid-chunk, sums the next file from zero', () => {
    const rows = SimdRows.take();
    const bad = new Engine({ step: 1, offset: 0, header: true, maxRecordBytes: 1 << 20, maxHeaderBytes: 1 << 20, maxColumns: 1000, simdRows: rows });
    const plain = Array.from({ length: 40 }, (_, i) => `${i},${i * 2}`).join('\n');
    expect(() => {
      bad.push(Buffer.from(`a,b\n${plain}\nx,oops\n`));
      bad.end();
    }).toThrow(/not a number/);
    SimdRows.give(rows);
    expect(SimdRows.take()).toBe(rows);
    const good = new Engine({ step: 1, offset: 0, header: true, maxRecordBytes: 1 << 20, maxHeaderBytes: 1 << 20, maxColumns: 1000, simdRows: rows });
    good.push(Buffer.from('a,b\n1,2\n3,4\n'));
    good.end();
    expect(good.columns().map((c) => c.sum)).toEqual(['4', '6']);
    SimdRows.give(rows);
  });
});
