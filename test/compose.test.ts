import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '@decisum/shared';

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

(hasCompose ? describe : describe.skip)('docker-compose.yml, as docker-compose config resolves it', () => {
  let services: Record<string, Service>;
  let volumes: Record<string, unknown>;

  beforeAll(() => {
    // .env.example as the .env (what a user who copies it gets), and only PATH from the environment:
    // a developer's exported variables or own .env must not change what is checked.
    const envFile = path.join(ROOT, '.env.example');
    const res = spawnSync('docker-compose', ['--env-file', envFile, '-f', 'docker-compose.yml', 'config'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { PATH: process.env.PATH },
    });
    if (res.status !== 0) { throw new Error(`docker-compose config failed:\n${res.stderr}`); }
    const doc = parseYaml(res.stdout) as { services: Record<string, Service>; volumes: Record<string, unknown> };
    services = doc.services;
    volumes = doc.volumes;
  });

  it('has Redis, RabbitMQ, MinIO with its seeding job, the API and the executor', () => {
    expect(Object.keys(services).sort()).toEqual(['api', 'executor', 'minio', 'minio-init', 'rabbitmq', 'redis']);
  });

  it('keeps Redis durable (AOF on a volume) and health-checks Redis, RabbitMQ and MinIO', () => {
    expect(services.redis.command).toEqual(expect.arrayContaining(['--appendonly', 'yes']));
    expect(services.redis.volumes?.some((v) => String(typeof v === 'string' ? v : v.target).includes('/data'))).toBe(true);
    expect(services.redis.healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
    expect(services.rabbitmq.healthcheck?.test).toEqual(['CMD', 'rabbitmq-diagnostics', '-q', 'ping']);
    expect(services.rabbitmq.image).toMatch(/management/);
    expect(services.minio.healthcheck).toBeDefined();
    expect(Object.keys(volumes)).toEqual(expect.arrayContaining(['redis-data', 'decisum-data']));
  });

  it('seeds MinIO with the reference sample as s3://decisum/data.csv', () => {
    const init = services['minio-init'];
    expect(init.image).toMatch(/^minio\/mc:/);
    expect(init.depends_on?.minio).toEqual({ condition: 'service_healthy' });
    const mount = init.volumes!.map((v) => (typeof v === 'string' ? v.split(':')[0] : v.source)).find((s) => s.endsWith('.csv'));
    expect(mount).toBe(path.join(ROOT, 'test/fixtures/sample.csv'));
    expect(fs.existsSync(mount!)).toBe(true);
    expect([init.command].flat().join(' ')).toMatch(/mc mb .*local\/decisum.*mc cp \S+ local\/decisum\/data\.csv/);
  });

  it('starts the API and the executor only once their servers are healthy and the bucket exists', () => {
    for (const name of ['api', 'executor']) {
      expect(services[name].depends_on).toEqual({
        redis: { condition: 'service_healthy' },
        rabbitmq: { condition: 'service_healthy' },
        'minio-init': { condition: 'service_completed_successfully' },
      });
    }
  });

  it('lets --scale executor=N multiply the executor: no container name, no published ports', () => {
    const executor = services.executor;
    expect(executor.container_name).toBeUndefined();
    expect(executor.ports).toBeUndefined();
    expect(services.api.ports).toEqual([expect.objectContaining({ target: 8080 })]);
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
      expect(config.redisUrl).toBe('redis://redis:6379');
      expect(config.s3.endpoint).toBe('http://minio:9000');
      expect(config.dataDir).toBe('/data');
      expect(services[name].volumes).toEqual(['decisum-data:/data:rw']);
    }
  });

  it('waits longer than SHUTDOWN_GRACE_MS before killing a stopping executor', () => {
    const env = services.executor.environment ?? {};
    const graceMs = loadConfig({ SHUTDOWN_GRACE_MS: env.SHUTDOWN_GRACE_MS ?? '' }).shutdownGraceMs;
    expect(seconds(services.executor.stop_grace_period ?? '10s') * 1000).toBeGreaterThan(graceMs);
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
    const used = new Set([...read('docker-compose.yml').matchAll(/\$\{([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]));
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
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:24-slim$/m);
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
