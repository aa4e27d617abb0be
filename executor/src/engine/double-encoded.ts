import type { Scan } from './scan';
import { POW10 } from './sums';

/*
 * The double-encoded path: rows written as CSV once more and quoted whole, as pandas writes a frame
 * of strings (the reference sample is written so on every line). The engine sends a row here when
 * it opens with a quote; this path takes the rows of a plain shape in one pass over the outer
 * bytes, and leaves any other to the exact parser.
 */

const HI = 0x7f7f7f7f;

export class DoubleEncodedRows {
  // One row's summed fields, by decimal position: integer part, fraction digits 1–12 and 13–24 (as
  // integers, signed like the value), and the count of fraction digits.
  private int = new Float64Array(0);
  private fracHigh = new Float64Array(0);
  private fracLow = new Float64Array(0);
  private fracDigits = new Int32Array(0);

  constructor(private readonly scan: Scan) {}

  /** Take the scan's layout (once it is known). */
  setup(): void {
    const k = this.scan.sums.columns;
    this.int = new Float64Array(k);
    this.fracHigh = new Float64Array(k);
    this.fracLow = new Float64Array(k);
    this.fracDigits = new Int32Array(k);
  }

  /**
   * Double-encoded rows from p: `"`, the record written as CSV once more with its quotes doubled,
   * `"`, a line feed. One pass over the outer bytes, `""` being the inner quote; no copy. It takes
   * only rows of a plain shape (each inner field unquoted, or quoted without quotes inside; the
   * summed ones numbers), ending before end and before the first NUL; it returns the start of the
   * first row it does not take, which then goes through the exact parser.
   */
  // The hot loop of double-encoded files, over 80 lines on purpose: its word loops are written out
  // rather than called so that they stay in one optimised loop with its locals in registers.
  rows(p: number, end: number, stop: number): number {
    const scan = this.scan;
    const b = scan.bytes; // the buffer with its slack: reads past end meet the sentinel quotes
    const w32 = scan.words;
    const d = scan.delimiter;
    const dPat = Math.imul(d, 0x01010101);
    const lim = Math.min(end, scan.nulPos);
    const k = scan.sums.columns;
    const idx = scan.indices;
    const lastField = scan.fieldCount - 1;
    const maxRec = scan.maxRecordBytes;
    const int = this.int;
    const fracHigh = this.fracHigh;
    const fracLow = this.fracLow;
    const fracDigits = this.fracDigits;
    b.fill(34, end, end + 8); // sentinel: every scan below stops at end
    rows: while (p < lim) {
      if (p >= stop || b[p] !== 34) { return p; }
      const rowStart = p;
      p++;
      let f = 0;
      let j = 0;
      let target = idx[0];
      for (;;) {
        let c = b[p];
        let quoted = 0;
        if (c === 34) {
          // `""` opens an inner quoted field; `"""`, or a lone `"` (the outer quote closing on an empty field): the exact parser.
          if (b[p + 1] !== 34 || b[p + 2] === 34) { return rowStart; }
          quoted = 1;
          p += 2;
          c = b[p];
        }
        if (f === target) {
          // A summed field: [-]digits[.digits], integer part up to 15 digits, fraction up to 24.
          const neg = +(c === 45);
          p += neg;
          const s0 = p;
          let vi = 0;
          c = b[p];
          while ((c - 48) >>> 0 < 10) {
            vi = vi * 10 + (c - 48);
            c = b[++p];
          }
          let nd = p - s0;
          if (nd > 15) { return rowStart; }
          let v1 = 0;
          let v2 = 0;
          let fr = 0;
          if (c === 46) {
            const s1 = ++p;
            const e1 = s1 + 12;
            c = b[p];
            while ((c - 48) >>> 0 < 10 && p < e1) {
              v1 = v1 * 10 + (c - 48);
              c = b[++p];
            }
            const n1 = p - s1;
            v1 *= POW10[12 - n1];
            const s2 = p;
            while ((c - 48) >>> 0 < 10) {
              v2 = v2 * 10 + (c - 48);
              c = b[++p];
            }
            const n2 = p - s2;
            if (n2 > 12) { return rowStart; }
            v2 *= POW10[12 - n2];
            fr = n1 + n2;
            nd += fr;
          }
          if (nd === 0) { return rowStart; }
          int[j] = neg === 0 ? vi : -vi;
          fracHigh[j] = neg === 0 ? v1 : -v1;
          fracLow[j] = neg === 0 ? v2 : -v2;
          fracDigits[j] = fr;
          j++;
          target = j < k ? idx[j] : -1;
          if (quoted !== 0) {
            if (c !== 34 || b[p + 1] !== 34) { return rowStart; }
            p += 2;
            c = b[p];
          }
        } else if (quoted !== 0) {
          // Skip to the next quote, a word at a time: it must close the inner field (`""`).
          let wi = p >> 2;
          let low = -1 << ((p & 3) << 3);
          let m = 0;
          for (;;) {
            const y = w32[wi] ^ 0x22222222;
            m = ~(((y & HI) + HI) | y | HI) & low;
            if (m !== 0) { break; }
            wi++;
            low = -1;
          }
          p = (wi << 2) + ((31 - Math.clz32(m & -m)) >> 3);
          if (b[p + 1] !== 34) { return rowStart; }
          p += 2;
          c = b[p];
        } else {
          // Skip to the next delimiter or quote, a word at a time.
          let wi = p >> 2;
          let low = -1 << ((p & 3) << 3);
          let m = 0;
          for (;;) {
            const w = w32[wi];
            const x = w ^ dPat;
            const y = w ^ 0x22222222;
            m = (~(((x & HI) + HI) | x | HI) | ~(((y & HI) + HI) | y | HI)) & low;
            if (m !== 0) { break; }
            wi++;
            low = -1;
          }
          p = (wi << 2) + ((31 - Math.clz32(m & -m)) >> 3);
          c = b[p];
        }
        // After the field: the delimiter, or the outer quote closing and the line feed.
        if (c === d) {
          p++;
          f++;
          continue;
        }
        if (c !== 34) { return rowStart; }
        c = b[p + 1];
        if (c === 10) { p += 2; }
        else if (c === 13 && b[p + 2] === 10) { p += 3; }
        else { return rowStart; }
        break;
      }
      if (f !== lastField || j !== k || p > lim || p - rowStart > maxRec) { return rowStart; }
      scan.sums.addSplitRow(int, fracHigh, fracLow, fracDigits);
      scan.rows++;
      scan.records++;
      continue rows;
    }
    return p;
  }
}
