import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify as toYaml } from 'yaml';
import { freePort, spawnServer, stopChild } from './servers';
import { waitFor } from './wait';

/** The value of one series in Prometheus text format, or undefined when it is absent. */
export function sample(text: string, name: string, labels = ''): number | undefined {
  const escaped = `${name}${labels}`.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Metric families in Prometheus text format, by name, with their type (from the `# TYPE` lines). */
export function metricTypes(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
}

const PROMQL_KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan', 'atan2', 'start', 'end']);

/**
 * The metric names a PromQL expression selects: identifiers that are not functions, keywords,
 * label names (inside {…} and by/without/on/ignoring/group_*(…)) or durations.
 */
export function promqlMetricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = [...bare.matchAll(/(?<![\w:$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:]|\s*\()/g)].map((m) => m[1]);
  return [...new Set(names.filter((n) => !PROMQL_KEYWORDS.has(n.toLowerCase())))];
}

export const hasPrometheus = spawnSync('prometheus', ['--version']).status === 0 && spawnSync('promtool', ['--version']).status === 0;

export interface PrometheusServer {
  url: string;
  /** The result vector of an instant query. */
  query(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  /** Alerts Prometheus holds now (pending or firing). */
  alerts(): Promise<{ labels: Record<string, string>; state: string }[]>;
  stop(): Promise<void>;
}

interface Answer<T> {
  status: string;
  data: T;
  error?: string;
}

/**
 * A real Prometheus (Debian's package) on its own free port with its own temporary storage,
 * running the given configuration (written as prometheus.yml in its folder).
 */
export async function startPrometheus(config: object): Promise<PrometheusServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'decisum-prometheus-'));
  const port = await freePort();
  const configFile = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(configFile, toYaml(config));
  const log = path.join(dir, 'prometheus.log');
  const child = spawnServer(
    'prometheus',
    [`--config.file=${configFile}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    process.env,
    log,
  );
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await stopChild(child, 'SIGTERM', 10_000);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const api = async <T>(endpoint: string): Promise<T> => {
    const res = await fetch(`${url}/api/v1/${endpoint}`);
    const body = (await res.json()) as Answer<T>;
    if (body.status !== 'success') { throw new Error(`Prometheus ${endpoint}: ${body.error ?? res.status}`); }
    return body.data;
  };
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) { throw new Error(`prometheus exited: ${fs.readFileSync(log, 'utf8')}`); }
        return (await fetch(`${url}/-/ready`)).ok ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: `Prometheus on ${port}` },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    async query(expr) {
      const data = await api<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(`query?query=${encodeURIComponent(expr)}`);
      return data.result;
    },
    async alerts() {
      return (await api<{ alerts: { labels: Record<string, string>; state: string }[] }>('alerts')).alerts;
    },
    stop,
  };
}
