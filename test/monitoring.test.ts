import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { Cluster, type ServiceProcess } from './support/processes';
import { hasPrometheus, metricTypes, promqlMetricNames, startPrometheus, type PrometheusServer } from './support/prometheus';
import { freePort } from './support/servers';
import { serviceUrls } from './support/services';
import { SAMPLE } from './support/sample';
import { waitFor } from './support/wait';

/**
 * deploy/prometheus (config, alert rules and their unit tests) checked with Debian's promtool,
 * deploy/grafana checked against the compose file, and both run against a real decisum: a real
 * Prometheus scrapes a real API and executor process, evaluates the rules, and answers the
 * dashboard's queries.
 */

const ROOT = path.resolve(__dirname, '..');
const PROMETHEUS_DIR = path.join(ROOT, 'deploy/prometheus');
const read = (rel: string) => fs.readFileSync(path.join(ROOT, rel), 'utf8');

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}
interface Target {
  expr: string;
  datasource: { type: string; uid: string };
}
interface Panel {
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: Target[];
}

const rules = (parseYaml(read('deploy/prometheus/alerts.yml')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
const dashboard = JSON.parse(read('deploy/grafana/dashboards/decisum.json')) as { uid: string; panels: Panel[] };
const panels = dashboard.panels.filter((p) => p.type !== 'row');
const byTitle = (title: string): Target => {
  const panel = panels.find((p) => p.title === title);
  if (!panel?.targets?.[0]) { throw new Error(`the dashboard has no panel "${title}"`); }
  return panel.targets[0];
};
/** Every PromQL expression the dashboard and the rules evaluate, with where it comes from. */
const expressions: { where: string; expr: string }[] = [
  ...rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr })),
  ...panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: t.expr }))),
];

function promtool(...args: string[]): { status: number | null; out: string } {
  const res = spawnSync('promtool', args, { cwd: PROMETHEUS_DIR, encoding: 'utf8' });
  return { status: res.status, out: `${res.stdout}${res.stderr}` };
}

if (!hasPrometheus) {
  console.warn('monitoring.test.ts: prometheus and promtool are not installed, skipping: apt-get install -y prometheus');
}
const withPrometheus = hasPrometheus ? describe : describe.skip;

withPrometheus('deploy/prometheus, checked by promtool', () => {
  it('is a valid configuration that loads the alert rules', () => {
    const res = promtool('check', 'config', 'prometheus.yml');
    expect(res).toEqual({ status: 0, out: expect.stringContaining('1 rule files found') as string });
  });

  it('has valid rules: the alerts the operator needs, each with a severity and a summary', () => {
    const res = promtool('check', 'rules', 'alerts.yml');
    expect(res).toEqual({ status: 0, out: expect.stringContaining(`SUCCESS: ${rules.length} rules found`) as string });
    expect(rules.map((r) => r.alert).sort()).toEqual([
      'DecisumApiDown',
      'DecisumApiErrors',
      'DecisumDeadLettersGrowing',
      'DecisumExecutorDown',
      'DecisumExecutorNotReady',
      'DecisumJobRunningPastLease',
      'DecisumNoExecutorReady',
      'DecisumQueueBacklogGrowing',
      'DecisumRedisLostData',
    ]);
    for (const r of rules) {
      expect({ alert: r.alert, severity: ['warning', 'critical'].includes(r.labels.severity) }).toEqual({ alert: r.alert, severity: true });
      expect({ alert: r.alert, summary: typeof r.annotations.summary }).toEqual({ alert: r.alert, summary: 'string' });
    }
  });

  it('passes its unit tests, which show every alert firing and staying silent', () => {
    const res = promtool('test', 'rules', 'alerts.test.yml');
    expect(res).toEqual({ status: 0, out: expect.stringContaining('SUCCESS') as string });
    const tests = (parseYaml(read('deploy/prometheus/alerts.test.yml')) as {
      tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
    }).tests.flatMap((t) => t.alert_rule_test);
    for (const { alert } of rules) {
      const cases = tests.filter((t) => t.alertname === alert);
      expect({ alert, fires: cases.some((t) => t.exp_alerts.length > 0), silent: cases.some((t) => t.exp_alerts.length === 0) }).toEqual({
        alert,
        fires: true,
        silent: true,
      });
    }
  });

  it('fails a rule whose test no longer holds (the unit tests can fail)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'decisum-rules-'));
    try {
      fs.writeFileSync(path.join(dir, 'alerts.yml'), read('deploy/prometheus/alerts.yml').replace('> 0.05', '> 0.5'));
      fs.copyFileSync(path.join(PROMETHEUS_DIR, 'alerts.test.yml'), path.join(dir, 'alerts.test.yml'));
      const res = spawnSync('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: dir, encoding: 'utf8' });
      expect(res.status).toBe(1);
      expect(res.stdout + res.stderr).toContain('alertname: DecisumApiErrors');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('deploy/grafana: the provisioned dashboard', () => {
  const compose = parseYaml(read('docker-compose.yml')) as { services: Record<string, { volumes?: string[]; environment?: Record<string, string> }> };
  const grafana = compose.services.grafana;
  const mounts = new Map((grafana.volumes ?? []).map((v) => v.split(':')).map(([from, to]) => [from.replace(/^\.\//, ''), to]));
  const datasource = (parseYaml(read('deploy/grafana/provisioning/datasources/prometheus.yml')) as { datasources: { uid: string; url: string }[] })
    .datasources[0];
  const provider = (parseYaml(read('deploy/grafana/provisioning/dashboards/decisum.yml')) as { providers: { options: { path: string } }[] })
    .providers[0];

  it('is mounted where the provisioning looks for it, and is Grafana’s home page', () => {
    expect(mounts.get('deploy/grafana/provisioning')).toBe('/etc/grafana/provisioning');
    expect(mounts.get('deploy/grafana/dashboards')).toBe(provider.options.path);
    expect(grafana.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).toBe(`${provider.options.path}/decisum.json`);
    expect(datasource.url).toBe('http://prometheus:9090');
  });

  it('queries the provisioned Prometheus in every panel', () => {
    expect(panels.length).toBeGreaterThan(10);
    for (const p of panels) {
      expect({ panel: p.title, uid: p.datasource?.uid, targets: (p.targets ?? []).length > 0 }).toEqual({ panel: p.title, uid: datasource.uid, targets: true });
      for (const t of p.targets ?? []) { expect({ panel: p.title, uid: t.datasource.uid }).toEqual({ panel: p.title, uid: datasource.uid }); }
    }
  });

  it('shows what an operator watches: the counts, outcomes, durations, throughput, retries, dead letters, the API and executor health', () => {
    const used = new Set(panels.flatMap((p) => (p.targets ?? []).flatMap((t) => promqlMetricNames(t.expr))));
    expect([...used].sort()).toEqual(
      expect.arrayContaining([
        'decisum_jobs_active',
        'decisum_jobs_queued',
        'decisum_jobs_running',
        'decisum_jobs_succeeded_total',
        'decisum_jobs_failed_total',
        'decisum_job_duration_seconds_bucket',
        'decisum_job_throughput_bytes_per_second_bucket',
        'decisum_job_bytes_sum',
        'decisum_storage_retries_total',
        'decisum_jobs_dead_lettered_total',
        'http_request_duration_seconds_count',
        'http_request_duration_seconds_bucket',
        'decisum_executor_ready',
        'up',
      ]),
    );
  });
});

/** What decisum's /metrics endpoints serve, by name and type, fetched from real processes. */
async function servedMetrics(urls: string[]): Promise<Map<string, string>> {
  const types = new Map<string, string>();
  for (const url of urls) {
    const res = await fetch(url);
    expect({ url, status: res.status }).toEqual({ url, status: 200 });
    for (const [name, type] of metricTypes(await res.text())) { types.set(name, type); }
  }
  return types;
}

withPrometheus('a real Prometheus scraping a running decisum', () => {
  let cluster: Cluster;
  let executor: ServiceProcess | undefined;
  let prometheus: PrometheusServer;
  let executorPort: number;
  const apiMetricsUrl = (): string => {
    const url = cluster.apis[0].metricsUrl;
    if (!url) { throw new Error('the API did not open its METRICS_PORT'); }
    return url;
  };

  beforeAll(async () => {
    const { redisUrl, amqpUrl } = await serviceUrls();
    // No executor yet: submitted jobs stay queued, so the active count holds still while Prometheus catches up.
    cluster = await Cluster.start({ redisUrl, amqpUrl, apis: 1, executors: 0, env: { METRICS_PORT: String(await freePort()) } });
    cluster.writeFile('sample.csv', fs.readFileSync(SAMPLE));
    executorPort = await freePort();
    // The shipped configuration, with the compose network's DNS discovery replaced by these processes' ports.
    const shipped = parseYaml(read('deploy/prometheus/prometheus.yml')) as { scrape_configs: { job_name: string }[] };
    const targets: Record<string, string> = { 'decisum-api': new URL(apiMetricsUrl()).host, 'decisum-executor': `127.0.0.1:${executorPort}` };
    prometheus = await startPrometheus({
      global: { scrape_interval: '1s', scrape_timeout: '900ms', evaluation_interval: '1s' },
      rule_files: [path.join(PROMETHEUS_DIR, 'alerts.yml')],
      scrape_configs: shipped.scrape_configs
        .filter((c) => c.job_name in targets)
        .map((c) => ({ job_name: c.job_name, metrics_path: '/metrics', static_configs: [{ targets: [targets[c.job_name]] }] })),
    });
  }, 90_000);

  afterAll(async () => {
    await prometheus?.stop();
    await cluster?.stop();
  });

  const value = async (expr: string): Promise<number | undefined> => {
    const result = await prometheus.query(expr);
    return result.length === 1 ? Number(result[0].value[1]) : undefined;
  };
  /** Polls until Prometheus answers `expr` with `want`; the last answer is in the failure message. */
  const untilPrometheusSays = async (expr: string, want: number) => {
    let last: number | undefined;
    await waitFor(
      async () => {
        last = await value(expr);
        return last === want ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250, what: `Prometheus to answer ${want} to ${expr}` },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; it said ${last}`);
    });
  };

  it('answers the dashboard’s active count with what GET /api/v1/jobs/active says, and alerts on no ready executor', async () => {
    const active = byTitle('Active').expr;
    await untilPrometheusSays('up{job="decisum-api"}', 1);
    for (let i = 0; i < 3; i++) { expect((await cluster.submit({ file: 'sample.csv' })).status).toBe(202); }
    const fromApi = await cluster.active();
    expect(fromApi).toEqual({ active: 3, queued: 3, running: 0 });
    await untilPrometheusSays(active, fromApi.active);
    expect(await value(byTitle('Queued').expr)).toBe(fromApi.queued);
    expect(await value(byTitle('Running').expr)).toBe(fromApi.running);
    expect(await value(byTitle('Executors ready').expr)).toBe(0);

    // The real rules run on real samples: no executor is ready, so that alert is on its way.
    await waitFor(
      async () => ((await prometheus.alerts()).some((a) => a.labels.alertname === 'DecisumNoExecutorReady' && a.state === 'pending') ? true : undefined),
      { timeoutMs: 15_000, intervalMs: 250, what: 'DecisumNoExecutorReady to be pending' },
    );
  });

  it('sees the executor ready, the jobs done and the count back to 0, as the API says', async () => {
    executor = await cluster.addExecutor({ EXECUTOR_METRICS_PORT: String(executorPort) });
    await cluster.waitForNoActive();
    await untilPrometheusSays(byTitle('Executors ready').expr, 1);
    await untilPrometheusSays('sum(decisum_jobs_succeeded_total{job="decisum-executor"})', 3);
    await untilPrometheusSays(byTitle('Active').expr, (await cluster.active()).active);
    expect(await value(byTitle('Active').expr)).toBe(0);
    await waitFor(
      async () => ((await prometheus.alerts()).some((a) => a.labels.alertname === 'DecisumNoExecutorReady') ? undefined : true),
      { timeoutMs: 15_000, intervalMs: 250, what: 'DecisumNoExecutorReady to clear' },
    );
  });

  it('accepts every expression of the dashboard and the rules as PromQL', async () => {
    for (const { where, expr } of expressions) {
      const query = expr.replace(/\$__rate_interval/g, '1m');
      await expect(prometheus.query(query).then(() => where)).resolves.toBe(where);
    }
  });

  it('serves every metric the dashboard and the rules name', async () => {
    expect(executor).toBeDefined();
    const served = await servedMetrics([`${apiMetricsUrl()}/metrics`, `http://127.0.0.1:${executorPort}/metrics`]);
    const synthetic = new Set(['up']);
    const missing: string[] = [];
    for (const { where, expr } of expressions) {
      for (const name of promqlMetricNames(expr)) {
        const base = name.replace(/_(bucket|sum|count)$/, '');
        const found =
          synthetic.has(name) || (served.has(name) && !/_(bucket|sum|count)$/.test(name)) || ['histogram', 'summary'].includes(served.get(base) ?? '');
        if (!found) { missing.push(`${name} (${where})`); }
      }
    }
    expect(missing).toEqual([]);
  });
});
