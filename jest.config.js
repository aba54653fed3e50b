/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } } }] },
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  // Workflow and fault tests wait on a real Temporal server and real PostgreSQL.
  testTimeout: 120_000,
  maxWorkers: 2,
  // The SDK's native workers keep handles open briefly after shutdown.
  forceExit: true,
};
