import net from 'node:net';
import { existsSync } from 'node:fs';

/**
 * Where the tests find Redis and RabbitMQ: REDIS_URL / AMQP_URL from the environment first, then the
 * machine's own servers, and only when neither answers and a Docker engine exists, testcontainers.
 */
export interface ServiceUrls {
  redisUrl: string;
  amqpUrl: string;
}

function reachable(url: string, fallbackPort: number): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect({ host: u.hostname, port: Number(u.port) || fallbackPort });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.setTimeout(2000, () => {
      s.destroy();
      resolve(false);
    });
  });
}

let cached: Promise<ServiceUrls> | undefined;

export function serviceUrls(): Promise<ServiceUrls> {
  cached ??= resolveUrls();
  return cached;
}

async function resolveUrls(): Promise<ServiceUrls> {
  let redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  let amqpUrl = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
  const dockerExists = existsSync('/var/run/docker.sock') || process.env.DOCKER_HOST !== undefined;
  if (!(await reachable(redisUrl, 6379)) && dockerExists && process.env.REDIS_URL === undefined) {
    const { GenericContainer } = await import('testcontainers');
    const c = await new GenericContainer('redis:7').withExposedPorts(6379).start();
    redisUrl = `redis://${c.getHost()}:${c.getMappedPort(6379)}`;
  }
  if (!(await reachable(amqpUrl, 5672)) && dockerExists && process.env.AMQP_URL === undefined) {
    const { GenericContainer, Wait } = await import('testcontainers');
    const c = await new GenericContainer('rabbitmq:3.13')
      .withExposedPorts(5672)
      .withWaitStrategy(Wait.forLogMessage('Server startup complete'))
      .start();
    amqpUrl = `amqp://guest:guest@${c.getHost()}:${c.getMappedPort(5672)}`;
  }
  return { redisUrl, amqpUrl };
}
