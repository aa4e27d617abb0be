/**
 * Two tiers: `unit` needs no server and runs in seconds; `integration` talks to the real Redis,
 * RabbitMQ and an S3 endpoint. `npm test` runs both; type-checking of the whole tree is `npm run typecheck`.
 * A third project, `cluster` (`npm run test:cluster`), starts replicated servers of its own (Redis with
 * Sentinel, a RabbitMQ cluster) and fails them over: minutes, so it stays out of `npm test`.
 */
// The tests run on Node 20 too (the oldest line decisum starts on, past its end of life): the AWS
// SDK's documented switch keeps its end-of-support notice out of every test's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const WORKSPACES = ['<rootDir>/shared', '<rootDir>/executor', '<rootDir>/api'];
const UNIT = '/test/unit/';
const CLUSTER = '/test/cluster/';

const common = {
  testEnvironment: 'node',
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  moduleNameMapper: {
    '^@decisum/shared$': '<rootDir>/shared/src/index.ts',
    '^@decisum/shared/status$': '<rootDir>/shared/src/status.ts',
    '^@decisum/shared/delimiters$': '<rootDir>/shared/src/delimiters.ts',
    '^@decisum/shared/tokens$': '<rootDir>/shared/src/tokens.ts',

    '^@decisum/shared/local-file$': '<rootDir>/shared/src/storage/local-file.ts',
  },
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json' }] },
};

module.exports = {
  testTimeout: 60_000,
  maxWorkers: 2,
  projects: [
    { ...common, displayName: 'unit', roots: WORKSPACES, testMatch: [`**${UNIT}**/*.test.ts`] },
    {
      ...common,
      displayName: 'integration',
      roots: [...WORKSPACES, '<rootDir>/test'],
      testMatch: ['**/test/**/*.test.ts'],
      testPathIgnorePatterns: [...common.testPathIgnorePatterns, UNIT, CLUSTER],
    },
    { ...common, displayName: 'cluster', roots: ['<rootDir>/test'], testMatch: [`**${CLUSTER}**/*.test.ts`] },
  ],
};
