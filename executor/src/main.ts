import { bootstrap, openServices } from '@decisum/shared';
import { startExecutor } from './start';

async function main(): Promise<void> {
  const { config, logger, onStop } = bootstrap('executor');
  const services = await openServices(config, logger);
  const running = await startExecutor(services, config, logger);
  onStop(async () => {
    await running.stop(config.shutdownGraceMs);
    await services.close();
  });
}

void main();
