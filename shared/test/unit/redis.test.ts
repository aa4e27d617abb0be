import { isRedisUnavailable, persistenceWarning } from '../../src/redis';

describe('what a Redis restart would lose', () => {
  it('says nothing only for an AOF fsynced on every write', () => {
    expect(persistenceWarning({ aof: true, appendfsync: 'always', save: '' })).toBeUndefined();
    expect(persistenceWarning({ aof: true, appendfsync: 'always', save: '3600 1' })).toBeUndefined();
  });

  it('names the loss for every weaker setting', () => {
    expect(persistenceWarning({ aof: true, appendfsync: 'everysec', save: '' })).toMatch(/once a second/);
    expect(persistenceWarning({ aof: true, appendfsync: 'no', save: '' })).toMatch(/when the OS decides/);
    expect(persistenceWarning({ aof: false, appendfsync: 'everysec', save: '3600 1' })).toMatch(/only snapshots \(save "3600 1"\)/);
    expect(persistenceWarning({ aof: false, appendfsync: 'everysec', save: '' })).toMatch(/keeps nothing on disk/);
  });
});

describe('isRedisUnavailable', () => {
  it.each([
    'Connection is closed.',
    'connect ECONNREFUSED 127.0.0.1:6379',
    "Stream isn't writeable and enableOfflineQueue options is false",
    'All sentinels are unreachable. Retrying from scratch after 10ms.',
    "READONLY You can't write against a read only replica.",
    'LOADING Redis is loading the dataset in memory',
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
    'NOREPLICAS Not enough good replicas to write.',
  ])('treats "%s" as a passing outage', (message) => {
    expect(isRedisUnavailable(new Error(message))).toBe(true);
  });

  it('does not hide a real error', () => {
    expect(isRedisUnavailable(new Error('ERR Error running script: attempt to compare nil with number'))).toBe(false);
    expect(isRedisUnavailable(new Error('WRONGTYPE Operation against a key holding the wrong kind of value'))).toBe(false);
    expect(isRedisUnavailable(undefined)).toBe(false);
    expect(isRedisUnavailable(Object.assign(new Error('x'), { name: 'MaxRetriesPerRequestError' }))).toBe(true);
  });
});
