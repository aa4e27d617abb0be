import fc from 'fast-check';
import { AppError } from '@decisum/shared';
import { createSummer, type EngineOptions } from '../../../src/engine';

/*
 * Random tables written as CSV in every way the engine must read (quoting, delimiters,
 * CRLF/LF, BOM, double-encoded rows, blank rows, a missing last line break), fed in random
 * chunks, and compared with a plain string-and-BigInt reference implementation.
 */

type Delim = ',' | ';' | '\t' | '|';
type Outcome = { rows: number; sums: string[]; counts: number[] } | { code: string; row: number; column?: string };

// ---------- reference implementation ----------

function parseRecords(text: string, d: string, inner: boolean): string[][] {
  const records: string[][] = [];
  let fields: string[] = [];
  let p = 0;
  const n = text.length;
  if (n === 0) { return records; }
  for (;;) {
    let field = '';
    if (text[p] === '"') {
      p++;
      for (;;) {
        if (p >= n) { throw Object.assign(new Error('unterminated'), { code: 'UNTERMINATED_QUOTE', record: records.length }); }
        if (text[p] === '"') {
          if (text[p + 1] === '"') {
            field += '"';
            p += 2;
            continue;
          }
          p++;
          break;
        }
        field += text[p++];
      }
    }
    let unquoted = '';
    while (p < n && text[p] !== d && (inner || text[p] !== '\n')) { unquoted += text[p++]; }
    const atEnd = p >= n || text[p] === '\n';
    if (atEnd && !inner && unquoted.endsWith('\r')) { unquoted = unquoted.slice(0, -1); }
    fields.push(field + unquoted);
    if (p < n && text[p] === d) {
      p++;
      continue;
    }
    records.push(fields);
    fields = [];
    if (p >= n) { return records; }
    p++; // the line feed
    if (p >= n) { return records; }
  }
}

function parseNumber(cell: string): { v: bigint; scale: number } | null | 'bad' {
  const t = cell.replace(/^[ \t]+|[ \t]+$/g, '');
  if (t === '') { return null; }
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(t);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) { return 'bad'; }
  const frac = m[3] ?? '';
  const exp = Number(m[4] ?? '0');
  let v = BigInt(m[2] + frac || '0');
  let scale = frac.length - exp;
  if (scale < 0) {
    v *= 10n ** BigInt(-scale);
    scale = 0;
  }
  return { v: m[1] === '-' ? -v : v, scale };
}

function format(v: bigint, scale: number): string {
  const neg = v < 0n;
  let s = (neg ? -v : v).toString();
  if (scale > 0) {
    s = s.padStart(scale + 1, '0');
    s = `${s.slice(0, -scale)}.${s.slice(-scale)}`;
  }
  return (neg ? '-' : '') + s;
}

function reference(text: string, o: { step: number; offset: number; delimiter: Delim; header: boolean }): Outcome {
  let records: string[][];
  try {
    records = parseRecords(text.startsWith('\uFEFF') ? text.slice(1) : text, o.delimiter, false);
  } catch (err) {
    return { code: 'UNTERMINATED_QUOTE', row: (err as { record: number }).record + 1 };
  }
  const d = o.delimiter;
  const unwrap = (f: string[], nf: number) => (f.length === 1 && nf > 1 && f[0].includes(d) ? parseRecords(f[0], d, true)[0] ?? [''] : f);
  let first = records[0];
  if (first.length === 1 && first[0].includes(d)) { first = parseRecords(first[0], d, true)[0]; }
  const nf = first.length;
  const dataStart = o.header && nf > 1 && first[0] === '' ? 1 : 0;
  const idx: number[] = [];
  for (let i = dataStart + o.offset; i < nf; i += o.step) { idx.push(i); }
  const names = idx.map((i) => (o.header && first[i].trim() !== '' ? first[i].trim() : `col${i}`));
  const sums = idx.map(() => ({ v: 0n, scale: 0, count: 0 }));
  let rows = 0;
  for (let r = o.header ? 1 : 0; r < records.length; r++) {
    const fields = unwrap(records[r], nf);
    if (fields.every((f) => f === '')) { continue; }
    if (fields.length !== nf) { return { code: 'RAGGED_ROW', row: r + 1 }; }
    for (let j = 0; j < idx.length; j++) {
      const n = parseNumber(fields[idx[j]]);
      if (n === 'bad') { return { code: 'NON_NUMERIC', row: r + 1, column: names[j] }; }
      if (n === null) { continue; }
      const s = sums[j];
      if (n.scale > s.scale) {
        s.v *= 10n ** BigInt(n.scale - s.scale);
        s.scale = n.scale;
      }
      s.v += n.v * 10n ** BigInt(s.scale - n.scale);
      s.count++;
    }
    rows++;
  }
  return { rows, sums: sums.map((s) => format(s.v, s.scale)), counts: sums.map((s) => s.count) };
}

// ---------- the engine, fed in chunks ----------

function engine(data: Buffer, options: EngineOptions, chunks: number[], tuning: { simd: boolean; bufferBytes?: number }): Outcome {
  const s = createSummer(options, tuning);
  try {
    let p = 0;
    let i = 0;
    while (p < data.length) {
      const size = chunks.length > 0 ? chunks[i++ % chunks.length] : data.length;
      s.push(data.subarray(p, p + size));
      p += size;
    }
    const result = s.finish();
    return { rows: result.rows, sums: result.columns.map((c) => c.sum), counts: result.columns.map((c) => c.count) };
  } catch (err) {
    if (!(err instanceof AppError)) { throw err; }
    const out: Outcome = { code: err.code, row: err.row ?? -1 };
    if (err.column !== undefined) { out.column = err.column; }
    return out;
  }
}

// ---------- generators ----------

const numberCell = fc.oneof(
  fc.integer({ min: -1000, max: 1000 }).map(String),
  fc.tuple(fc.integer({ min: -99999, max: 99999 }), fc.integer({ min: 0, max: 6 })).map(([v, s]) => {
    if (s === 0) { return String(v); }
    const a = Math.abs(v).toString().padStart(s + 1, '0');
    return `${v < 0 ? '-' : ''}${a.slice(0, -s)}.${a.slice(-s)}`;
  }),
  fc.bigInt({ min: -(10n ** 25n), max: 10n ** 25n }).map(String),
  fc.tuple(fc.integer({ min: -999, max: 999 }), fc.integer({ min: -5, max: 5 }), fc.constantFrom('e', 'E')).map(([m, e, c]) => `${m}${c}${e}`),
  fc.constantFrom('', '', ' 12 ', '+7', '.5', '5.', '-0', '0.10', '007', '9007199254740993', '-2.50'),
);
const textCell = fc.oneof(
  fc.string({ maxLength: 6 }),
  fc.constantFrom('a,b', 'x;y', 'tab\there', 'p|q', 'say "hi"', 'two\nlines', 'cr\r\nlf', 'é ü', ''),
);
const badCell = fc.constantFrom('abc', '1.2.3', 'NaN', '1e', '--1', 'x');

interface Table {
  delimiter: Delim;
  indexCol: boolean;
  header: boolean;
  cols: number;
  step: number;
  offset: number;
  rows: { cells: string[]; doubled: boolean; quoteAll: boolean }[];
  crlf: boolean;
  bom: boolean;
  lastNewline: boolean;
  passDelimiter: boolean;
}

const table: fc.Arbitrary<Table> = fc
  .record({
    delimiter: fc.constantFrom<Delim>(',', ';', '\t', '|'),
    indexCol: fc.boolean(),
    header: fc.boolean(),
    cols: fc.integer({ min: 1, max: 14 }),
    step: fc.integer({ min: 1, max: 4 }),
    offset: fc.integer({ min: 0, max: 3 }),
    crlf: fc.boolean(),
    bom: fc.boolean(),
    lastNewline: fc.boolean(),
    passDelimiter: fc.boolean(),
    numeric: fc.array(fc.integer({ min: 0, max: 30 }).map((x) => x > 0), { minLength: 14, maxLength: 14 }),
    rowCount: fc.integer({ min: 0, max: 12 }),
    seedRows: fc.array(
      fc.record({
        num: fc.array(numberCell, { minLength: 16, maxLength: 16 }),
        text: fc.array(textCell, { minLength: 16, maxLength: 16 }),
        doubled: fc.boolean(),
        quoteAll: fc.boolean(),
        blank: fc.integer({ min: 0, max: 15 }),
        fault: fc.integer({ min: 0, max: 150 }),
        bad: badCell,
        faultCol: fc.nat(),
      }),
      { minLength: 12, maxLength: 12 },
    ),
  })
  .map((g) => {
    g.indexCol = g.indexCol && g.header;
    const width = g.cols + (g.indexCol ? 1 : 0);
    // Summed columns hold numbers (mostly), the others anything.
    const summed = (c: number) => c >= g.offset && (c - g.offset) % g.step === 0;
    const rows: Table['rows'] = [];
    for (let r = 0; r < g.rowCount; r++) {
      const s = g.seedRows[r];
      let cells: string[] = [];
      if (g.indexCol) { cells.push(`i${r}`); }
      for (let c = 0; c < g.cols; c++) { cells.push(summed(c) ? (g.numeric[c] ? s.num[c] : s.text[c]) : g.numeric[c] ? s.text[c] : s.num[c]); }
      if (s.blank === 0) { cells = cells.map(() => ''); }
      // Rare faults: a bad number anywhere, a missing or extra field.
      if (s.fault === 1) { cells[s.faultCol % width] = s.bad; }
      if (s.fault === 2 && cells.length > 1) { cells.pop(); }
      if (s.fault === 3) { cells.push('1'); }
      rows.push({ cells, doubled: s.doubled && width > 1 && s.fault < 2 && s.blank !== 0, quoteAll: s.quoteAll });
    }
    // Without a header the first row fixes the field count; keep it well formed and non-empty.
    if (!g.header && rows.length > 0) { rows[0] = { cells: Array.from({ length: width }, (_, i) => String(i)), doubled: false, quoteAll: false }; }
    return { ...g, rows };
  });

function quote(field: string, d: string, force: boolean): string {
  return force || field.includes(d) || /["\r\n]/.test(field) || /^\s|\s$/.test(field) ? `"${field.replace(/"/g, '""')}"` : field;
}

function write(t: Table): { text: string; options: EngineOptions & { delimiter: Delim; header: boolean } } {
  const d = t.delimiter;
  const eol = t.crlf ? '\r\n' : '\n';
  const lines: string[] = [];
  if (t.header) {
    const names = Array.from({ length: t.cols }, (_, i) => `c${i}`);
    lines.push([...(t.indexCol ? [''] : []), ...names].join(d));
  }
  for (const row of t.rows) {
    const line = row.cells.map((c) => quote(c, d, row.quoteAll)).join(d);
    lines.push(row.doubled ? quote(line, d, true) : line);
  }
  let text = lines.join(eol);
  if (lines.length > 0 && t.lastNewline) { text += eol; }
  if (t.bom) { text = `\uFEFF${text}`; }
  const delimiterGiven = t.passDelimiter || !t.header || t.cols + (t.indexCol ? 1 : 0) < 2;
  return {
    text,
    options: { step: t.step, offset: t.offset, header: t.header, delimiter: d, ...(delimiterGiven ? {} : { delimiter: undefined }) },
  };
}

const chunking = fc.oneof(
  fc.constant<number[]>([]),
  fc.constant<number[]>([1]),
  fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 }),
);

describe.each([
  ['WebAssembly', true],
  ['TypeScript', false],
])('the engine with its %s fast path agrees with a reference implementation', (_, simd) => {
  it('on random CSVs written every way, fed in random chunks', () => {
    fc.assert(
      fc.property(table, chunking, (t, chunks) => {
        const { text, options } = write(t);
        if (t.rows.length === 0 && !t.header) { return; } // nothing at all: EMPTY_FILE, tested by hand
        const want = reference(text, { ...options, delimiter: t.delimiter });
        const engineOptions: EngineOptions = { step: options.step, offset: options.offset, header: options.header };
        if (options.delimiter !== undefined) { engineOptions.delimiter = options.delimiter; }
        expect(engine(Buffer.from(text), engineOptions, chunks, { simd })).toEqual(want);
      }),
      { numRuns: 1500 },
    );
  });

  it('on wide numeric tables, plain and double-encoded (the fast paths), with rare faults', () => {
    // Many fields per row, so the word-at-a-time skips cross many words; numbers of up to 24
    // fraction digits (the sample's shape has 16–20); rows double-encoded with or without inner
    // quotes; now and then an empty cell, a field too many or too few, a space, a tab or a CR.
    const digits = (n: number) => fc.array(fc.integer({ min: 0, max: 9 }), { minLength: n, maxLength: n }).map((a) => a.join(''));
    const cell = fc.oneof(
      { weight: 6, arbitrary: fc.tuple(fc.boolean(), digits(1).chain((a) => fc.integer({ min: 0, max: 6 }).chain((n) => digits(n).map((b) => a + b))), fc.integer({ min: 0, max: 3 })).chain(([neg, i, f]) => digits(f).map((fd) => `${neg ? '-' : ''}${i}${f > 0 ? `.${fd}` : ''}`)) },
      { weight: 3, arbitrary: fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 24 })).chain(([neg, n]) => digits(n).map((fd) => `${neg ? '-' : ''}0.${fd}`)) },
      { weight: 1, arbitrary: fc.constantFrom('', '7 ', '+3', '1e3', '12345678901234567', '0.1234567890123456789012345', '-', '.', 'x', '\t5', '5\r') },
    );
    const row = fc.record({
      cells: fc.array(cell, { minLength: 24, maxLength: 24 }),
      doubled: fc.boolean(),
      innerQuotes: fc.boolean(),
      fault: fc.integer({ min: 0, max: 40 }),
    });
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 24 }),
        fc.integer({ min: 1, max: 7 }),
        fc.integer({ min: 0, max: 3 }),
        fc.array(row, { maxLength: 30 }),
        fc.boolean(),
        fc.oneof(chunking, fc.constant<number[]>([4096]), fc.constant<number[]>([1000, 333])),
        // A read buffer smaller than a row, so it grows (WebAssembly memory grows in place).
        fc.constantFrom(undefined, 64, 200),
        (cols, step, offset, rows, crlf, chunks, bufferBytes) => {
          const eol = crlf ? '\r\n' : '\n';
          const lines = [Array.from({ length: cols }, (_, i) => `c${i}`).join(',')];
          for (const r of rows) {
            let cells = r.cells.slice(0, cols);
            if (r.fault === 1) { cells = cells.slice(1); }
            if (r.fault === 2) { cells.push('1'); }
            const inner = cells.map((c) => (r.innerQuotes ? `"${c}"` : c)).join(',');
            lines.push(r.doubled ? `"${inner.replace(/"/g, '""')}"` : inner);
          }
          const text = lines.join(eol) + eol;
          const want = reference(text, { step, offset, delimiter: ',', header: true });
          expect(engine(Buffer.from(text), { step, offset }, chunks, { simd, bufferBytes })).toEqual(want);
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('on long numeric columns, where sums pass 2^53 and scales change mid-file', () => {
    const cell = fc.oneof(
      fc.bigInt({ min: -(2n ** 60n), max: 2n ** 60n }).map(String),
      fc.integer({ min: -1e9, max: 1e9 }).map((v) => (v / 1000).toString()),
      fc.double({ min: -1e6, max: 1e6, noNaN: true }).map((v) => v.toString()),
    );
    fc.assert(
      fc.property(fc.array(fc.array(cell, { minLength: 3, maxLength: 3 }), { maxLength: 200 }), chunking, (rows, chunks) => {
        const text = `a,b,c\n${rows.map((r) => r.join(',')).join('\n')}\n`;
        const want = reference(text, { step: 1, offset: 0, delimiter: ',', header: true });
        expect(engine(Buffer.from(text), { step: 1, offset: 0 }, chunks, { simd })).toEqual(want);
      }),
      { numRuns: 300 },
    );
  });
});
