/*
 * Exact sums per summed column, and their decimal text.
 *
 * A column's sum is an integer at a scale (a count of fraction digits): the most fraction digits
 * of any value added to it. Small parts of it live in doubles, which are exact below 2^53, and move
 * to BigInt before one could lose a digit; a value with more fraction digits than the column's
 * scale so far rescales the column first. The double-encoded path keeps sums of its own, split by
 * decimal position (integer part, fraction digits 1–12, digits 13–24), so it never rescales.
 */

/** Accumulators move to BigInt past this, so an addend below 2^52 can never make a double inexact. */
export const FLUSH = 4503599627370496; // 2^52
export const POW10: number[] = [];
for (let i = 0, v = 1; i <= 22; i++, v *= 10) { POW10.push(v); }

/** Fraction digits of each of the split sums' two fraction parts. */
const SPLIT_DIGITS = 12;
const SPLIT_SCALE = 2 * SPLIT_DIGITS;

export interface ColumnResult {
  name: string;
  index: number;
  sum: string;
  value: number;
  count: number;
}

/** Exact per-column sums as BigInt strings at their scales: what a worker sends back. */
export interface PartialSums {
  rows: number;
  records: number;
  sums: string[];
  scales: number[];
  counts: number[];
}

export class ColumnSums {
  /** Part of each sum held in a double: an exact integer below 2^52 at the column's scale. */
  readonly small: Float64Array;
  /** The rest of each sum, at the column's scale. */
  readonly big: bigint[];
  /** Fraction digits each column's sum is kept at. */
  readonly scale: Int32Array;
  /** Non-empty cells added to each column, beyond rowsInEveryColumn. */
  readonly count: Float64Array;
  /** Rows that had a value in every summed column (the plain fast path's): one more to each count. */
  rowsInEveryColumn = 0;
  /** Bumped whenever a scale changes, so a copy of the scales (the WebAssembly path's) knows it is stale. */
  scalesVersion = 0;

  // The split sums of double-encoded rows: integer parts, fraction digits 1–12 and 13–24 as integers.
  readonly splitInt: Float64Array;
  readonly splitFracHigh: Float64Array;
  readonly splitFracLow: Float64Array;
  /** Flushed split sums, at scale 24. */
  readonly splitBig: bigint[];
  /** Most fraction digits among the values in the split sums; -1 while there are none. */
  readonly splitScale: Int32Array;

  constructor(readonly columns: number) {
    this.small = new Float64Array(columns);
    this.big = new Array<bigint>(columns).fill(0n);
    this.scale = new Int32Array(columns);
    this.count = new Float64Array(columns);
    this.splitInt = new Float64Array(columns);
    this.splitFracHigh = new Float64Array(columns);
    this.splitFracLow = new Float64Array(columns);
    this.splitBig = new Array<bigint>(columns).fill(0n);
    this.splitScale = new Int32Array(columns).fill(-1);
  }

  /** Move column j's small part into its BigInt. */
  flush(j: number): void {
    this.big[j] += BigInt(this.small[j]);
    this.small[j] = 0;
  }

  /** Add v·10^-scale to column j; v is an exact integer below 2^52 in magnitude. */
  addNumber(j: number, v: number, scale: number): void {
    if (scale > this.scale[j]) { this.rescale(j, scale); }
    const shift = this.scale[j] - scale;
    const m = shift <= 22 ? v * POW10[shift] : Infinity;
    if (m < FLUSH && m > -FLUSH) {
      const a = this.small[j] + m;
      this.small[j] = a;
      if (a >= FLUSH || a <= -FLUSH) { this.flush(j); }
    } else { this.big[j] += BigInt(v) * 10n ** BigInt(shift); }
  }

  /** Add v·10^-scale to column j, any size. */
  addBig(j: number, v: bigint, scale: number): void {
    if (scale > this.scale[j]) { this.rescale(j, scale); }
    this.big[j] += v * 10n ** BigInt(this.scale[j] - scale);
  }

  /**
   * Add one double-encoded row's summed fields, each given as its integer part, fraction digits
   * 1–12 and 13–24 (as integers, signed like the value) and its count of fraction digits.
   */
  addSplitRow(int: Float64Array, fracHigh: Float64Array, fracLow: Float64Array, fracDigits: Int32Array): void {
    const { splitInt, splitFracHigh, splitFracLow, splitScale, count } = this;
    for (let j = 0; j < this.columns; j++) {
      const a = splitInt[j] + int[j];
      const a1 = splitFracHigh[j] + fracHigh[j];
      const a2 = splitFracLow[j] + fracLow[j];
      splitInt[j] = a;
      splitFracHigh[j] = a1;
      splitFracLow[j] = a2;
      if (a >= FLUSH || a <= -FLUSH || a1 >= FLUSH || a1 <= -FLUSH || a2 >= FLUSH || a2 <= -FLUSH) { this.flushSplit(j); }
      if (fracDigits[j] > splitScale[j]) { splitScale[j] = fracDigits[j]; }
      count[j]++;
    }
  }

  /** Column j's exact sum as an integer at a scale: the most fraction digits of any value in it. */
  total(j: number): [bigint, number] {
    let sum = this.big[j] + BigInt(this.small[j]);
    let scale = this.scale[j];
    const splitScale = this.splitScale[j];
    if (splitScale >= 0) {
      this.flushSplit(j);
      const split = this.splitBig[j] / 10n ** BigInt(SPLIT_SCALE - splitScale); // exact: no value in it has more fraction digits
      const s = Math.max(scale, splitScale);
      sum = sum * 10n ** BigInt(s - scale) + split * 10n ** BigInt(s - splitScale);
      scale = s;
    }
    return [sum, scale];
  }

  /** Cells summed in column j. */
  cells(j: number): number {
    return this.count[j] + this.rowsInEveryColumn;
  }

  /** The sums as a worker sends them back. */
  partial(rows: number, records: number): PartialSums {
    const sums: string[] = [];
    const scales: number[] = [];
    const counts: number[] = [];
    for (let j = 0; j < this.columns; j++) {
      const [sum, scale] = this.total(j);
      sums.push(sum.toString());
      scales.push(scale);
      counts.push(this.cells(j));
    }
    return { rows, records, sums, scales, counts };
  }

  /** Per-column results: exact sums as decimal text at the column's scale. */
  results(names: string[], indices: ArrayLike<number>): ColumnResult[] {
    const out: ColumnResult[] = [];
    for (let j = 0; j < this.columns; j++) {
      const [total, scale] = this.total(j);
      out.push(columnResult(names[j], indices[j], total, scale, this.cells(j)));
    }
    return out;
  }

  private rescale(j: number, scale: number): void {
    this.big[j] = (this.big[j] + BigInt(this.small[j])) * 10n ** BigInt(scale - this.scale[j]);
    this.small[j] = 0;
    this.scale[j] = scale;
    this.scalesVersion++;
  }

  private flushSplit(j: number): void {
    const high = 10n ** BigInt(SPLIT_DIGITS);
    this.splitBig[j] += (BigInt(this.splitInt[j]) * high + BigInt(this.splitFracHigh[j])) * high + BigInt(this.splitFracLow[j]);
    this.splitInt[j] = 0;
    this.splitFracHigh[j] = 0;
    this.splitFracLow[j] = 0;
  }
}

/** Exact decimal text of an integer scaled by 10^scale; the scale is kept, trailing zeros included. */
export function formatScaled(total: bigint, scale: number): string {
  const neg = total < 0n;
  let s = (neg ? -total : total).toString();
  if (scale > 0) {
    if (s.length <= scale) { s = '0'.repeat(scale - s.length + 1) + s; }
    s = `${s.slice(0, s.length - scale)}.${s.slice(s.length - scale)}`;
  }
  return neg ? `-${s}` : s;
}

function columnResult(name: string, index: number, total: bigint, scale: number, count: number): ColumnResult {
  const sum = formatScaled(total, scale);
  return { name, index, sum, value: Number(sum), count };
}

/** Add partial sums (from byte ranges of one file) into one exact result. */
export function mergePartials(layout: { indices: number[]; names: string[] }, parts: PartialSums[]): { rows: number; columns: ColumnResult[] } {
  const columns = layout.indices.map((index, j) => {
    let scale = 0;
    for (const p of parts) { scale = Math.max(scale, p.scales[j]); }
    let total = 0n;
    let count = 0;
    for (const p of parts) {
      total += BigInt(p.sums[j]) * 10n ** BigInt(scale - p.scales[j]);
      count += p.counts[j];
    }
    return columnResult(layout.names[j], index, total, scale, count);
  });
  return { rows: parts.reduce((n, p) => n + p.rows, 0), columns };
}
