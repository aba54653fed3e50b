// @ts-check
import tseslint from 'typescript-eslint';

const NODE_BUILTINS = [
  'fs',
  'path',
  'os',
  'crypto',
  'child_process',
  'http',
  'https',
  'net',
  'util',
  'stream',
  'events',
  'worker_threads',
  'async_hooks',
  'timers',
  'dns',
  'zlib',
  'process',
];

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      '.data/**',
      '.tools/**',
      'coverage/**',
      'test-artifacts/**',
      'jest.config.js',
      'eslint.config.mjs',
      // Plain scripts for users to copy (no TypeScript project covers them).
      'examples/**',
    ],
  },
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { fixStyle: 'inline-type-imports', disallowTypeAnnotations: false },
      ],
    },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox: no I/O, no Node built-ins, no ORM, no logger.
    files: ['src/workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [...NODE_BUILTINS.flatMap((m) => [m, `node:${m}`]), 'pino', 'koa', '@koa/router', 'pg'].map(
            (name) => ({ name, message: 'not allowed in workflow code (determinism)' }),
          ),
          patterns: [
            {
              group: ['@mikro-orm/*', '../activities', '../activities/*', '../api/*', '../db/*'],
              message: 'workflows import activities as types only',
              allowTypeImports: true,
            },
          ],
        },
      ],
    },
  },
);
