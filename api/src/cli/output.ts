import type { ActiveCount, Job } from '@decisum/shared';
import { formatBytes, formatDuration, type RateMeter } from './progress';

/** Share of the file read, in [0, 1]; undefined while the size is unknown. */
export function fraction(job: Job): number | undefined {
  const { bytesRead, bytesTotal } = job.progress;
  if (job.status === 'succeeded') { return 1; }
  if (job.status === 'queued') { return undefined; }
  return bytesTotal > 0 ? Math.min(1, bytesRead / bytesTotal) : undefined;
}

/**
 * How far a job got, without the percent (the caller places it): `250 B of 1.0 KB · 40 rows`, and
 * with a meter fed by polling, `· 12000 rows/s · 4 s left`.
 */
export function progressText(job: Job, meter?: RateMeter): string {
  const { bytesRead, bytesTotal, rows } = job.progress;
  if (job.status === 'queued') { return 'waiting for an executor'; }
  const parts = [bytesTotal > 0 ? `${formatBytes(bytesRead)} of ${formatBytes(bytesTotal)}` : `${formatBytes(bytesRead)} read`, `${rows} rows`];
  if (meter && job.status === 'running') {
    const rowRate = meter.perSecond('rows');
    if (rowRate !== undefined) { parts.push(`${Math.round(rowRate)} rows/s`); }
    const left = meter.secondsLeft(bytesTotal);
    if (left !== undefined) { parts.push(`${formatDuration(left)} left`); }
  }
  return parts.join(' · ');
}

function percentText(job: Job): string {
  const f = fraction(job);
  return f === undefined ? '' : `${Math.floor(f * 100)}% · `;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ')).join('\n') + '\n';
}

/** The result as a table: one line per summed column, exact sums. */
export function resultTable(job: Job): string {
  const columns = job.result?.columns ?? [];
  return table([['column', 'index', 'count', 'sum'], ...columns.map((c) => [c.name, String(c.index), String(c.count), c.sum])]);
}

export function errorText(job: Job): string {
  const e = job.error;
  if (!e) { return job.status === 'cancelled' ? 'cancelled' : 'no error recorded'; }
  const where = [e.row !== undefined ? `row ${e.row}` : '', e.column !== undefined ? `column ${e.column}` : '']
    .filter(Boolean)
    .join(', ');
  // Engine messages already start with their place ("row 12, column col10: …"); say it once.
  const placed = where !== '' && e.message.startsWith(where);
  return `${e.code}${where && !placed ? ` at ${where}` : ''}: ${e.message}`;
}

function seconds(job: Job): string | undefined {
  if (!job.startedAt || !job.finishedAt) { return undefined; }
  const ms = Date.parse(job.finishedAt) - Date.parse(job.startedAt);
  if (!Number.isFinite(ms)) { return undefined; }
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** What `status` prints for people: the job's fields, then its result or error. */
export function jobText(job: Job): string {
  const o = job.options;
  const options = [`step ${o.step}`, `offset ${o.offset}`];
  if (o.delimiter !== undefined) { options.push(`delimiter ${JSON.stringify(o.delimiter)}`); }
  if (o.header === false) { options.push('no header'); }
  const lines: [string, string | undefined][] = [
    ['id', job.id],
    ['status', job.status],
    ['file', job.file],
    ['options', options.join(', ')],
    ['created', job.createdAt],
    ['started', job.startedAt],
    ['finished', job.finishedAt],
    ['took', seconds(job)],
    ['attempts', String(job.attempts)],
    ['progress', `${percentText(job)}${progressText(job)}`],
  ];
  if (job.result) { lines.push(['rows', String(job.result.rows)]); }
  if (job.status === 'failed' || job.status === 'cancelled') { lines.push(['error', errorText(job)]); }
  let text = lines
    .filter((l): l is [string, string] => l[1] !== undefined)
    .map(([k, v]) => `${k.padEnd(9)} ${v}`)
    .join('\n');
  text += '\n';
  if (job.result) { text += `\n${resultTable(job)}`; }
  return text;
}

export function activeText(a: ActiveCount): string {
  return `${a.active} active (${a.queued} queued, ${a.running} running)\n`;
}

/** `list`'s columns. Fixed widths, so pages printed one after another (--all) line up. */
const LIST_WIDTHS = [36, 9, 20, 16];

function listLine(cells: string[]): string {
  return cells.map((c, i) => (i < LIST_WIDTHS.length ? c.padEnd(LIST_WIDTHS[i]) : c)).join('  ').trimEnd() + '\n';
}

export const LIST_HEADER = listLine(['id', 'status', 'created', 'outcome', 'file']);

/** One line per job: what it is, and in a few words how it went. */
export function listText(jobs: Job[]): string {
  return jobs
    .map((job) => {
      const outcome =
        job.status === 'succeeded'
          ? `${job.result?.rows ?? 0} rows`
          : job.status === 'failed'
            ? (job.error?.code ?? 'failed')
            : job.status === 'running'
              ? `${percentText(job).replace(' · ', '') || `${job.progress.rows} rows`}`
              : '';
      return listLine([job.id, job.status, job.createdAt.replace(/\.\d+Z$/, 'Z'), outcome, job.file]);
    })
    .join('');
}
