/*
 * The fault proxy in a process of its own, so its forwarding does not share the measured reader's
 * event loop. Started by bench/s3.ts with an IPC channel: it gets { target, plan, seed }, answers
 * { port }, and answers { stats } whenever asked.
 */
import { FaultProxy, type ConnectionPlan } from '../test/support/fault-proxy';

interface Setup {
  target: { host: string; port: number };
  plan: ConnectionPlan;
  seed: number;
}

let proxy: FaultProxy | undefined;

process.on('message', (m: { setup?: Setup; stats?: true }) => {
  void (async () => {
    if (m.setup) {
      proxy = await FaultProxy.start(m.setup.target, { seed: m.setup.seed });
      proxy.setDefault(m.setup.plan);
      process.send?.({ port: proxy.port });
    } else if (m.stats && proxy) {
      process.send?.({ stats: { ...proxy.stats, requests: proxy.stats.requests.length, heads: [] } });
    }
  })();
});
process.on('disconnect', () => {
  void proxy?.close().finally(() => process.exit(0));
});
