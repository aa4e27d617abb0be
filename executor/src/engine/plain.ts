import type { Scan } from './scan';
import type { SimdRows } from './simd';
import { FLUSH } from './sums';

/*
 * The plain-row fast path: rows with no quote or NUL byte, each ending in a line feed. The summed
 * fields are parsed into integers scaled by their fraction digits and added at once; the fields
 * between them are skipped without being read. Rows go 16 bytes a step through the WebAssembly
 * path (simd.ts) when it can take the layout, else a 32-bit word a step here (wordRows), which also
 * takes each row the WebAssembly path stops at. A row neither takes (spaces, '+', exponents, empty
 * or ragged fields, long numbers) has what was added of it taken back and goes through the exact
 * parser, which is also the only path that raises errors, so every path agrees on what a file means.
 *
 * SWAR over an Int32Array view: a byte equal to the pattern's byte becomes 0x80 in the mask,
 * exactly. The fast region always ends with a line feed inside the buffer, and the buffer's
 * length is a multiple of 4, so whole words can be read from the word holding p up to that
 * line feed: no byte-by-byte prologue or tail. Bytes before p are masked off.
 */

const LF_PAT = 0x0a0a0a0a;
const HI = 0x7f7f7f7f;
/** (w - B11) & ~w & M80 is non-zero exactly when some byte of w is below 11 (a line feed, a tab, …). */
const B11 = 0x0b0b0b0b;
const M80 = 0x80808080 | 0;

/** Fewer plain rows than this before one the WebAssembly path does not take, and wordRows takes the rest of the chunk. */
const SIMD_MIN_RUN = 8;

export class PlainRows {
  /** The value and fraction digits of each summed field of the row being read: what reject takes back. */
  private taken = new Float64Array(0);
  private takenScale = new Int32Array(0);
  /** Whether rows go through simd: it is there and can take this layout. */
  private simdOn = false;
  /** The sums' scalesVersion that simd holds the scales of; -1 for none. */
  private simdScalesVersion = -1;

  constructor(
    private readonly scan: Scan,
    private readonly simd: SimdRows | null,
  ) {}

  /** Take the scan's layout (once it is known). */
  setup(): void {
    const { sums, delimiter, fieldCount, indices } = this.scan;
    this.taken = new Float64Array(sums.columns);
    this.takenScale = new Int32Array(sums.columns);
    this.simdOn = this.simd !== null && sums.columns > 0 && this.simd.setup(delimiter, fieldCount, indices);
    this.simdScalesVersion = -1;
  }

  /** Rows in [p, lim) (no quote or NUL; lim just past a line feed), up to the first starting at or past stop; returns where it stopped. */
  rows(p: number, lim: number, stop: number): number {
    return this.simdOn ? this.simdRows(this.simd as SimdRows, p, lim, stop) : this.wordRows(p, lim, stop);
  }

  /** Plain rows through the WebAssembly fast path; each row it does not take goes through wordRows. */
  private simdRows(simd: SimdRows, p: number, lim: number, stop: number): number {
    const scan = this.scan;
    const sums = scan.sums;
    while (p < lim && p < stop) {
      if (this.simdScalesVersion !== sums.scalesVersion) {
        simd.scales(sums.scale);
        this.simdScalesVersion = sums.scalesVersion;
      }
      p = simd.rows(p, lim, stop, scan.maxRecordBytes);
      const n = simd.taken;
      if (n > 0) {
        scan.rows += n;
        scan.records += n;
        sums.rowsInEveryColumn += n;
        simd.takeSums(sums.big);
      }
      // wordRows takes the row it stopped at; and the rest of [p, lim) too when such rows come thick here.
      if (simd.otherRow) { p = this.wordRows(p, n < SIMD_MIN_RUN ? lim : scan.buf.indexOf(10, p) + 1, stop); }
    }
    return p;
  }

  /**
   * Rows in [p, lim), each ending in a line feed with no quote or NUL before lim.
   *
   * Fields not summed are skipped a word at a time (the word loops are written out here rather
   * than called, so that they stay in the optimised loop): a first word masked below p, then two
   * words per turn while neither holds a byte below 11 (a line feed, or a rare tab or control
   * byte) nor the last delimiter wanted, with one popcount per pair, then single words with
   * exact masks. Any row the fast path does not take goes through slowRecord, from its start.
   */
  // The hot loop, over 80 lines on purpose: its word loops are written out rather than called so
  // that they stay in one optimised loop with its locals in registers (see above).
  private wordRows(p: number, lim: number, stop: number): number {
    const scan = this.scan;
    const sums = scan.sums;
    const buf = scan.buf;
    const w32 = scan.words;
    const d = scan.delimiter;
    const dPat = Math.imul(d, 0x01010101);
    const k = sums.columns;
    const idx = scan.indices;
    const taken = this.taken;
    const takenScale = this.takenScale;
    const small = sums.small;
    const scale = sums.scale;
    const lastField = scan.fieldCount - 1;
    const maxRec = scan.maxRecordBytes;
    rows: while (p < lim) {
      if (p >= stop) { return p; }
      const rowStart = p;
      let c = buf[p];
      if (k === 0 || c === 10 || c === 13) {
        // Blank or all-empty rows are not records: only the exact parser tells them apart.
        p = scan.exactRecord(p, lim);
        continue;
      }
      let f = 0;
      let ended = false;
      for (let j = 0; j < k; j++) {
        let n = idx[j] - f;
        if (n > 0) {
          // Go just past the n-th delimiter from p, unless the line feed comes first.
          let wi = p >> 2;
          let w = w32[wi];
          let low = -1 << ((p & 3) << 3);
          let md = 0;
          for (;;) {
            // One word exactly (bytes before p masked off).
            const x = w ^ dPat;
            const y = w ^ LF_PAT;
            md = ~(((x & HI) + HI) | x | HI) & low;
            const mn = ~(((y & HI) + HI) | y | HI) & low;
            if (mn !== 0) { md &= (mn & -mn) - 1; }
            const cw = Math.imul(md >>> 7, 0x01010101) >>> 24;
            if (cw >= n) { break; }
            if (mn !== 0) {
              p = this.reject(rowStart, lim, j);
              continue rows;
            }
            n -= cw;
            // Two words per turn while neither holds a byte below 11.
            let w0 = 0;
            let w1 = 0;
            for (;;) {
              w0 = w32[wi + 1];
              w1 = w32[wi + 2];
              // A byte below 11 in either word leaves one below 11 in their AND (text may give false alarms).
              const both = w0 & w1;
              if ((((both - B11) & ~both) & M80) !== 0) { break; }
              const x0 = w0 ^ dPat;
              const x1 = w1 ^ dPat;
              const m0 = ~(((x0 & HI) + HI) | x0 | HI);
              const m1 = ~(((x1 & HI) + HI) | x1 | HI);
              const c2 = Math.imul((m0 >>> 7) + (m1 >>> 7), 0x01010101) >>> 24;
              if (c2 >= n) {
                // In the first word or the second: chosen without a branch (t is 0 or -1).
                const c0 = Math.imul(m0 >>> 7, 0x01010101) >>> 24;
                const t = (c0 - n) >> 31;
                md = m0 ^ ((m0 ^ m1) & t);
                n -= c0 & t;
                wi += 1 - t;
                low = 0;
                break;
              }
              n -= c2;
              wi += 2;
            }
            if (low === 0) { break; }
            w = w0;
            wi++;
            low = -1;
          }
          // The n-th flag of md: the first byte whose running count of flags reaches n.
          const z = Math.imul(md >>> 7, 0x01010101) ^ Math.imul(n, 0x01010101);
          const zm = ~(((z & HI) + HI) | z | HI);
          p = (wi << 2) + ((31 - Math.clz32(zm & -zm)) >> 3) + 1;
          f = idx[j];
        }
        // The number: integer arithmetic while it has at most 9 digits, a branch-free sign.
        c = buf[p];
        const neg = +(c === 45);
        p += neg;
        const s = p;
        let v = 0;
        c = buf[p];
        while ((c - 48) >>> 0 < 10) {
          v = (v * 10 + (c - 48)) | 0;
          c = buf[++p];
        }
        let nd = p - s;
        let fr = 0;
        if (c === 46) {
          const s2 = ++p;
          c = buf[p];
          while ((c - 48) >>> 0 < 10) {
            v = (v * 10 + (c - 48)) | 0;
            c = buf[++p];
          }
          fr = p - s2;
          nd += fr;
        }
        let val = (v ^ -neg) + neg;
        if (nd - 1 >>> 0 > 8) {
          // No digits, or more than 9: the exact parser for none or more than 15, doubles up to 15.
          if (nd === 0 || nd > 15) {
            p = this.reject(rowStart, lim, j);
            continue rows;
          }
          let u = 0;
          for (let q = s; q < p; q++) {
            const e = buf[q];
            if (e !== 46) { u = u * 10 + (e - 48); }
          }
          val = neg === 0 ? u : -u;
        }
        taken[j] = val;
        takenScale[j] = fr;
        if (c === d) {
          p++;
          f++;
        } else if (f === lastField && (c === 10 || (c === 13 && buf[p + 1] === 10))) {
          p += c === 10 ? 1 : 2;
          ended = true;
        } else {
          p = this.reject(rowStart, lim, j);
          continue rows;
        }
        // Added at once (taken back by reject if the row goes to the exact parser after all).
        if (fr === scale[j]) {
          const a = small[j] + val;
          small[j] = a;
          if (Math.abs(a) >= FLUSH) { sums.flush(j); }
        } else { sums.addNumber(j, val, fr); }
        if (ended) { break; }
      }
      if (!ended) {
        // The rest of the row: exactly lastField - f more delimiters, then the line feed.
        let n = lastField - f;
        let wi = p >> 2;
        let w = w32[wi];
        let x = w ^ dPat;
        let y = w ^ LF_PAT;
        const low = -1 << ((p & 3) << 3);
        let md = ~(((x & HI) + HI) | x | HI) & low;
        let mn = ~(((y & HI) + HI) | y | HI) & low;
        for (;;) {
          if (mn !== 0) {
            md &= (mn & -mn) - 1;
            n -= Math.imul(md >>> 7, 0x01010101) >>> 24;
            break;
          }
          n -= Math.imul(md >>> 7, 0x01010101) >>> 24;
          if (n < 0) { break; }
          for (;;) {
            const w0 = w32[wi + 1];
            const w1 = w32[wi + 2];
            const both = w0 & w1;
            if ((((both - B11) & ~both) & M80) !== 0) { break; }
            const x0 = w0 ^ dPat;
            const x1 = w1 ^ dPat;
            const m = (~(((x0 & HI) + HI) | x0 | HI) >>> 7) + (~(((x1 & HI) + HI) | x1 | HI) >>> 7);
            n -= Math.imul(m, 0x01010101) >>> 24;
            wi += 2;
          }
          w = w32[++wi];
          x = w ^ dPat;
          y = w ^ LF_PAT;
          md = ~(((x & HI) + HI) | x | HI);
          mn = ~(((y & HI) + HI) | y | HI);
        }
        if (n !== 0) {
          // Ragged, or a delimiter count the exact parser must judge.
          p = this.reject(rowStart, lim, k);
          continue;
        }
        p = (wi << 2) + ((31 - Math.clz32(mn & -mn)) >> 3) + 1;
      }
      if (p - rowStart > maxRec) {
        p = this.reject(rowStart, lim, k); // LINE_TOO_LONG, from the exact parser
        continue;
      }
      sums.rowsInEveryColumn++;
      scan.rows++;
      scan.records++;
    }
    return p;
  }

  /** Take back the first n summed fields of a row wordRows added, and send the row through the exact parser. */
  private reject(rowStart: number, lim: number, n: number): number {
    const sums = this.scan.sums;
    for (let j = 0; j < n; j++) { sums.addNumber(j, -this.taken[j], this.takenScale[j]); }
    return this.scan.exactRecord(rowStart, lim);
  }
}
