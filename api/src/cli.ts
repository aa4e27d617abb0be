/**
 * The decisum CLI (`npx decisum …`, api/bin/decisum.js). Data goes to stdout, messages to stderr;
 * the exit codes are in cli/client.ts and the help text.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CliError, EXIT, usageError } from './cli/client';
import { activeCommand, generateCsvCommand, type Global, type Io, statusCommand, submitCommand, uploadCommand } from './cli/commands';
import { USAGE } from './cli/usage';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

const GLOBAL_OPTIONS = {
  url: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

const COMMANDS = {
  'generate-csv': {
    positionals: [],
    options: {
      rows: { type: 'string' },
      cols: { type: 'string' },
      kind: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string', short: 'o' },
    },
  },
  submit: {
    positionals: ['LOCATION'],
    options: {
      step: { type: 'string' },
      offset: { type: 'string' },
      delimiter: { type: 'string' },
      'no-header': { type: 'boolean' },
      'idempotency-key': { type: 'string' },
      wait: { type: 'boolean' },
    },
  },
  status: { positionals: ['ID'], options: { wait: { type: 'boolean' } } },
  active: { positionals: [], options: {} },
  upload: { positionals: ['FILE', '[LOCATION]'], options: {} },
} as const satisfies Record<string, { positionals: readonly string[]; options: ParseArgsConfig['options'] }>;

type Command = keyof typeof COMMANDS;

function isCommand(name: string): name is Command {
  return Object.hasOwn(COMMANDS, name);
}

/** Runs one invocation and returns its exit code; exits the process itself only on Ctrl-C during --wait. */
export async function main(argv: string[], io: Io, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    return await dispatch(argv, io, env);
  } catch (err) {
    if (err instanceof CliError) {
      io.stderr.write(`decisum: ${err.message}\n`);
      if (err.exitCode === EXIT.USAGE) { io.stderr.write('Run decisum --help for usage.\n'); }
      return err.exitCode;
    }
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EPIPE') { return EXIT.OK; } // the reader went away (decisum generate-csv | head)
    io.stderr.write(`decisum: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT.UNAVAILABLE;
  }
}

async function dispatch(argv: string[], io: Io, env: NodeJS.ProcessEnv): Promise<number> {
  const name = commandName(argv);
  if (name === undefined) {
    if (argv.includes('--help') || argv.includes('-h')) {
      io.stdout.write(USAGE);
      return EXIT.OK;
    }
    throw usageError(argv.length === 0 ? 'no command given' : `no command in: ${argv.join(' ')}`);
  }
  if (!isCommand(name)) { throw usageError(`unknown command "${name}"`); }
  const rest = argv.slice();
  rest.splice(argv.indexOf(name), 1);
  const globals = (values: { url?: string; json?: boolean }): Global => ({
    url: values.url ?? (env.DECISUM_URL || DEFAULT_URL),
    json: values.json ?? false,
  });
  switch (name) {
    case 'generate-csv': {
      const args = parse(name, rest, io);
      return args ? generateCsvCommand(io, args.values) : EXIT.OK;
    }
    case 'submit': {
      const args = parse(name, rest, io);
      return args ? submitCommand(io, globals(args.values), args.positionals[0], args.values) : EXIT.OK;
    }
    case 'status': {
      const args = parse(name, rest, io);
      return args ? statusCommand(io, globals(args.values), args.positionals[0], args.values.wait === true) : EXIT.OK;
    }
    case 'active': {
      const args = parse(name, rest, io);
      return args ? activeCommand(io, globals(args.values)) : EXIT.OK;
    }
    case 'upload': {
      const args = parse(name, rest, io);
      return args ? uploadCommand(io, globals(args.values), args.positionals[0], args.positionals[1]) : EXIT.OK;
    }
  }
}

/** The first word that is neither an option nor the value of --url (`decisum --url X active`). */
function commandName(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--url') { i++; }
    else if (!a.startsWith('-')) { return a; }
  }
  return undefined;
}

/** Parses one command's arguments and checks its positionals; undefined when --help was shown. */
function parse<C extends Command>(name: C, args: string[], io: Io) {
  const spec: { positionals: readonly string[]; options: (typeof COMMANDS)[C]['options'] } = COMMANDS[name];
  const options = { ...GLOBAL_OPTIONS, ...spec.options };
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw usageError(`${name}: ${(err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ')}`);
  }
  if (parsed.values.help) {
    io.stdout.write(USAGE);
    return undefined;
  }
  const required = spec.positionals.filter((p) => !p.startsWith('['));
  if (parsed.positionals.length < required.length || parsed.positionals.length > spec.positionals.length) {
    throw usageError(`usage: decisum ${name} ${spec.positionals.join(' ')}`.trimEnd());
  }
  return parsed;
}

/** The process entry: the bin shim and `node api/dist/cli.js` both land here. */
export function run(argv: string[] = process.argv.slice(2)): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') { process.exit(EXIT.OK); }
    throw err;
  });
  void main(argv, { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin }).then((code) => {
    process.exitCode = code;
  });
}

if (require.main === module) { run(); }
