/**
 * `npm run build` step: bundles the workflow code once, at build time, into `dist/workflow-bundle.js`.
 * The worker (`prebuiltBundlePath()` in src/worker/worker.ts) loads that file instead of running
 * webpack on every start, so a production worker starts fast and never needs the TypeScript sources.
 *
 * Runs from its compiled location, `dist/scripts/bundle-workflows.js`: the options' paths
 * (`require.resolve` in the compiled worker module) then point at the compiled JS under `dist/src`.
 * Usage: `node dist/scripts/bundle-workflows.js [output-path]`.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { WORKFLOW_BUNDLE_OPTIONS } from '../src/worker/worker';

/** Where the worker looks for the bundle: `<dist>/workflow-bundle.js`, next to `<dist>/src`. */
const DEFAULT_OUTPUT = path.resolve(__dirname, '../workflow-bundle.js');

async function main(): Promise<void> {
  const explicit = process.argv[2];
  // From source (tsx) `__dirname/..` is the repository root, and the bundle would hold the .ts
  // workflows rather than the compiled ones the worker ships with: refuse unless told where to write.
  if (explicit === undefined && !__filename.endsWith('.js')) {
    throw new Error('run the compiled script (node dist/scripts/bundle-workflows.js) or pass an output path');
  }
  const output = path.resolve(explicit ?? DEFAULT_OUTPUT);
  const { code } = await bundleWorkflowCode(WORKFLOW_BUNDLE_OPTIONS);
  mkdirSync(path.dirname(output), { recursive: true });
  // Write-then-rename, so a failed build never leaves a truncated bundle for the worker to load.
  const partial = `${output}.${process.pid}.tmp`;
  writeFileSync(partial, code);
  renameSync(partial, output);
  console.log(
    `workflow bundle: ${path.relative(process.cwd(), output)} (${(code.length / 1024).toFixed(0)} KiB)`,
  );
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
