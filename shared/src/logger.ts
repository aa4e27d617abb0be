import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** JSON lines to stdout, or to `destination` (tests keep them). */
export function createLogger(name: string, level = 'info', destination?: DestinationStream): Logger {
  const options = { name, level, base: { pid: process.pid, name } };
  return destination ? pino(options, destination) : pino(options);
}
