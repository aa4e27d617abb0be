import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { exposureProblem, findToken, loadConfig } from '@decisum/shared';

/**
 * docker-compose.yml, .env.example and the Dockerfile, checked without a Docker engine: Debian's
 * docker-compose (v1) validates and resolves the file, and every command, path and variable they
 * name must exist in the repository.
 */

const ROOT = path.resolve(__dirname, '..');
const read = (rel: string) => fs.readFileSync(path.join(ROOT, rel), 'utf8');
const exists = (rel: string) => fs.existsSync(path.join(ROOT, rel));
const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };

interface Service {
  image?: string;
  profiles?: string[];
  logging?: { driver: string; options?: Record<string, string> };
  mem_limit?: string;
  build?: unknown;
  command?: string[] | string;
  entrypoint?: string[] | string;
  container_name?: string;
  ports?: unknown[];
  environment?: Record<string, string | null>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] | string };
  volumes?: (string | { type: string; source: string; target: string })[];
  stop_grace_period?: string;
}

/** The variables shared/src/config.ts reads: the keys of its zod schema. */
function configVariables(): string[] {
  const source = read('shared/src/config.ts');
  const body = source.slice(source.indexOf('z.object({'), source.indexOf('\n});', source.indexOf('z.object({')));
  return [...body.matchAll(/^ {2}([A-Z][A-Z0-9_]*):/gm)].map((m) => m[1]);
}

/** KEY=value lines; comments and blank lines skipped. */
function dotenv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) { out[m[1]] = m[2]!; }
  }
  return out;
}

function seconds(duration: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(duration);
  if (!m) { throw new Error(`unknown duration ${duration}`); }
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60 }[m[2] as 'ms' | 's' | 'm'];
}

/** A command the image runs must exist: `node X/dist/Y.js` needs X/src/Y.ts, `npm run S` a script S. */
function expectRunnable(command: string[], where: string): void {
  const [bin, ...args] = command;
  if (bin === 'node') {
    const file = args.find((a) => !a.startsWith('-'));
    expect(file).toBeDefined();
    const source = file!.replace(/^(\w+)\/dist\/(.+)\.js$/, '$1/src/$2.ts');
    expect({ where, file, exists: exists(source) || exists(file!) }).toEqual({ where, file, exists: true });
    if (source !== file) {
      const outDir = (JSON.parse(read(`${file!.split('/')[0]}/tsconfig.json`)) as { compilerOptions: { outDir: string } })
        .compilerOptions.outDir;
      expect({ where, outDir }).toEqual({ where, outDir: 'dist' });
    }
  } else if (bin === 'npm') {
    const script = args[0] === 'run' ? args[1] : args[0];
    expect({ where, script, exists: script !== undefined && script in pkg.scripts }).toEqual({ where, script, exists: true });
    // The runtime image has no dev dependencies: a pre-script that builds would fail there.
    expect({ where, prescript: pkg.scripts[`pre${script}`] }).toEqual({ where, prescript: undefined });
  } else {
    throw new Error(`${where}: command ${command.join(' ')} is neither node nor npm`);
  }
}

const hasCompose = spawnSync('docker-compose', ['version'], { encoding: 'utf8' }).status === 0;
if (!hasCompose) {
  console.warn('compose.test.ts: docker-compose (v1) is not installed, skipping: apt-get install -y docker-compose');
}

/** `docker-compose config` with this env file as the .env, and only PATH from the environment. */
function composeConfig(envFile: string): { status: number | null; stdout: string; stderr: string } {
  // A developer's exported variables or own .env must not change what is checked.
  return spawnSync('docker-compose', ['--env-file', envFile, '-f', 'docker-compose.yml', 'config'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { PATH: process.env.PATH },
  });
}

/** The ports a service publishes, as [host ip, host port, container port]. */
function published(service: Service): [string, string, string][] {
  return (service.ports ?? []).map((p) => {
    const m = /^(?:([\d.]+):)?(\d+):(\d+)(?:\/tcp)?$/.exec(String(p));
    if (!m) { throw new Error(`unexpected port ${JSON.stringify(p)}`); }
    return [m[1] ?? '0.0.0.0', m[2], m[3]];
  });
}

/** Runs a shell script as a container would, with a fake `mc` or `minio` that logs its arguments. */
function runShell(script: string[], env: Record<string, string>, fakes: string[]): { status: number | null; stderr: string; calls: string[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'decisum-sh-'));
  try {
    const log = path.join(dir, 'calls.log');
    for (const name of fakes) {
      fs.writeFileSync(path.join(dir, name), `#!/bin/sh\necho "${name} $*" >> "${log}"\n`, { mode: 0o755 });
    }
    const res = spawnSync('sh', script, { encoding: 'utf8', env: { PATH: `${dir}:${process.env.PATH ?? ''}`, ...env } });
    const calls = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n') : [];
    return { status: res.status, stderr: res.stderr, calls };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

(hasCompose ? describe : describe.skip)('docker-compose.yml, as docker-compose config resolves it', () => {
  let services: Record<string, Service>;
  let volumes: Record<string, unknown>;
  let secrets: Record<string, string>;
  let tmp: string;

  beforeAll(() => {
    // What a user gets from `node scripts/compose-env.js`: .env.example with fresh secrets.
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'decisum-compose-'));
    const envFile = path.join(tmp, '.env');
    const gen = spawnSync(process.execPath, [path.join(ROOT, 'scripts/compose-env.js'), envFile], { encoding: 'utf8' });
    if (gen.status !== 0) { throw new Error(`compose-env.js failed:\n${gen.stderr}`); }
    secrets = dotenv(fs.readFileSync(envFile, 'utf8'));
    const res = composeConfig(envFile);
    if (res.status !== 0) { throw new Error(`docker-compose config failed:\n${res.stderr}`); }
    const doc = parseYaml(res.stdout) as { services: Record<string, Service>; volumes: Record<string, unknown> };
    services = doc.services;
    volumes = doc.volumes;
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('refuses to start on .env.example as it is, naming each secret it lacks', () => {
    expect(composeConfig(path.join(ROOT, '.env.example')).status).not.toBe(0);
    for (const name of ['REDIS_PASSWORD', 'RABBITMQ_PASSWORD']) {
      const envFile = path.join(tmp, `without-${name}.env`);
      fs.writeFileSync(envFile, Object.entries({ ...secrets, [name]: '' }).map(([k, v]) => `${k}=${v}`).join('\n'));
      const res = composeConfig(envFile);
      expect({ name, status: res.status, says: res.stderr.includes(`set ${name} in .env`) }).toEqual({ name, status: 1, says: true });
    }
  });

  it('generates a different random value for every secret, and never overwrites a .env', () => {
    for (const name of ['REDIS_PASSWORD', 'RABBITMQ_PASSWORD', 'MINIO_ROOT_PASSWORD', 'AWS_SECRET_ACCESS_KEY', 'GRAFANA_ADMIN_PASSWORD', 'CALLBACK_SECRET']) {
      expect({ name, value: secrets[name] }).toEqual({ name, value: expect.stringMatching(/^[0-9a-f]{48}$/) as string });
    }
    const again = spawnSync(process.execPath, [path.join(ROOT, 'scripts/compose-env.js'), path.join(tmp, '.env')], { encoding: 'utf8' });
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('exists');
    expect(dotenv(fs.readFileSync(path.join(tmp, '.env'), 'utf8'))).toEqual(secrets);
  });

  it('starts the proxy, Redis, RabbitMQ, the API and executors by default; MinIO and monitoring in profiles', () => {
    const profiles = Object.fromEntries(Object.entries(services).map(([name, s]) => [name, s.profiles ?? []]));
    expect(profiles).toEqual({
      proxy: [],
      redis: [],
      rabbitmq: [],
      api: [],
      executor: [],
      minio: ['minio'],
      'minio-init': ['minio'],
      prometheus: ['monitoring'],
      grafana: ['monitoring'],
    });
    expect(dotenv(read('.env.example')).COMPOSE_PROFILES).toBe('minio');
  });

  it('scales the API and executors behind a reverse proxy: no container names, no published ports but the proxy’s', () => {
    for (const name of ['api', 'executor']) {
      expect({ name, container_name: services[name].container_name, ports: services[name].ports }).toEqual({ name, container_name: undefined, ports: undefined });
    }
    const proxy = services.proxy;
    expect(proxy.image).toMatch(/^caddy:/);
    expect(published(proxy)).toEqual([['127.0.0.1', '8080', '8080']]);
    expect(proxy.volumes).toEqual([`${path.join(ROOT, 'deploy/caddy/Caddyfile')}:/etc/caddy/Caddyfile:ro`]);
    expect(proxy.environment).toEqual({ PROXY_PORT: '8080', API_HOST: 'api', API_PORT: services.api.environment?.PORT });
    expect(proxy.depends_on).toEqual({ api: { condition: 'service_healthy' } });
    // The Caddyfile takes exactly these variables.
    const caddyfile = read('deploy/caddy/Caddyfile');
    expect([...caddyfile.matchAll(/\{\$([A-Z_]+)(?::[^}]*)?\}/g)].map((m) => m[1]).sort()).toEqual(['API_HOST', 'API_PORT', 'PROXY_PORT']);
  });

  it('health-checks the API and executors by readiness, and Redis, RabbitMQ and MinIO', () => {
    for (const name of ['api', 'executor']) {
      expect(services[name].healthcheck?.test).toEqual(['CMD', 'node', 'scripts/healthcheck.js']);
    }
    const script = read('scripts/healthcheck.js');
    expect(script).toContain('/readyz');
    expect(script).not.toContain('/metrics');
    expect(services.redis.healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
    expect(services.rabbitmq.healthcheck?.test).toEqual(['CMD', 'rabbitmq-diagnostics', '-q', 'check_port_connectivity']);
    expect(services.minio.healthcheck).toBeDefined();
    expect(services.proxy.healthcheck).toBeDefined();
  });

  it('starts the API and executors once Redis and RabbitMQ are healthy, without waiting for MinIO', () => {
    for (const name of ['api', 'executor']) {
      expect(services[name].depends_on).toEqual({
        redis: { condition: 'service_healthy' },
        rabbitmq: { condition: 'service_healthy' },
      });
    }
  });

  it('keeps Redis durable (AOF on a volume) behind the password REDIS_URL carries', () => {
    const redis = services.redis;
    const command = redis.command as string[];
    expect(command).toEqual(expect.arrayContaining(['--appendonly', 'yes']));
    expect(command[command.indexOf('--requirepass') + 1]).toBe(secrets.REDIS_PASSWORD);
    expect(redis.environment?.REDISCLI_AUTH).toBe(secrets.REDIS_PASSWORD);
    expect(redis.volumes?.some((v) => String(typeof v === 'string' ? v : v.target).includes('/data'))).toBe(true);
    for (const name of ['api', 'executor']) {
      const config = loadConfig(Object.fromEntries(Object.entries(services[name].environment ?? {}).map(([k, v]) => [k, v ?? ''])));
      expect(decodeURIComponent(new URL(config.redisUrl).password)).toBe(secrets.REDIS_PASSWORD);
      const amqp = new URL(config.amqpUrls[0]);
      expect([amqp.username, amqp.password]).toEqual([services.rabbitmq.environment?.RABBITMQ_DEFAULT_USER, secrets.RABBITMQ_PASSWORD]);
    }
    expect(Object.keys(volumes)).toEqual(expect.arrayContaining(['redis-data', 'decisum-data', 'prometheus-data', 'grafana-data']));
  });

  it('publishes management ports on the host’s loopback only', () => {
    const all = Object.entries(services).flatMap(([name, s]) => published(s).map(([ip, port]) => ({ name, port, ip })));
    expect(all.length).toBeGreaterThan(4);
    for (const p of all) { expect(p).toEqual({ ...p, ip: '127.0.0.1' }); }
  });

  it('gives the app its own MinIO user, scoped to its bucket, never the root user', () => {
    const app = services.api.environment ?? {};
    const init = services['minio-init'];
    expect(init.environment?.APP_ACCESS_KEY).toBe(app.AWS_ACCESS_KEY_ID);
    expect(init.environment?.APP_SECRET_KEY).toBe(app.AWS_SECRET_ACCESS_KEY);
    expect(app.AWS_ACCESS_KEY_ID).not.toBe(services.minio.environment?.MINIO_ROOT_USER);
    expect(app.AWS_SECRET_ACCESS_KEY).not.toBe(services.minio.environment?.MINIO_ROOT_PASSWORD);
    expect(init.depends_on).toEqual({ minio: { condition: 'service_healthy' } });
    const policy = JSON.parse(read('deploy/minio/decisum-app-policy.json')) as { Statement: { Effect: string; Resource: string[]; Action: string[] }[] };
    const resources = policy.Statement.flatMap((st) => st.Resource);
    expect(new Set(resources)).toEqual(new Set(['arn:aws:s3:::decisum', 'arn:aws:s3:::decisum/*']));
    expect(policy.Statement.every((st) => st.Effect === 'Allow' && st.Action.every((a) => a.startsWith('s3:') && !a.includes('*')))).toBe(true);
    const mounts = (init.volumes as string[]).map((v) => v.split(':').slice(0, 2));
    expect(mounts).toEqual([
      [path.join(ROOT, 'deploy/minio/init.sh'), '/seed/init.sh'],
      [path.join(ROOT, 'deploy/minio/decisum-app-policy.json'), '/seed/decisum-app-policy.json'],
      [path.join(ROOT, 'test/fixtures/sample.csv'), '/seed/sample.csv'],
    ]);
    expect(init.entrypoint).toEqual(['/bin/sh', '/seed/init.sh']);
  });

  describe('deploy/minio/init.sh, run with a stand-in mc', () => {
    const seed = path.join(ROOT, 'deploy/minio');
    const env = (over: Record<string, string>) => ({
      MINIO_ROOT_USER: 'decisum-admin',
      MINIO_ROOT_PASSWORD: 'root-secret-1',
      APP_ACCESS_KEY: 'decisum-app',
      APP_SECRET_KEY: 'app-secret-1',
      SEED_DIR: seed,
      ...over,
    });

    it('creates the bucket, the app user with the bucket’s policy, and uploads the sample', () => {
      const res = runShell([path.join(seed, 'init.sh')], env({}), ['mc']);
      expect(res.status).toBe(0);
      expect(res.calls).toEqual([
        'mc alias set local http://minio:9000 decisum-admin root-secret-1',
        'mc mb --ignore-existing local/decisum',
        `mc admin policy create local decisum-app ${seed}/decisum-app-policy.json`,
        'mc admin user add local decisum-app app-secret-1',
        'mc admin policy attach local decisum-app --user decisum-app',
        `mc cp ${seed}/sample.csv local/decisum/sample.csv`,
      ]);
    });

    it.each([
      [{ APP_ACCESS_KEY: 'decisum-admin' }, 'AWS_ACCESS_KEY_ID is the MinIO root user'],
      [{ APP_ACCESS_KEY: '' }, 'AWS_ACCESS_KEY_ID is empty'],
      [{ APP_SECRET_KEY: 'short' }, 'AWS_SECRET_ACCESS_KEY must have 8 characters or more'],
      [{ MINIO_ROOT_PASSWORD: '' }, 'MINIO_ROOT_PASSWORD must have 8 characters or more'],
    ])('refuses %j before touching MinIO', (over, message) => {
      const res = runShell([path.join(seed, 'init.sh')], env(over), ['mc']);
      expect({ status: res.status, calls: res.calls }).toEqual({ status: 1, calls: [] });
      expect(res.stderr).toContain(message);
    });
  });

  it('lets neither MinIO nor Grafana fall back to their well-known default passwords', () => {
    // Compose writes $ as $$ in its output; the container's shell sees one.
    const shell = (name: string) => (services[name].command as string[])[0].replace(/\$\$/g, '$');
    expect(services.minio.entrypoint).toEqual(['/bin/sh', '-c']);
    let res = runShell(['-c', shell('minio')], { MINIO_ROOT_PASSWORD: '' }, ['minio']);
    expect({ status: res.status, calls: res.calls }).toEqual({ status: 1, calls: [] });
    expect(res.stderr).toContain('set MINIO_ROOT_PASSWORD');
    res = runShell(['-c', shell('minio')], { MINIO_ROOT_PASSWORD: secrets.MINIO_ROOT_PASSWORD }, ['minio']);
    expect({ status: res.status, calls: res.calls }).toEqual({ status: 0, calls: ['minio server /data --console-address :9001'] });

    expect(services.grafana.entrypoint).toEqual(['/bin/sh', '-c']);
    res = runShell(['-c', shell('grafana')], { GF_SECURITY_ADMIN_PASSWORD: '' }, []);
    expect(res.status).toBe(1);
    expect(res.stderr).toContain('set GRAFANA_ADMIN_PASSWORD');
    // Past the guard, it hands over to the image's /run.sh (absent here: the shell's "not found").
    res = runShell(['-c', shell('grafana')], { GF_SECURITY_ADMIN_PASSWORD: 'x' }, []);
    expect(res.status).toBe(127);
    expect(res.stderr).toContain('/run.sh');
  });

  it('pins every pulled image to a maintained version, RabbitMQ to 4.x', () => {
    for (const [name, s] of Object.entries(services)) {
      if (s.build !== undefined) { continue; }
      expect({ name, image: s.image }).toEqual({ name, image: expect.stringMatching(/:(v?\d+\.\d+\.\d+(-[a-z]+)?|RELEASE\.\d{4}-\d\d-\d\dT[\d-]+Z)$/) as string });
    }
    expect(services.rabbitmq.image).toMatch(/^rabbitmq:4\.\d+\.\d+-management$/);
  });

  it('rotates every service’s logs and limits its memory', () => {
    for (const [name, s] of Object.entries(services)) {
      expect({ name, logging: s.logging }).toEqual({ name, logging: { driver: 'json-file', options: { 'max-size': '10m', 'max-file': '5' } } });
      expect({ name, mem_limit: s.mem_limit }).toEqual({ name, mem_limit: expect.stringMatching(/^\d+[mg]$/) as string });
    }
  });

  it('runs commands that the build produces, with no pre-script needing dev dependencies', () => {
    for (const name of ['api', 'executor']) {
      const command = services[name].command;
      expect(Array.isArray(command)).toBe(true);
      expectRunnable(command as string[], `service ${name}`);
      expect(services[name].image).toBe(services.api.image);
    }
  });

  it('gives both processes a valid configuration that reads local files from the shared volume', () => {
    for (const name of ['api', 'executor']) {
      const env = services[name].environment ?? {};
      const known = new Set([...configVariables(), 'DECISUM_ROLE']);
      expect(Object.keys(env).filter((k) => !known.has(k))).toEqual([]);
      const config = loadConfig(Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v ?? ''])));
      expect(config.s3.endpoint).toBe('http://minio:9000');
      expect(config.dataDir).toBe('/data');
      // Prometheus finds executors on this port (deploy/prometheus/prometheus.yml).
      expect(config.executor.metricsPort).toBe(9464);
      expect(services[name].volumes).toEqual(['decisum-data:/data:rw']);
    }
    expect(read('deploy/prometheus/prometheus.yml')).toContain('port: 9464');
  });

  it('runs the API on the network with the generated admin token, its metrics on their own port', () => {
    const env = services.api.environment ?? {};
    const config = loadConfig(Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v ?? ''])));
    expect(config.host).toBe('0.0.0.0');
    expect(exposureProblem(config)).toBeUndefined();
    expect(findToken(config.tokens, secrets.DECISUM_TOKEN)).toMatchObject({ name: 'admin', scopes: ['admin'] });
    expect(config.metricsPort).toBe(9463);
    expect(read('deploy/prometheus/prometheus.yml')).toContain('port: 9463');
  });

  it('waits longer than SHUTDOWN_GRACE_MS before killing a stopping executor', () => {
    const env = services.executor.environment ?? {};
    const graceMs = loadConfig({ SHUTDOWN_GRACE_MS: env.SHUTDOWN_GRACE_MS ?? '' }).shutdownGraceMs;
    expect(seconds(services.executor.stop_grace_period ?? '10s') * 1000).toBeGreaterThan(graceMs);
  });
});

describe('one name for the sample everywhere', () => {
  it('is sample.csv in the image, in npm start, in MinIO and in the README’s first curl', () => {
    expect(read('Dockerfile')).toMatch(/^COPY --chown=node:node test\/fixtures\/sample\.csv \/data\/sample\.csv$/m);
    expect(read('scripts/start-all.js')).toContain("path.join(dataDir, 'sample.csv')");
    expect(read('deploy/minio/init.sh')).toContain('local/decisum/sample.csv');
    const firstCurl = /^\$ curl .*$/m.exec(read('README.md'))?.[0];
    expect(firstCurl).toContain('{"file":"sample.csv"}');
  });
});

describe('.env.example', () => {
  const example = dotenv(read('.env.example'));

  it('lists every variable of shared/src/config.ts', () => {
    const variables = configVariables();
    expect(variables.length).toBeGreaterThan(10);
    expect(variables.filter((v) => !(v in example))).toEqual([]);
  });

  it('holds the defaults: as an environment it is a valid configuration equal to the empty one', () => {
    const keys = new Set(configVariables());
    const env = Object.fromEntries(Object.entries(example).filter(([k]) => keys.has(k)));
    expect(loadConfig(env)).toEqual(loadConfig({}));
  });

  it('names every variable docker-compose.yml reads', () => {
    // $${X} is the container shell's own variable, written $$ to escape compose's interpolation.
    const used = new Set([...read('docker-compose.yml').matchAll(/(?<!\$)\$\{([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]));
    expect(used.size).toBeGreaterThan(20);
    expect([...used].filter((v) => !(v in example))).toEqual([]);
  });
});

/** Minimal .dockerignore semantics: globs, `**`, `!` exceptions, last match wins, a match covers a folder's contents. */
function dockerIgnored(rel: string, patterns: string[]): boolean {
  const toRegex = (p: string) =>
    new RegExp(
      `^${p
        .replace(/^\//, '')
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*\*\/?/g, '\uE000')
        .replace(/\*/g, '[^/]*')
        .replace(/\?/g, '[^/]')
        .replace(/\uE000/g, '(?:.*/)?')}(?:/.*)?$`,
    );
  let ignored = false;
  for (const line of patterns) {
    const negate = line.startsWith('!');
    if (toRegex(negate ? line.slice(1) : line).test(rel)) { ignored = !negate; }
  }
  return ignored;
}

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile').replace(/\\\n/g, ' ');
  const lines = dockerfile.split('\n').map((l) => l.trim());
  const ignore = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages = lines.filter((l) => /^FROM /i.test(l)).map((l) => / AS (\S+)$/i.exec(l)?.[1]);

  it('builds in one stage and runs from another, as an unprivileged user with a health check', () => {
    expect(stages).toEqual(['build', 'runtime']);
    expect(lines).toContain('RUN npm ci --no-audit --no-fund');
    expect(lines).toContain('RUN npm run build');
    expect(lines.some((l) => l.startsWith('RUN npm ci --omit=dev'))).toBe(true);
    expect(lines.filter((l) => l.startsWith('USER ')).pop()).toBe('USER node');
    // Pinned to a Node 24 release: .ci/run tests on this same version (see 'Node' in the README).
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:24\.\d+\.\d+-[a-z]+-slim$/m);
    expect(read('.ci/run')).toContain('NODE_IMAGE');
    expect(lines.some((l) => l.startsWith('HEALTHCHECK '))).toBe(true);
  });

  it('copies only paths that exist in the repository and are not in .dockerignore', () => {
    const copies = lines.filter((l) => /^COPY /.test(l) && !l.includes('--from='));
    expect(copies.length).toBeGreaterThan(5);
    for (const copy of copies) {
      const args = copy.split(/\s+/).slice(1).filter((a) => !a.startsWith('--'));
      for (const source of args.slice(0, -1)) {
        const rel = source.replace(/\/$/, '');
        expect({ source, exists: exists(rel) }).toEqual({ source, exists: true });
        expect({ source, ignored: dockerIgnored(rel, ignore) }).toEqual({ source, ignored: false });
      }
    }
  });

  it('copies from the build stage only what `npm run build` writes', () => {
    const fromBuild = lines.filter((l) => l.includes('--from='));
    expect(fromBuild.length).toBeGreaterThan(0);
    for (const copy of fromBuild) {
      expect(copy).toMatch(/--from=build /);
      const source = copy.split(/\s+/).filter((a) => !a.startsWith('--'))[1];
      const m = /^\/app\/(\w+)\/dist$/.exec(source);
      expect({ source, match: m !== null }).toEqual({ source, match: true });
      expect(exists(`${m![1]}/tsconfig.json`)).toBe(true);
    }
  });

  it('gives the build stage every file that `npm run build` runs', () => {
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
    const files: string[] = [];
    const visit = (name: string): void => {
      for (const words of scripts[name].split('&&').map((c) => c.trim().split(/\s+/))) {
        if (words[0] === 'npm' && words[1] === 'run') { visit(words[2]); }
        else if (words[0] === 'node') { files.push(words[1]); }
        else if (words[0] === 'tsc') { files.push(...words.slice(2).map((d) => `${d}/tsconfig.json`)); }
      }
    };
    visit('build');
    expect(files).toContain('scripts/build-wasm.mjs');
    const build = lines.slice(0, lines.findIndex((l) => / AS runtime$/i.test(l)));
    const copied = build.filter((l) => l.startsWith('COPY ')).flatMap((l) => l.split(/\s+/).slice(1, -1).map((a) => a.replace(/\/$/, '')));
    for (const file of files) { expect({ file, copied: copied.some((c) => file === c || file.startsWith(`${c}/`)) }).toEqual({ file, copied: true }); }
  });

  it('ships every folder a workspace runs from: dist, and the rest but sources and tests', () => {
    // assembly/ holds the WebAssembly fast path's source; the build puts rows.wasm in executor/dist.
    const runtime = lines.slice(lines.findIndex((l) => / AS runtime$/i.test(l)));
    const copied = new Set(runtime.filter((l) => l.startsWith('COPY ')).map((l) => l.split(/\s+/).pop()!.replace(/\/$/, '')));
    for (const workspace of ['shared', 'executor', 'api']) {
      const folders = fs
        .readdirSync(path.join(ROOT, workspace), { withFileTypes: true })
        .filter((d) => d.isDirectory() && !['src', 'assembly', 'test', 'dist', 'node_modules'].includes(d.name))
        .map((d) => `${workspace}/${d.name}`);
      for (const folder of [`${workspace}/dist`, ...folders]) { expect({ folder, copied: copied.has(folder) }).toEqual({ folder, copied: true }); }
    }
  });

  it('runs the API by default, and its health check script exists', () => {
    const cmd = lines.find((l) => l.startsWith('CMD '))!;
    expectRunnable(JSON.parse(cmd.slice(4)) as string[], 'Dockerfile CMD');
    const check = lines.find((l) => l.startsWith('HEALTHCHECK '))!;
    const script = /CMD \["node", "([^"]+)"\]/.exec(check)?.[1];
    expect(script).toBeDefined();
    expect(exists(script!)).toBe(true);
  });

  it('keeps dependencies, build output and secrets out of the build context, but not the sample', () => {
    expect(dockerIgnored('node_modules', ignore)).toBe(true);
    expect(dockerIgnored('api/node_modules/x', ignore)).toBe(true);
    expect(dockerIgnored('shared/dist/index.js', ignore)).toBe(true);
    expect(dockerIgnored('.env', ignore)).toBe(true);
    expect(dockerIgnored('api/test/cli.test.ts', ignore)).toBe(true);
    expect(dockerIgnored('test/fixtures/sample.csv', ignore)).toBe(false);
    expect(dockerIgnored('api/src/main.ts', ignore)).toBe(false);
  });
});
