import { ConfigError, loadConfig, type Config } from './config';
import { createLogger, type Logger } from './logger';

/**
 * The start of every process: config read once (a bad variable ends the process with one line),
 * a logger, and handlers that log unhandled errors and exit, and run `stop` once on SIGTERM/SIGINT.
 */
export function bootstrap(name: string): { config: Config; logger: Logger; onStop: (stop: () => Promise<void>) => void } {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${name}: ${err.message}\n`);
      process.exit(78);
    }
    throw err;
  }
  const logger = createLogger(name, config.logLevel);
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled rejection');
    process.exit(1);
  });
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception');
    process.exit(1);
  });
  return {
    config,
    logger,
    onStop: (stop) => {
      let stopping = false;
      const handler = (signal: NodeJS.Signals) => {
        if (stopping) { return; }
        stopping = true;
        logger.info({ signal }, 'shutting down');
        stop().then(
          () => process.exit(0),
          (err: unknown) => {
            logger.error({ err }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', handler);
      process.on('SIGINT', handler);
    },
  };
}
