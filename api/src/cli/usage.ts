/** Help text beyond what commander writes from the commands and options themselves. */

export const DESCRIPTION = 'Sum every 10th column of CSV files in S3 or on local disk, through a decisum API.';

export const PROGRAM_AFTER = `
Locations:
  s3://bucket/key, or a path under the server's DATA_DIR (data.csv,
  file:reports/a.csv).

Environment:
  DECISUM_URL    the API, when --url is not given (default http://127.0.0.1:8080)
  DECISUM_TOKEN  a bearer token sent with every request, when --token is not
                 given; safer than --token, which other users can see in ps

Exit codes:
  0  done; with --wait, the job succeeded
  1  with --wait, the job failed or was cancelled (its code, row and column on stderr)
  2  usage error: a bad command, option or argument, or a local file problem
  3  the API is unreachable or answered with an HTTP error

Examples:
  decisum generate-csv -r 3000000 -c 100 -k int -o big.csv
  decisum upload big.csv && decisum submit big.csv --wait
  decisum submit s3://decisum/data.csv -w --json | jq '.result.columns[].sum'
  decisum list --status failed --all
`;

export const COMMAND_HELP = {
  'generate-csv': {
    summary: 'write a CSV of N data rows and M data columns',
    description: `Write a CSV of N data rows and M data columns to stdout or --out.

Kinds: sample (the default) has the reference sample's shape: an index column
of hourly timestamps, a header ,col0..colM-1, numbers in [0, 1), every line
double-encoded. int has integers in [-1000, 1000]; decimal 2-decimal numbers
in [-10000, 10000]; both with a header col1..colM. The same --seed gives the
same bytes.`,
    examples: ['decisum generate-csv -r 1000 -c 50 > sample.csv', 'decisum generate-csv -r 3000000 -c 100 -k decimal -o big.csv'],
  },
  submit: {
    summary: 'submit a job; with --wait, follow it and print the sums',
    description: `Submit a job that sums every --step-th column of LOCATION from --offset, and
print its id. With --wait, follow it: progress on stderr (a bar with the time
left on a terminal, a line per change elsewhere), then the sums on stdout.`,
    examples: ['decisum submit data.csv -w', 'decisum submit s3://decisum/big.csv -s 1 -o 9 -d tab', 'id=$(decisum submit big.csv) && decisum status "$id" -w'],
  },
  status: {
    summary: 'print a job; with --wait, follow it until it finishes',
    description: 'Print a job: its state, progress, and its sums or its error.',
    examples: ['decisum status 26a5e25e-c7ec-44cd-9b70-cfc9fa8b452c', 'decisum status "$id" --wait --json'],
  },
  cancel: {
    summary: 'cancel a queued or running job',
    description: 'Cancel a queued or running job. A job that already finished is left as it is (exit 3, JOB_FINISHED).',
    examples: ['decisum cancel "$id"'],
  },
  list: {
    summary: 'list jobs, newest first',
    description: `List jobs, newest first, one page (--limit, 20 by default) at a time.
The command for the next page goes to stderr; --all follows every page.`,
    examples: ['decisum list', 'decisum list -s failed -n 100', 'decisum list --all --json | jq -r \'.jobs[].id\''],
  },
  active: {
    summary: 'print how many jobs are in work (queued + running)',
    description: 'Print how many jobs are in work: queued plus running.',
    examples: ['decisum active --json'],
  },
  upload: {
    summary: 'stream a local file to the server',
    description: `Stream FILE (- for stdin) to LOCATION through the files API and print the
stored location. LOCATION defaults to FILE's name under DATA_DIR; one ending in
/ gets FILE's name appended. An existing file is never replaced unless --force
is given.`,
    examples: ['decisum upload big.csv', 'decisum upload big.csv s3://decisum/in/', 'gzip -dc a.csv.gz | decisum upload - reports/a.csv'],
  },
  download: {
    summary: 'fetch a file from the server',
    description: `Fetch LOCATION through the files API into FILE (- for stdout). FILE defaults
to LOCATION's name in the current folder; an existing file is replaced only
with --force. A download that is cut short leaves no file behind.`,
    examples: ['decisum download reports/a.csv', 'decisum download s3://decisum/data.csv - | head'],
  },
  token: {
    summary: 'create API tokens (decisum token create --name alice --scopes jobs:write,jobs:read)',
    description: `token create prints a new random token and its entry for API_TOKENS (or
API_TOKENS_FILE): the owner's name, the token's sha256 and its scopes. The
server keeps only the hash; the token is shown once. Scopes: jobs:write,
jobs:read, files:read, files:write, admin (every scope, every owner's jobs).`,
    examples: ['decisum token create --name alice --scopes jobs:write,jobs:read', 'decisum token create --name ops --scopes admin --json'],
  },
} as const;

export type CommandName = keyof typeof COMMAND_HELP;

export function examplesText(name: CommandName): string {
  return `\nExamples:\n${COMMAND_HELP[name].examples.map((e) => `  ${e}`).join('\n')}\n`;
}
