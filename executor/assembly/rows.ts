/*
 * The engine's fast path in WebAssembly with 128-bit SIMD (AssemblyScript; built by
 * `npm run build:wasm` into executor/dist/rows.wasm, loaded by executor/src/engine/simd.ts).
 *
 * It takes plain rows only: no quote or NUL anywhere in [p, lim) (the caller checks), each summed
 * field `[-]digits[.digits]` with 1 to 18 digits, the row's field count exact. It stops, without
 * taking it, at the first row that is anything else, and the TypeScript engine takes that row, so
 * every answer is the TypeScript engine's answer. Fields it does not sum it skips sixteen bytes at
 * a time: one compare and one bitmask give every delimiter and line feed in the block.
 *
 * Memory is the caller's: the layout below, then the read buffer at BUF. Sums are i64 at the
 * scale the caller sets per column (SC); they stay exact because a value has at most 18 digits
 * (below 2^60) and the call returns as soon as a sum passes 2^60, so one more never overflows.
 */

/** Summed columns at most; past this the TypeScript fast path runs alone. */
export const MAX_COLUMNS: i32 = 4096;
/** i64[19]: powers of ten. */
const POW: usize = 512;
/** i32[k]: the field index of each summed column, ascending. */
export const IDX: usize = 1024;
/** i32[k]: each column's scale (fraction digits); a value with fewer is scaled up to it. */
export const SC: usize = IDX + (<usize>MAX_COLUMNS << 2);
/** i64[k]: the sums, at scale SC; the caller moves them out and zeroes them after each call. */
export const ACC: usize = SC + (<usize>MAX_COLUMNS << 2);
/** i64[k]: the current row's values, added to ACC once the whole row is known to be plain. */
const ROW: usize = ACC + (<usize>MAX_COLUMNS << 3);
/** The read buffer starts here; 16 bytes past its end must be memory too (one block's overrun). */
export const BUF: usize = 131072;

/** Why rows() returned: it reached lim or stop; a row it does not take starts at the result; a sum is past 2^60. */
export const DONE: i32 = 0;
export const OTHER_ROW: i32 = 1;
export const FULL: i32 = 2;
export let status: i32 = DONE;
/** Rows taken by the last call. */
export let taken: i32 = 0;

const LIMIT: i64 = 0x1000000000000000; // 2^60

let delim: i32 = 44;
let lastField: i32 = 0;
let k: i32 = 0;

export function setup(delimiter: i32, fieldCount: i32, columns: i32): void {
  delim = delimiter;
  lastField = fieldCount - 1;
  k = columns;
  let v: i64 = 1;
  for (let i = 0; i < 19; i++) {
    store<i64>(POW + (<usize>i << 3), v);
    v *= 10;
  }
}

/**
 * Rows from p while p < lim, stopping before a row that starts at or past stop. lim is just past
 * a line feed. Returns where it stopped; status and taken say why and how much.
 */
export function rows(p: usize, lim: usize, stop: usize, maxRecord: i32): usize {
  const dv = i8x16.splat(<i8>delim);
  const lf = i8x16.splat(10);
  taken = 0;
  status = DONE;
  while (p < lim) {
    if (p >= stop) return p;
    const rowStart = p;
    let c = <i32>load<u8>(p);
    if (c == 10 || c == 13) return other(rowStart); // blank lines: the exact parser
    let f = 0;
    let ended = false;
    for (let j = 0; j < k; j++) {
      const target = load<i32>(IDX + (<usize>j << 2));
      let n = target - f;
      if (n > 0) {
        // Just past the n-th delimiter from p, unless the line feed comes first.
        for (;;) {
          const block = v128.load(p);
          let md = i8x16.bitmask(i8x16.eq(block, dv));
          const ml = i8x16.bitmask(i8x16.eq(block, lf));
          if (ml != 0) md &= (ml & -ml) - 1;
          const count = <i32>popcnt(md);
          if (count >= n) {
            while (--n > 0) md &= md - 1;
            p += <usize>ctz(md) + 1;
            break;
          }
          if (ml != 0) return other(rowStart); // too few fields
          n -= count;
          p += 16;
        }
        f = target;
      }
      // The number: [-]digits[.digits], 1 to 18 digits in all.
      c = <i32>load<u8>(p);
      const neg = c == 45;
      p += <usize>neg;
      const s = p;
      let v: i64 = 0;
      c = <i32>load<u8>(p);
      while (<u32>(c - 48) < 10) {
        v = v * 10 + <i64>(c - 48);
        c = <i32>load<u8>(++p);
      }
      let digits = <i32>(p - s);
      let fraction = 0;
      if (c == 46) {
        const s2 = ++p;
        c = <i32>load<u8>(p);
        while (<u32>(c - 48) < 10) {
          v = v * 10 + <i64>(c - 48);
          c = <i32>load<u8>(++p);
        }
        fraction = <i32>(p - s2);
        digits += fraction;
      }
      const shift = load<i32>(SC + (<usize>j << 2)) - fraction;
      // No digits, too many, or more fraction digits than the column's scale (the caller rescales).
      if (<u32>(digits - 1) > 17 || shift < 0 || digits + shift > 18) return other(rowStart);
      v *= load<i64>(POW + (<usize>shift << 3));
      store<i64>(ROW + (<usize>j << 3), neg ? -v : v);
      if (c == delim) {
        p++;
        f++;
      } else if (f == lastField && (c == 10 || (c == 13 && load<u8>(p + 1) == 10))) {
        p += c == 10 ? 1 : 2;
        ended = true;
        break;
      } else return other(rowStart);
    }
    if (!ended) {
      // The rest of the row: exactly lastField - f more delimiters, then the line feed.
      let n = lastField - f;
      for (;;) {
        const block = v128.load(p);
        const md = i8x16.bitmask(i8x16.eq(block, dv));
        const ml = i8x16.bitmask(i8x16.eq(block, lf));
        if (ml != 0) {
          n -= <i32>popcnt(md & ((ml & -ml) - 1));
          p += <usize>ctz(ml) + 1;
          break;
        }
        n -= <i32>popcnt(md);
        if (n < 0) break;
        p += 16;
      }
      if (n != 0) return other(rowStart); // ragged: the exact parser says how
    }
    if (<i32>(p - rowStart) > maxRecord) return other(rowStart);
    let full = false;
    for (let j = 0; j < k; j++) {
      const at = ACC + (<usize>j << 3);
      const a = load<i64>(at) + load<i64>(ROW + (<usize>j << 3));
      store<i64>(at, a);
      full |= a >= LIMIT || a <= -LIMIT;
    }
    taken++;
    if (full) {
      status = FULL;
      return p;
    }
  }
  return p;
}

function other(rowStart: usize): usize {
  status = OTHER_ROW;
  return rowStart;
}
