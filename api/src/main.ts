import { bootstrap, exposureProblem, openServices } from '@decisum/shared';
import { startApi } from './start';

async function main(): Promise<void> {
  const { config, logger, onStop } = bootstrap('api');
  const exposure = exposureProblem(config);
  if (exposure) {
    process.stderr.write(`api: refusing to start: ${exposure}\n`);
    process.exit(78);
  }
  // Submissions fail at once (503) while Redis or the broker is down; the API serves meanwhile.
  const services = await openServices(config, logger, { failFast: true, feed: true });
  const api = await startApi(services, config, logger);
  onStop(async () => {
    await api.stop();
    await services.close();
  });
}

void main();
