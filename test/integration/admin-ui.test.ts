import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { SuiteScope, tempDir } from '../../testkit/fixtures.js';
import { PROCESS_START_MS, withinLoad, withWork } from '../../testkit/liveness.js';
import { REPO_ROOT } from '../../testkit/processes.js';
import { Stack } from '../../testkit/stack.js';
import { createTestBucket, minioClient, startRgw, type RgwCluster } from '../../testkit/local-rgw.js';
import { writeSyntheticBackups } from '../../testkit/synthetic-backups.js';

/** Screenshots of the run land here (git-ignored), for a person to look at. */
const ARTIFACTS = join(REPO_ROOT, 'test-artifacts');
const KEY_PATTERN = /^prod\/chango-\d{8}T\d{6}Z-[0-9a-f-]{36}\.tar\.gz$/;

/** The page's own intervals, read from its script: it polls a running job every POLL_MS and refreshes its tables every REFRESH_MS. */
async function pageIntervals(): Promise<{ pollMs: number; refreshMs: number }> {
  const script = await readFile(join(REPO_ROOT, 'apps/api/public/app.js'), 'utf8');
  const constant = (name: string): number => {
    const value = new RegExp(`const ${name} = (\\d+);`).exec(script)?.[1];
    assert.ok(value, `apps/api/public/app.js defines ${name}`);
    return Number(value);
  };
  return { pollMs: constant('POLL_MS'), refreshMs: constant('REFRESH_MS') };
}

describe('the admin UI in headless Chromium (Debian), against the real api, worker, Redis and S3', () => {
  const scope = new SuiteScope();
  let rgw: RgwCluster;
  let stack: Stack;
  let browser: Browser;
  let bucket: string;
  let lockedBucket: string;
  let intervals: { pollMs: number; refreshMs: number };

  before(async () => {
    intervals = await pageIntervals();
    rgw = await startRgw();
    scope.after(() => rgw.stop());
    stack = await Stack.start(scope, { users: 3, components: 2000 });
    bucket = await createTestBucket(rgw);
    lockedBucket = await createTestBucket(rgw, { objectLock: true });
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'], timeout: PROCESS_START_MS });
    scope.after(() => browser.close());
    await mkdir(ARTIFACTS, { recursive: true });
  });
  after(() => scope.run());

  /** A laptop-sized page that records every URL it loads (nothing may come from elsewhere). */
  async function openPage(): Promise<{ page: Page; requested: string[] }> {
    const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
    // Every wait on the page (Playwright's default: a fixed 30 s) is for something the page shows within one of its
    // refresh rounds (sign-in, a save and a click answer at once, which is sooner).
    page.setDefaultTimeout(withinLoad(intervals.refreshMs));
    const requested: string[] = [];
    page.on('request', (request) => void requested.push(request.url()));
    await page.goto(`${stack.baseUrl}/admin/`);
    return { page, requested };
  }

  async function signIn(page: Page, token: string): Promise<void> {
    await page.fill('#token', token);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#shell:not([hidden])');
    assert.equal(await page.isVisible('#signin'), false, 'the sign-in form is gone once signed in');
    assert.equal(await page.isVisible('#shell'), true);
  }

  test('an admin signs in, sees a field error, saves, presses Backup Now and sees the key and SHA-256', async () => {
    const { page, requested } = await openPage();
    await page.fill('#token', 'chb_not-a-real-token');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.getElementById('signin-error')?.textContent !== '');
    assert.match(await page.textContent('#signin-error') ?? '', /valid bearer token/);

    await signIn(page, stack.adminToken);
    assert.match(await page.textContent('#whoami') ?? '', /test-admin \(admin\)/);
    await page.fill('#f-endpoint', rgw.endpoint);
    await page.fill('#f-region', rgw.region);
    await page.fill('#f-bucket', 'Bad_Bucket');
    await page.fill('#f-prefix', 'prod/');
    await page.fill('#f-accessKey', rgw.accessKey);
    await page.fill('#f-secretKey', rgw.secretKey);
    await page.fill('#f-keepLast', '7');
    await page.click('#save');
    await page.waitForFunction(() => document.querySelector('[data-error-for="bucket"]')?.textContent !== '');
    assert.match(await page.textContent('[data-error-for="bucket"]') ?? '', /S3 bucket name/);
    assert.equal(await page.getAttribute('#f-bucket', 'aria-invalid'), 'true');

    await page.fill('#f-bucket', bucket);
    await page.click('#save');
    await page.waitForFunction(() => document.getElementById('dest-saved')?.textContent === 'Saved.');
    assert.equal(await page.inputValue('#f-secretKey'), '', 'the secret is never put back in the page');
    assert.match(await page.textContent('#secret-hint') ?? '', /secret key is set/);
    assert.ok(!(await page.content()).includes(rgw.secretKey));

    // Keyboard: focus Backup Now and press Enter.
    await page.focus('#run');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#progress:not([hidden])');
    const phases = new Set<string>();
    const seen = setInterval(() => void page.textContent('#progress-phase').then((p) => p && phases.add(p)).catch(() => undefined), 100);
    // The page polls the job every POLL_MS; the backup it waits for is work of its own.
    await page.waitForSelector('#run-result:not([hidden])', { timeout: withWork(intervals.pollMs) });
    clearInterval(seen);
    assert.equal(await page.textContent('#progress-phase'), 'done');
    assert.equal(await page.getAttribute('#progress-bar', 'value'), '100');
    const key = (await page.textContent('#result-key')) ?? '';
    const sha256 = (await page.textContent('#result-sha256')) ?? '';
    assert.match(key, KEY_PATTERN);
    assert.match(sha256, /^[0-9a-f]{64}$/);
    assert.ok([...phases].some((p) => p !== 'done'), `the bar showed phases on the way: ${[...phases].join(', ')}`);

    await page.waitForFunction((k) => document.querySelector('#objects tbody')?.textContent?.includes(k), key);
    const jobsTable = (await page.textContent('#jobs tbody')) ?? '';
    assert.ok(jobsTable.includes(key) && jobsTable.includes(sha256), 'the job history shows the key and SHA-256');
    assert.match((await page.textContent('#objects tbody')) ?? '', /complete/);
    assert.match((await page.textContent('#status-line')) ?? '', /Leader: node-/);
    // The retention pass after the backup counted the destination; the page says what applies.
    await page.waitForFunction(() => /Retention:/.test(document.getElementById('objects-summary')?.textContent ?? ''));
    assert.match((await page.textContent('#objects-summary')) ?? '', /^1 backup \(.*\), counted .* · Retention: keep the 7 newest/);

    // Older backups than fit on a page: the table pages through them, 20 at a time.
    const older = await writeSyntheticBackups(minioClient(rgw), bucket, { prefix: 'prod/', count: 25, newest: new Date(Date.now() - 86_400_000), spacingMs: 3_600_000 });
    await page.waitForFunction(() => document.querySelector('#objects tbody')?.children.length === 20);
    assert.equal(await page.isDisabled('#objects-newer'), true);
    await page.click('#objects-older');
    await page.waitForFunction(() => document.getElementById('objects-page')?.textContent === 'page 2');
    const secondPage = (await page.textContent('#objects tbody')) ?? '';
    assert.equal(await page.locator('#objects tbody tr').count(), 6, 'the 26 backups: 20 on the first page, 6 on the second');
    assert.ok(secondPage.includes(older[0]!) && !secondPage.includes(key), 'the oldest are on the second page, the newest not');
    assert.equal(await page.isDisabled('#objects-older'), true);
    await page.click('#objects-newer');
    await page.waitForFunction((k) => document.querySelector('#objects tbody')?.textContent?.includes(k), key);

    await page.screenshot({ path: join(ARTIFACTS, 'admin-ui-admin.png'), fullPage: true });
    const foreign = requested.filter((url) => !url.startsWith(stack.baseUrl));
    assert.deepEqual(foreign, [], 'everything is served by the api itself');
    await page.close();
  });

  test('a viewer sees the destination and history, but Backup Now and Save are disabled', async () => {
    const { page } = await openPage();
    await signIn(page, stack.viewerToken);
    assert.match(await page.textContent('#whoami') ?? '', /\(viewer\)/);
    assert.equal(await page.isDisabled('#run'), true);
    assert.equal(await page.isDisabled('#save'), true);
    assert.equal(await page.isVisible('#viewer-note'), true);
    // The form is filled once the page has read the config, right after sign-in.
    await page.waitForFunction((b) => (document.getElementById('f-bucket') as HTMLInputElement | null)?.value === b, bucket);
    await page.waitForFunction(() => (document.querySelector('#jobs tbody')?.children.length ?? 0) > 0);
    await page.screenshot({ path: join(ARTIFACTS, 'admin-ui-viewer.png'), fullPage: true });
    await page.close();
  });

  test('markup in stored values, backup keys and S3 error messages is shown as text: no element is made from it, no script runs', async () => {
    // Valid for the api (a prefix is any path ending in '/'; an access key anything without spaces or '/'), hostile for a page that builds HTML.
    const prefix = '<svg/onload=window.__xss=2>/';
    const accessKey = '<marquee>chango<blink>';
    const saved = await stack.request('PUT', '/admin/api/backup/config', { body: { endpoint: rgw.endpoint, region: rgw.region, bucket, prefix, accessKey: rgw.accessKey, secretKey: rgw.secretKey } });
    assert.equal(saved.status, 200, JSON.stringify(saved.body));
    const { page } = await openPage();
    await signIn(page, stack.adminToken);
    await page.waitForFunction((p) => (document.getElementById('f-prefix') as HTMLInputElement | null)?.value === p, prefix);
    await page.click('#run');
    await page.waitForSelector('#run-result:not([hidden])', { timeout: withWork(intervals.pollMs) });
    const key = (await page.textContent('#result-key')) ?? '';
    assert.ok(key.startsWith(prefix), `the key is shown as it is: ${key}`);
    await page.waitForFunction((k) => document.querySelector('#objects tbody')?.textContent?.includes(k), key);

    // An S3 error that quotes the (hostile) access key.
    const refused = await stack.request('PUT', '/admin/api/backup/config', { body: { endpoint: rgw.endpoint, region: rgw.region, bucket, prefix, accessKey, secretKey: 'not-the-secret' } });
    assert.equal(refused.status, 200, JSON.stringify(refused.body));
    await page.click('#run');
    await page.waitForFunction(() => (document.getElementById('run-error')?.textContent ?? '') !== '', undefined, { timeout: withWork(intervals.pollMs) });
    const failure = (await page.textContent('#run-error')) ?? '';
    assert.ok(failure.includes(accessKey), `the failure quotes the access key, as text: ${failure}`);
    await page.waitForFunction(() => (document.getElementById('objects-error')?.textContent ?? '') !== '');

    assert.equal(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss), undefined, 'no script ran');
    assert.equal(await page.locator('svg, marquee, blink').count(), 0, 'no element was made from a value');
    assert.match(await page.innerHTML('#run-error'), /&lt;marquee&gt;chango&lt;blink&gt;/);
    await page.screenshot({ path: join(ARTIFACTS, 'admin-ui-markup.png'), fullPage: true });
    await page.close();
  });

  test('offline recipients: shown and edited one a line; an identity pasted there is refused in the page and never sent', async () => {
    const identity = await generateX25519Identity();
    const recipient = await identityToRecipient(identity);
    const other = await identityToRecipient(await generateX25519Identity());
    const saved = await stack.request('PUT', '/admin/api/backup/config', { body: { endpoint: rgw.endpoint, region: rgw.region, bucket, prefix: 'prod/', accessKey: rgw.accessKey, secretKey: rgw.secretKey } });
    assert.equal(saved.status, 200, JSON.stringify(saved.body));
    const { page } = await openPage();
    const sent: string[] = [];
    page.on('request', (request) => void sent.push(request.postData() ?? ''));
    await signIn(page, stack.adminToken);
    await page.waitForFunction(() => (document.getElementById('f-prefix') as HTMLInputElement | null)?.value === 'prod/');

    await page.fill('#f-recipients', `${recipient}\n${identity}`);
    await page.click('#save');
    await page.waitForFunction(() => (document.querySelector('[data-error-for="encryption.recipients"]')?.textContent ?? '') !== '');
    assert.match((await page.textContent('[data-error-for="encryption.recipients"]')) ?? '', /That was an identity .* removed and not sent/);
    assert.equal(await page.inputValue('#f-recipients'), recipient, 'the identity is gone from the box, the recipient stays');
    assert.ok(!sent.some((body) => body.includes(identity)), 'the identity never left the page');

    await page.fill('#f-recipients', `${recipient}\n\n  ${other}  \n`);
    await page.click('#save');
    await page.waitForFunction(() => document.getElementById('dest-saved')?.textContent === 'Saved.');
    const stored = await stack.request<{ encryption: { recipients: string[] } | null }>('GET', '/admin/api/backup/config');
    assert.deepEqual(stored.body.encryption, { recipients: [recipient, other] });
    // A reload keeps the session (the token lives in the tab's sessionStorage) and shows what is stored.
    await page.reload();
    await page.waitForSelector('#shell:not([hidden])');
    await page.waitForFunction((r) => (document.getElementById('f-recipients') as HTMLTextAreaElement | null)?.value === r, `${recipient}\n${other}`);

    // A recipient the api refuses is named in the box's own slot, whichever line it is on.
    await page.fill('#f-recipients', `${recipient}\nage1notarecipient`);
    await page.click('#save');
    await page.waitForFunction(() => (document.querySelector('[data-error-for="encryption.recipients"]')?.textContent ?? '') !== '');
    assert.match((await page.textContent('[data-error-for="encryption.recipients"]')) ?? '', /age X25519 recipient/);
    assert.equal(await page.getAttribute('#f-recipients', 'aria-invalid'), 'true');

    await page.fill('#f-recipients', '');
    await page.click('#save');
    await page.waitForFunction(() => document.getElementById('dest-saved')?.textContent === 'Saved.');
    assert.equal((await stack.request<{ encryption: unknown }>('GET', '/admin/api/backup/config')).body.encryption, null, 'an empty box turns encryption off');
    await page.screenshot({ path: join(ARTIFACTS, 'admin-ui-recipients.png'), fullPage: true });
    await page.close();
  });

  test('S3 Object Lock: set in the form, a bad value and a bucket without it are shown at the field, and a run says how many backups the lock kept', async () => {
    const { page } = await openPage();
    await signIn(page, stack.adminToken);
    // Whatever the tests before saved, the form is filled in anew.
    await page.waitForFunction(() => (document.getElementById('f-bucket') as HTMLInputElement | null)?.value !== '');
    await page.fill('#f-endpoint', rgw.endpoint);
    await page.fill('#f-bucket', bucket);
    await page.fill('#f-prefix', 'locked/');
    await page.fill('#f-accessKey', rgw.accessKey);
    await page.fill('#f-secretKey', rgw.secretKey);
    await page.fill('#f-keepLast', '1');
    await page.selectOption('#f-objectLockMode', 'COMPLIANCE');
    await page.fill('#f-objectLockDays', '0');
    await page.click('#save');
    await page.waitForFunction(() => document.querySelector('[data-error-for="objectLock.days"]')?.textContent !== '');
    assert.match((await page.textContent('[data-error-for="objectLock.days"]')) ?? '', /at least 1 day/);
    assert.equal(await page.getAttribute('#f-objectLockDays', 'aria-invalid'), 'true');

    // Valid days, but the bucket was made without Object Lock: the worker asks it, and the page says so at the field.
    await page.fill('#f-objectLockDays', '7');
    await page.click('#save');
    await page.waitForFunction(() => document.querySelector('[data-error-for="objectLock"]')?.textContent !== '');
    assert.match((await page.textContent('[data-error-for="objectLock"]')) ?? '', new RegExp(`bucket "${bucket}" .* does not have Object Lock enabled`));
    assert.equal(await page.getAttribute('#f-objectLockMode', 'aria-invalid'), 'true');

    await page.fill('#f-bucket', lockedBucket);
    await page.click('#save');
    await page.waitForFunction(() => document.getElementById('dest-saved')?.textContent === 'Saved.');
    // What the page shows is what it read back from the api after the save.
    assert.equal(await page.inputValue('#f-objectLockMode'), 'COMPLIANCE');
    assert.equal(await page.inputValue('#f-objectLockDays'), '7');

    for (const expected of [/^0 old backups deleted$/, /^0 old backups deleted, 1 kept: Object Lock still holds it$/]) {
      await page.click('#run');
      await page.waitForSelector('#run-result:not([hidden])', { timeout: withWork(intervals.pollMs) });
      assert.match((await page.textContent('#result-retention')) ?? '', expected);
    }
    await page.screenshot({ path: join(ARTIFACTS, 'admin-ui-object-lock.png'), fullPage: true });
    await page.close();
  });
  test('a second copy: a local directory saved and shown after a reload, an S3 copy without a secret refused at that field, and the copy of a backup shown', async (t) => {
    const copyRoot = await tempDir(t, 'chango-ui-copy');
    const { page } = await openPage();
    const sent: string[] = [];
    page.on('request', (request) => void sent.push(request.postData() ?? ''));
    await signIn(page, stack.adminToken);
    // The form is filled once the page has read the config (the copy's secret hint is written last, whatever is stored).
    await page.waitForFunction(() => (document.getElementById('copy-secret-hint')?.textContent ?? '') !== '');
    // Whatever the tests before saved, the primary destination is filled in anew.
    await page.fill('#f-endpoint', rgw.endpoint);
    await page.fill('#f-region', rgw.region);
    await page.fill('#f-bucket', bucket);
    await page.fill('#f-prefix', 'copied/');
    await page.fill('#f-accessKey', rgw.accessKey);
    await page.fill('#f-secretKey', rgw.secretKey);
    for (const field of ['#f-keepLast', '#f-maxAgeDays', '#f-objectLockDays', '#f-recipients']) await page.fill(field, '');
    await page.setChecked('#f-keepAll', false);
    await page.selectOption('#f-objectLockMode', '');

    // None: no field of a copy is shown. A directory: its path and the copy's retention, no S3 field.
    await page.selectOption('#f-copyType', '');
    assert.deepEqual(await Promise.all(['#f-copyPath', '#f-copyBucket', '#f-copyKeepLast'].map((s) => page.isVisible(s))), [false, false, false]);
    await page.selectOption('#f-copyType', 'directory');
    assert.deepEqual(await Promise.all(['#f-copyPath', '#f-copyBucket', '#f-copySecretKey', '#f-copyKeepLast'].map((s) => page.isVisible(s))), [true, false, false, true]);

    // A path that is not normalized: the api's message is shown at the path.
    await page.fill('#f-copyPath', `${copyRoot}/`);
    await page.fill('#f-copyKeepLast', '3');
    await page.click('#save');
    await page.waitForFunction(() => (document.querySelector('[data-error-for="copy.path"]')?.textContent ?? '') !== '');
    assert.match((await page.textContent('[data-error-for="copy.path"]')) ?? '', /must be normalized/);
    assert.equal(await page.getAttribute('#f-copyPath', 'aria-invalid'), 'true');

    await page.fill('#f-copyPath', copyRoot);
    await page.click('#save');
    await page.waitForFunction(() => document.getElementById('dest-saved')?.textContent === 'Saved.');
    assert.equal(await page.getAttribute('#f-copyPath', 'aria-invalid'), null, 'the error is gone once saved');
    const stored = await stack.request<{ copy: unknown }>('GET', '/admin/api/backup/config');
    assert.deepEqual(stored.body.copy, { type: 'directory', path: copyRoot, retention: { keepLast: 3 } });

    // A reload shows what is stored: the directory, its retention, and only its fields.
    await page.reload();
    await page.waitForSelector('#shell:not([hidden])');
    await page.waitForFunction((root) => (document.getElementById('f-copyPath') as HTMLInputElement | null)?.value === root, copyRoot);
    assert.equal(await page.inputValue('#f-copyType'), 'directory');
    assert.equal(await page.inputValue('#f-copyKeepLast'), '3');
    assert.equal(await page.isVisible('#f-copyBucket'), false);
    await page.waitForFunction((label) => (document.getElementById('copy-status')?.textContent ?? '').includes(label), `Second copy to file://${copyRoot}: none made yet`);

    // S3, and no secret key for it: none is stored (the stored copy is a directory), so the worker refuses it, named at that box.
    await page.selectOption('#f-copyType', 's3');
    assert.deepEqual(await Promise.all(['#f-copyPath', '#f-copyBucket', '#f-copySecretKey', '#f-copyKeepLast'].map((s) => page.isVisible(s))), [false, true, true, true]);
    assert.match((await page.textContent('#copy-secret-hint')) ?? '', /No secret key is stored for an S3 copy yet/);
    await page.fill('#f-copyEndpoint', rgw.endpoint);
    await page.fill('#f-copyRegion', rgw.region);
    await page.fill('#f-copyBucket', bucket);
    await page.fill('#f-copyPrefix', 'copies/');
    await page.fill('#f-copyAccessKey', rgw.accessKey);
    await page.click('#save');
    await page.waitForFunction(() => (document.querySelector('[data-error-for="copy.secretKey"]')?.textContent ?? '') !== '');
    assert.match((await page.textContent('[data-error-for="copy.secretKey"]')) ?? '', /is required: no secret key is stored for the S3 copy yet/);
    assert.equal(await page.getAttribute('#f-copySecretKey', 'aria-invalid'), 'true');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'f-copySecretKey', 'the box at fault has the focus');
    const unsent = JSON.parse(sent.findLast((body) => body.includes('"copy"')) ?? '{}') as { copy?: Record<string, unknown> };
    assert.equal(unsent.copy?.type, 's3');
    assert.ok(!('secretKey' in (unsent.copy ?? {})), 'an empty secret key box is left out of the request');
    assert.equal((await stack.request<{ copy: { type: string } }>('GET', '/admin/api/backup/config')).body.copy.type, 'directory', 'nothing was saved');

    // A backup, with the directory copy stored: the copy follows it, and the page shows where it is.
    await page.click('#run');
    await page.waitForSelector('#run-result:not([hidden])', { timeout: withWork(intervals.pollMs) });
    const key = (await page.textContent('#result-key')) ?? '';
    assert.match(key, /^copied\/chango-\d{8}T\d{6}Z-[0-9a-f-]{36}\.tar\.gz$/);
    const name = key.slice('copied/'.length);
    const copied = join(copyRoot, `${name.slice('chango-'.length, 'chango-'.length + 4)}-${name.slice('chango-'.length + 4, 'chango-'.length + 6)}`, name);
    // The copy is a job of its own after the backup; the page shows it at its next refresh.
    await page.waitForFunction((words) => (document.getElementById('copy-status')?.textContent ?? '').includes(words), `Second copy to file://${copyRoot}: last copy committed`, { timeout: withWork(intervals.refreshMs) });
    assert.match((await page.textContent('#copy-status')) ?? '', new RegExp(`: ${copied.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
    assert.equal(await page.getAttribute('#copy-status li', 'class'), 'copy-ok');
    await page.waitForFunction((words) => (document.querySelector('#jobs tbody')?.textContent ?? '').includes(words), `${key} → ${copied}`);
    const copyRow = page.locator('#jobs tbody tr', { hasText: `${key} → ${copied}` });
    assert.deepEqual((await copyRow.locator('td').allTextContents()).slice(1, 4), ['copy', 'api', 'completed']);
    assert.ok((await readFile(copied)).length > 0, 'the copy is where the page says');

    // An S3 copy with its secret key: saved, the box emptied, the page says only that one is set.
    await page.fill('#f-copySecretKey', rgw.secretKey);
    await page.click('#save');
    await page.waitForFunction(() => document.getElementById('dest-saved')?.textContent === 'Saved.');
    assert.equal(await page.inputValue('#f-copySecretKey'), '', 'the secret is never put back in the page');
    assert.match((await page.textContent('#copy-secret-hint')) ?? '', /secret key is set for this copy/);
    assert.ok(!(await page.content()).includes(rgw.secretKey));
    // The status shows the target that is configured now.
    await page.waitForFunction((words) => (document.getElementById('copy-status')?.textContent ?? '') === words, `Second copy to ${rgw.endpoint.replace(/\/$/, '')}/${bucket}/copies/: none made yet (one follows each backup).`);
    await page.screenshot({ path: join(ARTIFACTS, 'admin-ui-second-copy.png'), fullPage: true });
    await page.close();
  });

  test('SSE-KMS key id: shown and edited; with another SSE mode the api refuses it at the field', async () => {
    const saved = await stack.request('PUT', '/admin/api/backup/config', { body: { endpoint: rgw.endpoint, region: rgw.region, bucket, prefix: 'prod/', accessKey: rgw.accessKey, secretKey: rgw.secretKey } });
    assert.equal(saved.status, 200, JSON.stringify(saved.body));
    const { page } = await openPage();
    await signIn(page, stack.adminToken);
    await page.waitForFunction(() => (document.getElementById('f-prefix') as HTMLInputElement | null)?.value === 'prod/');
    await page.selectOption('#f-sse', 'AES256');
    await page.fill('#f-sseKmsKeyId', 'alias/chango-backups');
    await page.click('#save');
    await page.waitForFunction(() => (document.querySelector('[data-error-for="sseKmsKeyId"]')?.textContent ?? '') !== '');
    assert.match((await page.textContent('[data-error-for="sseKmsKeyId"]')) ?? '', /only used with sse "aws:kms"/);
    assert.equal(await page.getAttribute('#f-sseKmsKeyId', 'aria-invalid'), 'true');

    await page.selectOption('#f-sse', 'aws:kms');
    await page.click('#save');
    await page.waitForFunction(() => document.getElementById('dest-saved')?.textContent === 'Saved.');
    const stored = await stack.request<{ sse: string; sseKmsKeyId: string | null }>('GET', '/admin/api/backup/config');
    assert.deepEqual({ sse: stored.body.sse, sseKmsKeyId: stored.body.sseKmsKeyId }, { sse: 'aws:kms', sseKmsKeyId: 'alias/chango-backups' });
    await page.reload();
    await page.waitForSelector('#shell:not([hidden])');
    await page.waitForFunction(() => (document.getElementById('f-sseKmsKeyId') as HTMLInputElement | null)?.value === 'alias/chango-backups');

    // Back to the default key, and to SSE-S3, for the tests after this one.
    await page.fill('#f-sseKmsKeyId', '');
    await page.selectOption('#f-sse', 'AES256');
    await page.click('#save');
    await page.waitForFunction(() => document.getElementById('dest-saved')?.textContent === 'Saved.');
    assert.equal((await stack.request<{ sseKmsKeyId: string | null }>('GET', '/admin/api/backup/config')).body.sseKmsKeyId, null);
    await page.close();
  });
});
