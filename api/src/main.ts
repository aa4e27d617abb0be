import { bootstrap, openServices } from '@decisum/shared';
import { startApi } from './start';

async function main(): Promise<void> {
  const { config, logger, onStop } = bootstrap('api');
  // Submissions fail at once (503) while Redis or the broker is down; the API serves meanwhile.
  const services = await openServices(config, logger, { failFast: true, feed: true });
  const api = await startApi(services, config, logger);
  onStop(async () => {
    await api.stop();
    await services.close();
  });
}

void main();
