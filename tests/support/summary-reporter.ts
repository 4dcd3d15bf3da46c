import type { Reporter, SerializedError, TestModule, TestRunEndReason } from 'vitest/node';
import { SKIP_NOTE_PREFIX } from './environment.js';

/**
 * Ends the run with one plain line any CI can read:
 *   tests: N passed, N failed, N skipped
 * A test file that failed before any test ran (an import or beforeAll failure) and an unhandled
 * error each count as one failure, so the line never says "0 failed" for a run that failed.
 * Tests skipped for a missing tool are named after the counts: `…, 8 skipped: web (no /usr/bin/chromium: apt-get install chromium)`.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>, _reason: TestRunEndReason): void {
    const counts = { passed: 0, failed: 0, skipped: 0, pending: 0 };
    const missingTools = new Set<string>();
    for (const module of testModules) {
      let failedTests = 0;
      for (const test of module.children.allTests()) {
        const result = test.result();
        counts[result.state] += 1;
        if (result.state === 'failed') failedTests += 1;
        if (result.state === 'skipped' && result.note?.startsWith(SKIP_NOTE_PREFIX)) missingTools.add(result.note.slice(SKIP_NOTE_PREFIX.length));
      }
      // The file itself failed (its set-up, or an error outside any test) without a failed test to show for it.
      if (module.state() === 'failed' && failedTests === 0) counts.failed += 1;
    }
    counts.failed += unhandledErrors.length;
    const skippedFor = missingTools.size > 0 ? `: ${[...missingTools].join('; ')}` : '';
    process.stdout.write(`\ntests: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped + counts.pending} skipped${skippedFor}\n`);
  }
}
