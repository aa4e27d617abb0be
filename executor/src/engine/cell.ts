import { isUtf8 } from 'node:buffer';
import { cellText, type CsvErrorCode } from './errors';
import { FLUSH, POW10, type ColumnSums } from './sums';

/*
 * One summed cell, parsed exactly and added: the exact record parser's number reader, which also
 * decides every error about a cell. Numbers: optional sign, digits, optional fraction, optional
 * exponent; spaces and tabs around them ignored; blank cells skipped.
 */

/**
 * The most digits after the decimal point a summed number may have once its exponent is applied,
 * and the most zeros its exponent may add before the point (the README's "Numbers" names it):
 * a sum's scale is that of its most precise value, and every later value is scaled to it.
 */
export const MAX_FRACTION_DIGITS = 1000;

/** Builds the error of column j (the engine knows the row and the column's name). */
export type CellError = (code: CsvErrorCode, j: number, reason: string) => Error;

function isDigit(c: number): boolean {
  return (c - 48) >>> 0 < 10;
}

/** Where the parts of a number lie in its cell; reused, so parsing allocates nothing. */
interface NumberParts {
  neg: boolean;
  /** Integer digits [intStart, intEnd), fraction digits [fracStart, fracEnd). */
  intStart: number;
  intEnd: number;
  fracStart: number;
  fracEnd: number;
  exponent: number;
  /** All the digits as one integer, exact while below 2^53. */
  digits: number;
}

const parts: NumberParts = { neg: false, intStart: 0, intEnd: 0, fracStart: 0, fracEnd: 0, exponent: 0, digits: 0 };

/** Parse b[s, e) (trimmed, not empty) into parts; false when it is not a number. */
function parseNumber(b: Buffer, s: number, e: number): boolean {
  let p = s;
  parts.neg = b[p] === 45;
  if (b[p] === 45 || b[p] === 43) { p++; }
  parts.intStart = p;
  let v = 0;
  while (p < e && isDigit(b[p])) { v = v * 10 + (b[p++] - 48); }
  parts.intEnd = p;
  parts.fracStart = parts.fracEnd = p;
  if (p < e && b[p] === 46) {
    parts.fracStart = ++p;
    while (p < e && isDigit(b[p])) { v = v * 10 + (b[p++] - 48); }
    parts.fracEnd = p;
  }
  parts.digits = v;
  parts.exponent = 0;
  if (parts.intEnd === parts.intStart && parts.fracEnd === parts.fracStart) { return false; }
  if (p < e && (b[p] | 32) === 101) {
    p++;
    let neg = false;
    if (p < e && (b[p] === 45 || b[p] === 43)) { neg = b[p++] === 45; }
    const es = p;
    let exp = 0;
    while (p < e && isDigit(b[p])) {
      if (exp < 1e9) { exp = exp * 10 + (b[p] - 48); }
      p++;
    }
    if (p === es) { return false; }
    parts.exponent = neg ? -exp : exp;
  }
  return p === e;
}

/** Parse the cell b[s0, e0) of column j and add it to sums; false when it is blank. */
export function addCell(sums: ColumnSums, j: number, b: Buffer, s0: number, e0: number, error: CellError): boolean {
  let s = s0;
  let e = e0;
  while (s < e && (b[s] === 32 || b[s] === 9)) { s++; }
  while (e > s && (b[e - 1] === 32 || b[e - 1] === 9)) { e--; }
  if (s === e) { return false; }
  if (!parseNumber(b, s, e)) {
    const cell = b.subarray(s0, e0);
    if (cell.includes(0) || !isUtf8(cell)) { throw error('NOT_TEXT', j, 'the cell is not UTF-8 text; is this a CSV file?'); }
    throw error('NON_NUMERIC', j, `${cellText(b, s0, e0)} is not a number`);
  }
  let scale = parts.fracEnd - parts.fracStart - parts.exponent;
  let shift = 0;
  if (scale < 0) {
    shift = -scale;
    scale = 0;
  }
  if (scale > MAX_FRACTION_DIGITS || shift > MAX_FRACTION_DIGITS) { throw error('NUMBER_OUT_OF_RANGE', j, outOfRange(b, s0, e0, scale, shift)); }
  sums.count[j]++;
  const v = parts.digits;
  if (v < FLUSH && shift <= 22 && v * POW10[shift] < FLUSH) {
    const m = v * POW10[shift];
    sums.addNumber(j, parts.neg ? -m : m, scale);
    return true;
  }
  const digits = b.toString('latin1', parts.intStart, parts.intEnd) + b.toString('latin1', parts.fracStart, parts.fracEnd);
  const m = BigInt(digits) * 10n ** BigInt(shift);
  sums.addBig(j, parts.neg ? -m : m, scale);
  return true;
}

function outOfRange(b: Buffer, s0: number, e0: number, scale: number, shift: number): string {
  const limit = `decisum sums numbers with at most ${MAX_FRACTION_DIGITS}`;
  const withExponent = parts.exponent !== 0 ? ' once its exponent is applied' : '';
  if (scale > MAX_FRACTION_DIGITS) { return `${cellText(b, s0, e0)} has ${scale} digits after the decimal point${withExponent}; ${limit}`; }
  return `${cellText(b, s0, e0)} has an exponent that adds ${shift} zeros before the decimal point; ${limit}`;
}
