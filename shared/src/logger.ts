import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * JSON lines to stdout, or to `destination` (tests keep them). Stdout is written asynchronously
 * (sonic-boom, `sync: false`): a line costs no system call on the hot path, lines logged while a
 * write is under way go out together in the next one, and pino flushes what is left on exit.
 */
export function createLogger(name: string, level = 'info', destination?: DestinationStream): Logger {
  const options = { name, level, base: { pid: process.pid, name } };
  return pino(options, destination ?? pino.destination({ dest: 1, sync: false }));
}
