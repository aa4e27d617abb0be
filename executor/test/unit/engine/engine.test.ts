import { readFileSync } from 'node:fs';
import { AppError, type JobResult } from '@decisum/shared';
import { createSummer, type EngineOptions } from '../../../src/engine';
import { SAMPLE } from '../../../../test/support/sample';

function sum(input: string | Buffer, options: Partial<EngineOptions> = {}, chunk = 0): JobResult {
  const data = typeof input === 'string' ? Buffer.from(input) : input;
  const s = createSummer({ step: 10, offset: 0, ...options });
  const size = chunk > 0 ? chunk : Math.max(1, data.length);
  for (let i = 0; i < data.length; i += size) { s.push(data.subarray(i, i + size)); }
  return s.finish();
}

/** Sums as {name: sum} for short assertions. */
function sums(input: string | Buffer, options: Partial<EngineOptions> = {}, chunk = 0): Record<string, string> {
  return Object.fromEntries(sum(input, options, chunk).columns.map((c) => [c.name, c.sum]));
}

function failure(input: string | Buffer, options: Partial<EngineOptions> = {}, chunk = 0): AppError {
  try {
    sum(input, options, chunk);
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    return err as AppError;
  }
  throw new Error('expected the engine to fail');
}

const every = { step: 1, offset: 0 };

describe('the reference sample', () => {
  const data = readFileSync(SAMPLE);
  const expected = [
    { name: 'col0', index: 1, sum: '87.231379072549653118', count: 168 },
    { name: 'col10', index: 11, sum: '85.5182181544556908975', count: 168 },
    { name: 'col20', index: 21, sum: '83.5099565716517882532', count: 168 },
    { name: 'col30', index: 31, sum: '89.8093183867067968988', count: 168 },
    { name: 'col40', index: 41, sum: '84.058402235531208060', count: 168 },
  ];

  it.each([0, 1, 2, 3, 64, 1000, 4096])('gives the five documented sums over 168 rows (chunks of %i bytes)', (chunk) => {
    const result = sum(data, {}, chunk);
    expect(result.rows).toBe(168);
    expect(result.columns).toEqual(expected.map((c) => ({ ...c, value: Number(c.sum) })));
  });

  it('offset 9 sums the 10th, 20th, … data columns', () => {
    expect(sum(data, { offset: 9 }).columns.map((c) => [c.name, c.index])).toEqual([
      ['col9', 10],
      ['col19', 20],
      ['col29', 30],
      ['col39', 40],
      ['col49', 50],
    ]);
  });
});

describe('records', () => {
  it('reads LF, CRLF, a BOM and a last line without a line break alike', () => {
    const want = { a: '4', c: '6' };
    for (const text of ['a,b,c\n1,x,2\n3,y,4\n', 'a,b,c\r\n1,x,2\r\n3,y,4\r\n', '\uFEFFa,b,c\n1,x,2\n3,y,4', 'a,b,c\r\n1,x,2\r\n3,y,4']) {
      expect(sums(text, { step: 2 })).toEqual(want);
      expect(sums(text, { step: 2 }, 1)).toEqual(want);
    }
  });

  it('keeps delimiters, doubled quotes and line breaks inside quoted fields', () => {
    const text = 'name,v\n"a,b",1\n"say ""hi""",2\n"two\nlines",3\n"cr\r\nlf",4\n';
    const result = sum(text, { step: 1, offset: 1 });
    expect(result.rows).toBe(4);
    expect(result.columns[0]).toMatchObject({ name: 'v', sum: '10', count: 4 });
  });

  it('accepts quoted numbers', () => {
    expect(sums('a,b\n"1.5","2"\n" 3 ",4\n', every)).toEqual({ a: '4.5', b: '6' });
  });

  it('skips blank lines and rows whose cells are all empty', () => {
    const result = sum('a,b\n1,2\n\n,\n"",""\n\r\n3,4\n', every);
    expect(result.rows).toBe(2);
    expect(result.columns.map((c) => c.sum)).toEqual(['4', '6']);
  });

  it('skips empty cells and counts only the cells summed', () => {
    const result = sum('a,b\n1,\n,2\n  ,3\n', every);
    expect(result.rows).toBe(3);
    expect(result.columns).toEqual([
      { name: 'a', index: 0, sum: '1', value: 1, count: 1 },
      { name: 'b', index: 1, sum: '5', value: 5, count: 2 },
    ]);
  });

  it('unwraps double-encoded rows, header included', () => {
    const text = '"a,b,c"\n"1,""2"",3"\n4,5,6\n"7,""8,5"",9"\n';
    expect(sums(text, { step: 2 })).toEqual({ a: '12', c: '18' });
  });

  it('does not unwrap a one-field record when the file has one column', () => {
    expect(sums('a\n"1"\n2\n', every)).toEqual({ a: '3' });
  });

  it('treats an empty first header cell as the index column', () => {
    const result = sum(',x,y\nrow1,1,2\nrow2,3,4\n', every);
    expect(result.columns.map((c) => [c.name, c.index, c.sum])).toEqual([
      ['x', 1, '4'],
      ['y', 2, '6'],
    ]);
  });

  it('takes step and offset over data columns', () => {
    const header = Array.from({ length: 25 }, (_, i) => `c${i}`).join(',');
    const row = Array.from({ length: 25 }, (_, i) => String(i)).join(',');
    const text = `${header}\n${row}\n${row}\n`;
    expect(sums(text)).toEqual({ c0: '0', c10: '20', c20: '40' });
    expect(sums(text, { offset: 9 })).toEqual({ c9: '18', c19: '38' });
    expect(sums(text, { step: 7, offset: 3 })).toEqual({ c3: '6', c10: '20', c17: '34', c24: '48' });
    expect(sum(text, { offset: 25 }).columns).toEqual([]);
  });

  it('without a header sums the first row too and names columns col{index}', () => {
    const result = sum('1,2,3\n4,5,6\n', { step: 2, header: false });
    expect(result.rows).toBe(2);
    expect(result.columns.map((c) => [c.name, c.index, c.sum])).toEqual([
      ['col0', 0, '5'],
      ['col2', 2, '9'],
    ]);
  });

  it('gives a header-only file zero rows and zero sums', () => {
    expect(sum('a,b\n', every)).toEqual({
      rows: 0,
      columns: [
        { name: 'a', index: 0, sum: '0', value: 0, count: 0 },
        { name: 'b', index: 1, sum: '0', value: 0, count: 0 },
      ],
    });
  });
});

describe('delimiters', () => {
  it.each([
    [',', 'a,b\n1,2\n3,4\n'],
    [';', 'a;b\n1;2\n3;4\n'],
    ['\t', 'a\tb\n1\t2\n3\t4\n'],
    ['|', 'a|b\n1|2\n3|4\n'],
  ])('detects %j from the header', (_d, text) => {
    expect(sums(text, every)).toEqual({ a: '4', b: '6' });
  });

  it('detects the delimiter of a double-encoded header', () => {
    expect(sums('"a;b"\n"1;2"\n', every)).toEqual({ a: '1', b: '2' });
  });

  it('uses a given delimiter over the detected one', () => {
    expect(sums('a;b;c,d\n1,2\n', { ...every, delimiter: ',' })).toEqual({ 'a;b;c': '1', d: '2' });
  });

  it('decimal commas stay data with a ; delimiter when quoted', () => {
    expect(failure('a;b\n"1,5";2\n', every)).toMatchObject({ code: 'NON_NUMERIC', row: 2, column: 'a' });
  });
});

describe('numbers', () => {
  it('reads signs, fractions, exponents and spaces exactly', () => {
    const text = 'a\n+1\n-2.5\n 3 \n1e3\n2.5E-2\n-1.5e+1\n.5\n7.\n0003\n';
    expect(sums(text, every)).toEqual({ a: '997.025' });
  });

  it('keeps the largest scale seen in the column, trailing zeros included', () => {
    expect(sums('a,b\n1.10,1\n2.2,2.000\n', every)).toEqual({ a: '3.30', b: '3.000' });
    expect(sums('a\n-0.5\n0.25\n', every)).toEqual({ a: '-0.25' });
  });

  it('sums 0.1 a million times to exactly 100000', () => {
    const text = `a\n${'0.1\n'.repeat(1_000_000)}`;
    const result = sum(text, every, 65536);
    expect(result.columns[0]).toEqual({ name: 'a', index: 0, sum: '100000.0', value: 100000, count: 1_000_000 });
  });

  it('stays exact past 2^53', () => {
    const big = '9007199254740993';
    expect(sums(`a\n${big}\n${big}\n1\n`, every)).toEqual({ a: '18014398509481987' });
    const many = `a\n${'999999999999999\n'.repeat(1000)}`;
    expect(sums(many, every)).toEqual({ a: '999999999999999000' });
    expect(sums('a\n123456789012345678901234567890.123456789\n-0.000000001\n', every)).toEqual({
      a: '123456789012345678901234567890.123456788',
    });
  });

  it('gives value as the nearest double of the exact sum', () => {
    const result = sum('a\n0.1\n0.2\n', every);
    expect(result.columns[0]).toMatchObject({ sum: '0.3', value: 0.3 });
  });

  it.each(['abc', '1,5', '1.2.3', '--1', '1e', 'e5', '.', '-', 'NaN', 'Infinity', '0x10', '1 2'])(
    'refuses %j with NON_NUMERIC, row and column',
    (cell) => {
      const err = failure(`a,b\n1,2\n3,"${cell}"\n`, every);
      expect(err.code).toBe('NON_NUMERIC');
      expect(err.row).toBe(3);
      expect(err.column).toBe('b');
      expect(err.message).toMatch(/^row 3, column b: /);
      expect(err.permanent).toBe(true);
    },
  );

  it('says which cell is not a number in a clear sentence', () => {
    const header = Array.from({ length: 11 }, (_, i) => `col${i}`).join(',');
    const ok = Array.from({ length: 11 }, () => '1').join(',');
    const bad = `${Array.from({ length: 10 }, () => '1').join(',')},abc`;
    const rows = [header, ...Array.from({ length: 10 }, () => ok), bad].join('\n');
    expect(failure(rows).message).toBe('row 12, column col10: "abc" is not a number');
  });

  it('ignores text in columns it does not sum', () => {
    expect(sums('a,b\n1,hello\n2,"wor,ld"\n')).toEqual({ a: '3' });
  });
});

describe('errors', () => {
  it('RAGGED_ROW names the row', () => {
    for (const text of ['a,b,c\n1,2,3\n1,2\n', 'a,b,c\n1,2,3\n1,2,3,4\n', 'a,b,c\n1,2,3\n"1,2"\n']) {
      const err = failure(text, every);
      expect(err).toMatchObject({ code: 'RAGGED_ROW', row: 3 });
      expect(err.message).toMatch(/^row 3: the row has \d fields but the header has 3$/);
    }
  });

  it('UNTERMINATED_QUOTE names the row where the quote opens', () => {
    expect(failure('a,b\n1,2\n3,"4\n5,6\n')).toMatchObject({ code: 'UNTERMINATED_QUOTE', row: 3 });
    expect(failure('a,b\n1,2\n3,"4\n5,6\n', {}, 1)).toMatchObject({ code: 'UNTERMINATED_QUOTE', row: 3 });
    expect(failure('"a,b\n')).toMatchObject({ code: 'UNTERMINATED_QUOTE', row: 1 });
  });

  it('NOT_TEXT for NUL bytes anywhere, and for a binary header or summed cell', () => {
    expect(failure(Buffer.from('a,b\n1,2\n3,x\u0000y\n'), { step: 1, offset: 0 })).toMatchObject({ code: 'NOT_TEXT', row: 3 });
    expect(failure(Buffer.from('a,b\n1,2\n3,4\u0000\n'), { offset: 0 })).toMatchObject({ code: 'NOT_TEXT', row: 3 });
    expect(failure(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0xff, 0xfe]))).toMatchObject({ code: 'NOT_TEXT', row: 1 });
    const badUtf8 = Buffer.concat([Buffer.from('a,b\n1,'), Buffer.from([0xc3, 0x28]), Buffer.from('\n')]);
    expect(failure(badUtf8, every)).toMatchObject({ code: 'NOT_TEXT', row: 2, column: 'b' });
  });

  it('LINE_TOO_LONG bounds a record and a quote that never closes', () => {
    const long = `a,b\n1,2\n${'9'.repeat(5000)},1\n`;
    expect(failure(long, { maxRecordBytes: 1000 })).toMatchObject({ code: 'LINE_TOO_LONG', row: 3 });
    expect(failure(long, { maxRecordBytes: 1000 }, 100)).toMatchObject({ code: 'LINE_TOO_LONG', row: 3 });
    const open = Buffer.from(`a,b\n1,"${'x,1\n'.repeat(1_000_000)}`);
    expect(failure(open, { maxRecordBytes: 1 << 20 }, 65536)).toMatchObject({ code: 'LINE_TOO_LONG', row: 2 });
  });

  it('EMPTY_FILE when there is no header', () => {
    for (const text of ['', '\n\n', '\uFEFF', '\r\n']) { expect(failure(text)).toMatchObject({ code: 'EMPTY_FILE' }); }
    expect(failure('', { header: false })).toMatchObject({ code: 'EMPTY_FILE' });
  });

  it('counts blank lines before the header as rows', () => {
    expect(failure('\na,b\n1,x\n', every)).toMatchObject({ code: 'NON_NUMERIC', row: 3, column: 'b' });
  });

  it('numbers rows by record, a quoted line break staying in its row', () => {
    expect(failure('a,b\n"x\ny",1\n2,z\n', { step: 1, offset: 1 })).toMatchObject({ row: 3, column: 'b' });
  });

  it('numbers rows from 1 at the first line without a header', () => {
    expect(failure('1,2\n3,x\n', { ...every, header: false })).toMatchObject({ code: 'NON_NUMERIC', row: 2, column: 'col1' });
  });
});

describe('createSummer', () => {
  it('does not keep the caller’s buffer', () => {
    const s = createSummer(every);
    const chunk = Buffer.from('a,b\n1,2\n3,');
    s.push(chunk);
    chunk.fill(0x20);
    chunk.write('4\n');
    s.push(Buffer.from('4\n'));
    expect(s.finish().columns.map((c) => c.sum)).toEqual(['4', '6']);
  });

  it('reports rows as it goes', () => {
    const s = createSummer({ step: 1, offset: 0 });
    s.push(Buffer.from(`a\n${'1\n'.repeat(2_000_000)}`));
    expect(s.rows).toBeGreaterThan(0);
    expect(s.finish().rows).toBe(2_000_000);
  });

  it('refuses invalid options', () => {
    expect(() => createSummer({ step: 0, offset: 0 })).toThrow(RangeError);
    expect(() => createSummer({ step: 1, offset: -1 })).toThrow(RangeError);
  });
});

describe('limits and the edges of the contract', () => {
  it('fails a header longer than the record limit with LINE_TOO_LONG, like a data row (issue 12)', () => {
    const header = `a,${'h'.repeat(2000)},c\n1,x,2\n`;
    for (const chunk of [0, 100, 1]) {
      expect(failure(header, { step: 2, offset: 0, maxRecordBytes: 1000 }, chunk)).toMatchObject({ code: 'LINE_TOO_LONG', row: 1 });
    }
    expect(failure(`a,${'h'.repeat(2000)},c\n1,x,2\n`, { step: 2, offset: 0, maxRecordBytes: 1000 }).message).toBe(
      'row 1: the record is longer than 1000 bytes; is a quote left open?',
    );
  });

  it('fails a header of 64 MiB with HEADER_TOO_LARGE, refused at MAX_HEADER_BYTES before the rest is read', () => {
    const s = createSummer({ step: 2, offset: 0 });
    const chunk = Buffer.alloc(1 << 16, 'h');
    let pushed = 0;
    let err: unknown;
    try {
      s.push(Buffer.from('a,'));
      for (; pushed < 64 << 20; pushed += chunk.length) { s.push(chunk); }
      s.push(Buffer.from(',c\n1,x,2\n'));
      s.finish();
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'HEADER_TOO_LARGE', row: 1, message: 'row 1: the header is longer than 1 MiB, the most a header may take (MAX_HEADER_BYTES)' });
    expect(pushed).toBeLessThanOrEqual(4 << 20);
  });

  it('fails a header over maxHeaderBytes with HEADER_TOO_LARGE whether it ends or not, and takes one at the limit', () => {
    const header = `a,${'h'.repeat(100)},c\n1,x,2\n`;
    for (const chunk of [0, 7]) {
      expect(failure(header, { step: 2, offset: 0, maxHeaderBytes: 100 }, chunk)).toMatchObject({ code: 'HEADER_TOO_LARGE', row: 1 });
      expect(failure(`a,${'h'.repeat(5000)}`, { step: 2, offset: 0, maxHeaderBytes: 100 }, chunk)).toMatchObject({ code: 'HEADER_TOO_LARGE' });
      expect(sums(header, { step: 2, offset: 0, maxHeaderBytes: 106 }, chunk)).toEqual({ a: '1', c: '2' });
    }
    expect(failure('\n\n1,2,3\n', { ...every, header: false, maxHeaderBytes: 4 }).message).toBe(
      'row 3: the first row is longer than 4 bytes, the most a header may take (MAX_HEADER_BYTES)',
    );
  });

  it('fails a header that would sum more than maxColumns columns with TOO_MANY_COLUMNS, naming the limit', () => {
    const header = `${Array.from({ length: 11 }, (_, i) => `c${i}`).join(',')}\n${Array(11).fill('1').join(',')}\n`;
    expect(failure(header, { ...every, maxColumns: 10 })).toMatchObject({
      code: 'TOO_MANY_COLUMNS',
      row: 1,
      message: 'row 1: the header has 11 fields, so step 1 from offset 0 would sum 11 columns; a job sums at most 10 (MAX_COLUMNS)',
    });
    expect(sum(header, { ...every, maxColumns: 11 }).columns).toHaveLength(11);
    expect(sum(header, { step: 2, offset: 0, maxColumns: 6 }).columns).toHaveLength(6);
    expect(failure(header, { step: 2, offset: 0, maxColumns: 5 })).toMatchObject({ code: 'TOO_MANY_COLUMNS' });
    expect(failure(header, { ...every, header: false, maxColumns: 10 })).toMatchObject({ code: 'TOO_MANY_COLUMNS' });
  });

  it('refuses the default MAX_COLUMNS + 1 summed columns, and sums 100,000', () => {
    const wide = (n: number) => `${Array(n).fill('c').join(',')}\n${Array(n).fill('1').join(',')}\n`;
    expect(failure(wide(100_001), every)).toMatchObject({ code: 'TOO_MANY_COLUMNS' });
    expect(sum(wide(100_000), every).columns).toHaveLength(100_000);
  });

  it('takes a number with 1,000 fraction digits exactly, and refuses 1,001 with NUMBER_OUT_OF_RANGE naming the limit', () => {
    const ones = (n: number) => '1'.repeat(n);
    expect(sums(`a\n0.${ones(1000)}\n1\n`, every)).toEqual({ a: `1.${ones(1000)}` });
    const err = failure(`a\n0.${ones(1001)}\n1\n`, every);
    expect(err).toMatchObject({ code: 'NUMBER_OUT_OF_RANGE', row: 2, column: 'a', permanent: true });
    expect(err.message).toMatch(/^row 2, column a: "0\.1{58}…" has 1001 digits after the decimal point; decisum sums numbers with at most 1000$/);
    expect(err.message).not.toMatch(/exponent/);
    expect(failure('a\n1e99999\n', every)).toMatchObject({
      code: 'NUMBER_OUT_OF_RANGE',
      message: 'row 2, column a: "1e99999" has an exponent that adds 99999 zeros before the decimal point; decisum sums numbers with at most 1000',
    });
    expect(failure('a\n1e-1001\n', every).message).toBe(
      'row 2, column a: "1e-1001" has 1001 digits after the decimal point once its exponent is applied; decisum sums numbers with at most 1000',
    );
  });

  it('reads a one-column file whose quoted header holds the delimiter as one column, as pandas writes it', () => {
    for (const chunk of [0, 1, 3]) {
      expect(sum('"amount, EUR"\n1.5\n2\n', {}, chunk).columns).toEqual([{ name: 'amount, EUR', index: 0, sum: '3.5', value: 3.5, count: 2 }]);
      expect(sums('"amount, EUR"\r\n\r\n"1.5"\r\n2\r\n', {}, chunk)).toEqual({ 'amount, EUR': '3.5' });
      expect(sums('"amount, EUR"\n', {}, chunk)).toEqual({ 'amount, EUR': '0' });
    }
  });

  it('still reads a quoted header as double-encoded when the data rows are too', () => {
    for (const chunk of [0, 1, 5]) {
      expect(sums('"a,b"\n"1,2"\n"3,4"\n', every, chunk)).toEqual({ a: '4', b: '6' });
      expect(sums('"a;""b"""\n\n"1;2"\n', every, chunk)).toEqual({ a: '1', b: '2' });
    }
  });
});
