import { Slots } from '../../src/slots';

/** The executor's bound on jobs summed at once: order, abort and close. */

const settled = async <T>(p: Promise<T>): Promise<T | 'pending'> => Promise.race([p, new Promise<'pending'>((r) => setImmediate(() => r('pending')))]);

describe('Slots', () => {
  it('grants as many as it has at once, then one per release, in the order asked', async () => {
    const slots = new Slots(2);
    const never = new AbortController().signal;
    expect(await slots.take(never)).toBe(true);
    expect(await slots.take(never)).toBe(true);
    const third = slots.take(never);
    const fourth = slots.take(never);
    expect(await settled(third)).toBe('pending');
    slots.release();
    expect(await settled(third)).toBe(true);
    expect(await settled(fourth)).toBe('pending');
    slots.release();
    expect(await settled(fourth)).toBe(true);
    // Released with nobody waiting: the slot is free for the next take at once.
    slots.release();
    expect(await settled(slots.take(never))).toBe(true);
  });

  it('gives false to a waiter whose signal aborts, and its place to the next one', async () => {
    const slots = new Slots(1);
    const never = new AbortController().signal;
    await slots.take(never);
    const stop = new AbortController();
    const aborted = slots.take(stop.signal);
    const next = slots.take(never);
    stop.abort();
    expect(await aborted).toBe(false);
    slots.release();
    expect(await settled(next)).toBe(true);
    expect(await slots.take(stop.signal)).toBe(false);
  });

  it('gives false to every waiter and every later take once closed', async () => {
    const slots = new Slots(1);
    const never = new AbortController().signal;
    await slots.take(never);
    const waiters = [slots.take(never), slots.take(never)];
    slots.close();
    expect(await Promise.all(waiters)).toEqual([false, false]);
    expect(await slots.take(never)).toBe(false);
  });
});
