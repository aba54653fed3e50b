/**
 * Replays every recorded history under a folder (JSON from `temporal workflow show -o json`) through
 * the current workflow code; exits 1 on the first non-determinism. Used by the replay test and by
 * anyone checking a workflow change: `npx tsx scripts/replay-histories.ts test/fixtures/histories`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { WORKFLOW_BUNDLE_OPTIONS } from '../src/worker/worker';

async function main(): Promise<void> {
  const dir = path.resolve(process.argv[2] ?? 'test/fixtures/histories');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  const workflowBundle = await bundleWorkflowCode({
    ...WORKFLOW_BUNDLE_OPTIONS,
    logger: { info() {}, warn() {}, error: console.error, debug() {}, trace() {}, log() {} },
  });
  for (const file of files) {
    const history: unknown = JSON.parse(readFileSync(path.join(dir, file), 'utf8'));
    await Worker.runReplayHistory({ workflowBundle }, history, file);
    console.log(`ok ${file}`);
  }
  console.log(`replayed ${files.length} histories`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
