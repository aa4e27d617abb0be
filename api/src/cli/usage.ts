export const USAGE = `decisum: sum every 10th column of CSV files, from the shell.

Usage:
  decisum generate-csv --rows N --cols M [--kind sample|int|decimal] [--seed S] [--out FILE]
  decisum submit LOCATION [--step N] [--offset N] [--delimiter X] [--no-header]
                          [--idempotency-key K] [--wait]
  decisum status ID [--wait]
  decisum active
  decisum upload FILE [LOCATION]

Commands:
  generate-csv  Write a CSV of N data rows and M data columns to stdout or --out.
                --kind sample (default): the reference sample's shape: an index
                column of hourly timestamps, header ,col0..colM-1, numbers in
                [0, 1), every line double-encoded. int: integers in
                [-1000, 1000]; decimal: 2-decimal numbers in [-10000, 10000];
                both with header col1..colM. Same --seed (default 42), same bytes.
  submit        Submit a job for LOCATION: s3://bucket/key, or a path under
                the server's DATA_DIR (data.csv, file:reports/a.csv). Prints the
                job id; with --wait, shows progress on stderr and prints the result.
                --delimiter is one of , ; | tab (detected when absent).
  status        Print a job; with --wait, follow it until it finishes.
  active        Print how many jobs are in work: queued + running.
  upload        Stream FILE (- for stdin) to LOCATION through the files API and
                print the stored location. LOCATION defaults to FILE's name under
                DATA_DIR; one ending in / gets FILE's name appended.

Options:
  --url URL     The API (default: $DECISUM_URL, else http://127.0.0.1:8080).
  --json        Print JSON (the job, the count, the upload) instead of text.
  -h, --help    Show this help.

Exit codes:
  0  done; with --wait, the job succeeded
  1  with --wait, the job failed or was cancelled (its code, row and column on stderr)
  2  usage error
  3  the API is unreachable or answered with an HTTP error

Examples:
  decisum generate-csv --rows 3000000 --cols 100 --kind int --out big.csv
  decisum upload big.csv && decisum submit big.csv --wait
  decisum submit s3://decisum/data.csv --wait --json | jq '.result.columns[].sum'
`;
