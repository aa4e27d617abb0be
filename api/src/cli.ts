/**
 * The decisum CLI (`npx decisum …`, api/bin/decisum.js). Data goes to stdout, messages to stderr;
 * the exit codes are in cli/client.ts and the help text.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { SCOPES } from '@decisum/shared/tokens';
import { tokenCreateCommand, type TokenCreateOptions } from './cli/token';
import type { JobStatus } from '@decisum/shared';
import { CliError, EXIT } from './cli/client';
import {
  activeCommand,
  cancelCommand,
  downloadCommand,
  generateCsvCommand,
  type GenerateOptions,
  type Global,
  type Io,
  KINDS,
  listCommand,
  type ListOptions,
  statusCommand,
  submitCommand,
  type SubmitOptions,
  uploadCommand,
} from './cli/commands';
import { COMMAND_HELP, type CommandName, DESCRIPTION, examplesText, PROGRAM_AFTER } from './cli/usage';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

/** JOB_STATUSES, spelled out: importing the shared package's values would load the storage clients at every start. */
export const LIST_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const satisfies readonly JobStatus[];

interface GlobalFlags {
  url?: string;
  token?: string;
  json?: boolean;
  quiet?: boolean;
}

function version(): string {
  // dist/cli.js and src/cli.ts both sit one folder below the workspace's package.json.
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/**
 * Builds the program: commander parses, writes help and usage errors through io; each action stores
 * its exit code through setCode.
 */
function program(io: Io, env: NodeJS.ProcessEnv, setCode: (code: number) => void, setCurrent: (name: string) => void): Command {
  const root = new Command('decisum')
    .description(DESCRIPTION)
    .version(`decisum ${version()}`, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show this help')
    .helpCommand(false)
    .option('-u, --url <url>', `the API (default: $DECISUM_URL, else ${DEFAULT_URL})`)
    .option('--token <token>', 'bearer token for the API (default: $DECISUM_TOKEN)')
    .option('-j, --json', 'print JSON (the job, the page, the count) instead of text')
    .option('-q, --quiet', 'no progress or messages on stderr; errors only')
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .addHelpText('after', PROGRAM_AFTER)
    .exitOverride()
    .hook('preAction', (_root, action) => setCurrent(action.name() === 'help' ? 'decisum' : `decisum ${action.name()}`));
  configure(root, 'decisum', io);

  const globals = (cmd: Command): Global => {
    const g = cmd.optsWithGlobals<GlobalFlags>();
    return {
      url: g.url ?? (env.DECISUM_URL || DEFAULT_URL),
      token: g.token ?? (env.DECISUM_TOKEN || undefined),
      json: g.json === true,
      quiet: g.quiet === true,
    };
  };
  const command = (name: CommandName, args: string) => {
    const help = COMMAND_HELP[name];
    const cmd = root.command(`${name}${args ? ` ${args}` : ''}`).summary(help.summary).description(help.description).addHelpText('after', examplesText(name));
    configure(cmd, `decisum ${name}`, io);
    return cmd;
  };
  const run = (work: Promise<number>) => work.then(setCode);

  command('submit', '<location>')
    .option('-s, --step <n>', 'sum every n-th data column (default: 10)')
    .option('-o, --offset <n>', '0-based first column to sum (default: 0)')
    .option('-d, --delimiter <d>', 'one of , ; | tab auto (default: detected)')
    .option('--no-header', 'the first line is data, not a header')
    .option('-k, --idempotency-key <key>', 'a retried submit with the same key returns the same job')
    .option('-w, --wait', 'follow the job and print its sums')
    .action((location: string, o: SubmitOptions, cmd: Command) => run(submitCommand(io, globals(cmd), location, o)));

  command('status', '<id>')
    .option('-w, --wait', 'follow the job until it finishes')
    .action((id: string, o: { wait?: boolean }, cmd: Command) => run(statusCommand(io, globals(cmd), id, o.wait === true)));

  command('cancel', '<id>').action((id: string, _o: unknown, cmd: Command) => run(cancelCommand(io, globals(cmd), id)));

  command('list', '')
    .addOption(new Option('-s, --status <status>', 'only jobs in this state').choices(LIST_STATUSES))
    .option('-n, --limit <n>', 'jobs per page, 1 to 1000 (default: 20)')
    .option('-c, --cursor <cursor>', 'start after a previous page (the number it ended with)')
    .option('-a, --all', 'follow every page')
    .action((o: ListOptions, cmd: Command) => run(listCommand(io, globals(cmd), o)));

  command('active', '').action((_o: unknown, cmd: Command) => run(activeCommand(io, globals(cmd))));

  command('upload', '<file> [location]')
    .option('-f, --force', 'replace LOCATION if it exists')
    .action((file: string, location: string | undefined, o: { force?: boolean }, cmd: Command) =>
      run(uploadCommand(io, globals(cmd), file, location, o)),
    );

  command('download', '<location> [file]')
    .option('-f, --force', 'replace FILE if it exists')
    .action((location: string, file: string | undefined, o: { force?: boolean }, cmd: Command) =>
      run(downloadCommand(io, globals(cmd), location, file, o)),
    );

  command('generate-csv', '')
    .option('-r, --rows <n>', 'data rows')
    .option('-c, --cols <n>', 'data columns')
    .addOption(new Option('-k, --kind <kind>', 'what the numbers look like').choices(KINDS).default('sample'))
    .option('--seed <n>', 'the random seed (default: 42)')
    .option('-o, --out <file>', 'write here instead of stdout')
    .action((o: GenerateOptions) => run(generateCsvCommand(io, o)));

  command('token', '')
    .command('create')
    .summary('print a new API token and its API_TOKENS entry')
    .requiredOption('--name <name>', 'the owner of the jobs the token submits')
    .requiredOption('--scopes <list>', `comma-separated: ${SCOPES.join(', ')}`)
    .action((o: TokenCreateOptions, cmd: Command) => setCode(tokenCreateCommand(io, globals(cmd).json, o)));

  // Ours, not commander's, so `decisum help nope` says the command is unknown instead of printing all the help.
  root
    .command('help [command]')
    .summary('show help for a command')
    .action((name: string | undefined) => {
      if (name === undefined) {
        root.outputHelp();
        return;
      }
      const sub = root.commands.find((c) => c.name() === name);
      if (!sub) { throw new CliError(`unknown command '${name}'`, EXIT.USAGE); }
      sub.outputHelp();
    });
  return root;
}

/** Where commander writes, and how its usage errors read: `decisum submit: unknown option '--frob'`. */
function configure(cmd: Command, name: string, io: Io): void {
  cmd
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      outputError: (s, write) => write(`${name}: ${s.replace(/^error: /, '')}`),
    })
    .showHelpAfterError(`Run ${name} --help for usage.`)
    .showSuggestionAfterError(true);
}

/** Runs one invocation and returns its exit code; exits the process itself only on Ctrl-C during --wait. */
export async function main(argv: string[], stdio: Io, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let code: number = EXIT.OK;
  let current = 'decisum';
  const root = program(stdio, env, (c) => (code = c), (name) => (current = name));
  try {
    await root.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander wrote the help or the message already. A bare `decisum` shows the help as an error (exit 1 there).
      return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    if (err instanceof CliError) {
      stdio.stderr.write(`${current}: ${err.message}\n`);
      if (err.exitCode === EXIT.USAGE) { stdio.stderr.write(`Run ${current} --help for usage.\n`); }
      return err.exitCode;
    }
    if ((err as NodeJS.ErrnoException).code === 'EPIPE') { return EXIT.OK; } // the reader went away (decisum generate-csv | head)
    stdio.stderr.write(`decisum: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT.UNAVAILABLE;
  }
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
