import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';

/**
 * Node processes for the service benchmark: each writes its log to a file (a pipe read by this
 * process would cost the load generator CPU per line), readiness is a JSON log line, and a stop is
 * a SIGTERM so that `--cpu-prof` writes its profile on the way out.
 */

export interface NodeProcessOptions {
  name: string;
  /** The script, and node flags before it (e.g. `--cpu-prof`, `-r ts-node/register/transpile-only`). */
  script: string;
  execArgv?: string[];
  env: Record<string, string>;
  logFile: string;
  /** The log line's `msg` that says the process is ready. */
  readyMsg: string;
  cwd: string;
}

export interface LogLine {
  msg?: string;
  [field: string]: unknown;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class NodeProcess {
  readonly exited: Promise<void>;
  /** The log line that said the process was ready. */
  ready: LogLine = {};

  private constructor(
    readonly name: string,
    readonly logFile: string,
    private readonly child: ChildProcess,
  ) {
    this.exited = once(child, 'exit').then(() => undefined);
  }

  static async start(o: NodeProcessOptions): Promise<NodeProcess> {
    const out = fs.openSync(o.logFile, 'a');
    const child = spawn(process.execPath, [...(o.execArgv ?? []), o.script], {
      cwd: o.cwd,
      env: { PATH: process.env.PATH ?? '', ...o.env },
      stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
    const proc = new NodeProcess(o.name, o.logFile, child);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const line = proc.lines().find((l) => l.msg === o.readyMsg);
      if (line) {
        proc.ready = line;
        return proc;
      }
      if (!proc.alive) { throw new Error(`${o.name} exited before it was ready\n${proc.tail()}`); }
      if (Date.now() > deadline) {
        await proc.stop(1000);
        throw new Error(`${o.name} not ready within 60 s\n${proc.tail()}`);
      }
      await sleep(50);
    }
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  lines(): LogLine[] {
    const text = fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, 'utf8') : '';
    return text
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => {
        try {
          return JSON.parse(l) as LogLine;
        } catch {
          return { msg: l };
        }
      });
  }

  tail(n = 20): string {
    const text = fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, 'utf8') : '';
    return text
      .split('\n')
      .slice(-n - 1)
      .map((l) => `  [${this.name}] ${l}`)
      .join('\n');
  }

  /** SIGTERM, then SIGKILL after graceMs: the process's own shutdown (and its profile) gets its chance. */
  async stop(graceMs = 15_000): Promise<void> {
    if (!this.alive) { return; }
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

// sysconf(_SC_CLK_TCK): 100 on every Linux this runs on.
const CLOCK_TICKS = 100;

/** utime + stime of a process, in ms (all its threads), from /proc; undefined when it is gone. */
export function cpuMs(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** The pid of the process listening on a TCP port on this machine, from /proc (e.g. the shared Redis). */
export function listenerPid(port: number): number | undefined {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const rows = fs.existsSync(table) ? fs.readFileSync(table, 'utf8').split('\n').slice(1) : [];
    for (const row of rows) {
      const f = row.trim().split(/\s+/);
      // f[1] is local address:port, f[3] the state (0A = LISTEN), f[9] the socket inode.
      if (f.length > 9 && f[1].endsWith(`:${hex}`) && f[3] === '0A') { inodes.add(f[9]); }
    }
  }
  if (inodes.size === 0) { return undefined; }
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m && inodes.has(m[1])) { return Number(pid); }
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}
