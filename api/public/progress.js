// How fast a job or an upload goes and how long it has left, from what the page has seen of it.

/** Rates over the last windowMs of samples, so a slow start or a pause fades out of the estimate. */
export class RateMeter {
  constructor(windowMs = 10_000) {
    this.windowMs = windowMs;
    this.samples = [];
  }

  add(done, rows = 0) {
    const at = performance.now();
    const last = this.samples.at(-1);
    // Less done than before: the work restarted (a retried job reads from the start again).
    if (last && done < last.done) { this.samples = []; }
    this.samples.push({ at, done, rows });
    while (this.samples.length > 2 && this.samples[1].at <= at - this.windowMs) { this.samples.shift(); }
  }

  /** Units of done (bytes) or rows per second; undefined until two samples are apart in time. */
  perSecond(of = 'done') {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (!first || last.at <= first.at) { return undefined; }
    return ((last[of] - first[of]) * 1000) / (last.at - first.at);
  }

  /** Seconds until done reaches total at the current rate; undefined when it cannot be told. */
  secondsLeft(total) {
    const rate = this.perSecond();
    const last = this.samples.at(-1);
    if (!rate || rate <= 0 || !last || !total) { return undefined; }
    return Math.max(0, (total - last.done) / rate);
  }
}

/** about 4 s, 1 min 05 s, 2 h 03 min */
export function duration(seconds) {
  const s = Math.ceil(seconds);
  if (s < 60) { return `${s} s`; }
  if (s < 3600) { return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`; }
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

export function bytes(n) {
  if (!Number.isFinite(n)) { return ''; }
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
