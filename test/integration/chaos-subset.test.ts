import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { runCase } from '../../chaos/case.js';
import { quickCases } from '../../chaos/cases/index.js';
import { failedChecks, verdict } from '../../chaos/record.js';
import { textTable } from '../../chaos/report.js';
import { RgwHold } from '../../chaos/rgw-hold.js';

/**
 * The fault suite's quick subset (`npm run chaos -- --quick`), one node:test test per case and
 * through the same case functions: kill -9 in upload, SIGTERM in upload, Redis down without
 * persistence, S3 blackholed mid-upload, small work dir (root only). Each asserts every check
 * the runner reports (fault in the right phase, final state within the bound, no job left
 * active, no leftovers, one truth, every committed archive restores, empty work dir, …).
 * The whole suite with all its repeats is `npm run chaos`.
 */
describe('chaos: one fault of each kind (quick subset of npm run chaos)', () => {
  const rgw = new RgwHold();
  after(() => rgw.release());

  for (const def of quickCases()) {
    test(`${def.name}: ${def.summary}`, async (t) => {
      await rgw.beforeRun(def.heavy);
      const record = await runCase(def, 1, (m) => t.diagnostic(m));
      t.diagnostic(`\n${textTable([record])}`);
      // The suite runs as root, as CI does (it installs Debian packages and mounts a small tmpfs): a case that cannot run is a failure here.
      assert.notEqual(verdict(record), 'SKIP', `this case could not run: ${record.skipped ?? ''}`);
      const failed = failedChecks(record);
      assert.deepEqual(
        failed.map((f) => `${f.name}: ${f.detail}`),
        [],
        `fault: ${record.fault}; outcome: ${record.outcome}${record.logs ? `; logs in ${record.logs}` : ''}`,
      );
    });
  }
});
