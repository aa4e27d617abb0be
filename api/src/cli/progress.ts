/** How far a long task got, how fast it goes and how long it has left, drawn on stderr. */

export interface Out {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

interface Sample {
  at: number;
  done: number;
  rows: number;
}

/** Rates over the last windowMs of samples, so a slow start or a pause fades out of the estimate. */
export class RateMeter {
  private samples: Sample[] = [];

  constructor(
    private readonly windowMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  add(done: number, rows = 0): void {
    const at = this.now();
    const last = this.samples.at(-1);
    // Less done than before: the work restarted (a retried job reads from the start again).
    if (last && done < last.done) { this.samples = []; }
    this.samples.push({ at, done, rows });
    // Keep one sample at or past the window's start as the base the rate is measured from.
    while (this.samples.length > 2 && this.samples[1].at <= at - this.windowMs) { this.samples.shift(); }
  }

  /** Units of done (bytes) or rows per second; undefined until two samples are apart in time. */
  perSecond(of: 'done' | 'rows' = 'done'): number | undefined {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (!first || !last || last.at <= first.at) { return undefined; }
    return ((last[of] - first[of]) * 1000) / (last.at - first.at);
  }

  /** Seconds until done reaches total at the current rate; undefined when it cannot be told. */
  secondsLeft(total: number): number | undefined {
    const rate = this.perSecond('done');
    const last = this.samples.at(-1);
    if (!rate || rate <= 0 || !last || total <= 0) { return undefined; }
    return Math.max(0, (total - last.done) / rate);
  }
}

/** 4 s, 1 min 05 s, 2 h 03 min: precise where it matters, short where it does not. */
export function formatDuration(seconds: number): string {
  const s = Math.ceil(seconds);
  if (s < 60) { return `${s} s`; }
  if (s < 3600) { return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`; }
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** `1.2 MB of 2.5 MB · 80 MB/s · 4 s left`: bytes moved by an upload or a download. */
export function transferText(done: number, total: number | undefined, meter: RateMeter): string {
  const parts = [total ? `${formatBytes(done)} of ${formatBytes(total)}` : formatBytes(done)];
  const rate = meter.perSecond();
  if (rate !== undefined) { parts.push(`${formatBytes(rate)}/s`); }
  const left = total ? meter.secondsLeft(total) : undefined;
  if (left !== undefined) { parts.push(`${formatDuration(left)} left`); }
  return parts.join(' · ');
}

/** A plain line at most this often off a terminal, besides one per change of state. */
const PLAIN_EVERY_MS = 10_000;

/**
 * On a terminal: one line redrawn in place, a bar, the percent and the text. Elsewhere (a pipe, a
 * log): a plain line when the state changes and then every PLAIN_EVERY_MS, or nothing if plain is off.
 */
export class ProgressLine {
  private drawn = false;
  private lastState: string | undefined;
  private lastPlainAt = 0;

  constructor(
    private readonly out: Out,
    private readonly options: { plain: boolean; now?: () => number } = { plain: true },
  ) {}

  /** fraction in [0, 1], undefined when the total is unknown. */
  update(state: string, fraction: number | undefined, text: string): void {
    if (this.out.isTTY) {
      const pct = fraction === undefined ? '   ' : `${String(Math.floor(fraction * 100)).padStart(3)}%`;
      const width = 20;
      const filled = fraction === undefined ? 0 : Math.round(Math.min(1, fraction) * width);
      const line = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${pct} ${state}${text ? ` · ${text}` : ''}`;
      // Cut to the terminal's width, or the line wraps and \r redraws only its last row.
      const columns = this.out.columns || 80;
      this.out.write(`\r\x1b[K${line.length >= columns ? `${line.slice(0, columns - 2)}…` : line}`);
      this.drawn = true;
      return;
    }
    if (!this.options.plain) { return; }
    const now = (this.options.now ?? Date.now)();
    if (state === this.lastState && now - this.lastPlainAt < PLAIN_EVERY_MS) { return; }
    this.lastState = state;
    this.lastPlainAt = now;
    const pct = fraction === undefined ? '' : ` ${Math.floor(fraction * 100)}%`;
    this.out.write(`${state}${pct}${text ? ` · ${text}` : ''}\n`);
  }

  clear(): void {
    if (this.drawn) { this.out.write('\r\x1b[K'); }
    this.drawn = false;
  }
}
