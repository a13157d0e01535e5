import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import type { BackupResult, BackupStatus } from '@chango/contracts';
import { SuiteScope, tempDir, waitFor, type CleanupScope } from '../../testkit/fixtures.js';
import { SAFETY_NET_MS, settled, withinLoad } from '../../testkit/liveness.js';
import { API, REPO_ROOT, RunningProcess } from '../../testkit/processes.js';
import { freeLoopbackPort } from '../../testkit/ports.js';
import { Stack } from '../../testkit/stack.js';
import { createTestBucket, startRgw, type RgwCluster } from '../../testkit/local-rgw.js';

const run = promisify(execFile);
const RULES = join(REPO_ROOT, 'deploy/prometheus/rules/chango-backup.rules.yml');
const DASHBOARD = join(REPO_ROOT, 'deploy/grafana/dashboards/chango-backup.json');
/** The test Prometheus scrapes and evaluates its rules this often. */
const SCRAPE_MS = 1_000;
const EVALUATION_MS = 1_000;

interface RuleFile {
  groups: { rules: { record?: string; alert?: string; expr: string }[] }[];
}


/** `promtool check metrics` on a scrape: its complaints, one a line (none is the goal). */
async function promtoolComplaints(exposition: string): Promise<string> {
  const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stdin.end(exposition);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return code === 0 ? output.trim() : `exit ${code}: ${output}`;
}

/** The chango_backup_* sample lines of a scrape, sorted (the per-process nodejs_/process_ ones left out). */
function backupSamples(exposition: string): string[] {
  return exposition.split('\n').filter((line) => line.startsWith('chango_backup_')).sort();
}

describe('metrics, alert rules and the dashboard against promtool and a real Prometheus', () => {
  let rgw: RgwCluster;

  before(async () => {
    rgw = await startRgw();
  });
  after(async () => {
    await rgw?.stop();
  });

  /**
   * A stack of its own and a second api replica on the same Redis prefix, closed by `t` (replica first, as a
   * SuiteScope runs them): each test that reads metrics makes the backup and drill it counts on its own stack.
   */
  const twoReplicas = async (t: CleanupScope) => {
    const scope = new SuiteScope();
    t.after(() => scope.run());
    const stack = await Stack.start(scope, { users: 3, components: 50, env: { CHANGO_VERIFY_SCHEDULED: 'false', CHANGO_BACKUP_ATTEMPTS: '2', CHANGO_BACKUP_BACKOFF_MS: '300' } });
    const replica = RunningProcess.start(API, stack.env);
    scope.after(() => replica.stop());
    await replica.waitForOutput('api listening');
    return { stack, replicaUrl: replica.listeningUrl() };
  };

  /** The copy of `key` at `label` to have ended (committed or failed for good): work of its own, the safety net bounds it. */
  const copyEnded = (stack: Stack, label: string, key: string) =>
    waitFor(`the copy of ${key} to ${label}`, async () => {
      const target = (await stack.request<BackupStatus>('GET', '/admin/api/backup/status')).body.lastCopy.find((t) => t.destination === label);
      return target && (target.lastSuccess?.key === key || target.lastFailure?.key === key) ? target : undefined;
    }, SAFETY_NET_MS, 250);

  /**
   * A destination saved (a daily schedule, keep 5, a second copy in a local directory), one backup made through
   * the api, its copy committed and its drill run to completion.
   */
  const backupAndDrill = async (stack: Stack): Promise<BackupResult> => {
    const bucket = await createTestBucket(rgw);
    const copyDir = join(stack.dir, 'offline-copy');
    await mkdir(copyDir);
    const put = await stack.request('PUT', '/admin/api/backup/config', {
      body: {
        endpoint: rgw.endpoint, region: rgw.region, bucket, prefix: 'prod/', accessKey: rgw.accessKey, secretKey: rgw.secretKey,
        schedule: '0 3 * * *', retention: { keepLast: 5 }, copy: { type: 'directory', path: copyDir },
      },
    });
    assert.equal(put.status, 200);
    const made = await stack.request<BackupResult>('POST', '/admin/api/backup/run');
    assert.equal(made.status, 200, JSON.stringify(made.body));
    assert.equal((await copyEnded(stack, `file://${copyDir}`, made.body.key)).lastFailure, null);
    const drill = await stack.request<{ statusUrl: string }>('POST', '/admin/api/backup/verify', { body: { key: made.body.key } });
    await waitFor('the drill', async () => ((await stack.request<{ state: string }>('GET', drill.body.statusUrl)).body.state === 'completed' ? true : undefined), SAFETY_NET_MS, 250);
    return made.body;
  };

  const scrape = async (base: string) => (await fetch(`${base}/metrics`)).text();

  test('the rules pass promtool check rules, and promtool test rules shows each alert firing when it should', async () => {
    const checked = await run('promtool', ['check', 'rules', RULES]);
    assert.match(checked.stdout, /SUCCESS: 11 rules found/);
    const tested = await run('promtool', ['test', 'rules', 'chango-backup.rules.test.yml'], { cwd: join(REPO_ROOT, 'test/prometheus') });
    assert.match(tested.stdout, /SUCCESS/);
  });

  test('a real Prometheus scraping two api replicas gets data for every dashboard and rule expression after a backup and a drill', async (t) => {
    const { stack, replicaUrl } = await twoReplicas(t);
    const dir = await tempDir(t, 'chango-prometheus');
    const port = await freeLoopbackPort();
    const targets = [stack.baseUrl, replicaUrl].map((url) => new URL(url).host);
    await writeFile(
      join(dir, 'prometheus.yml'),
      `global:\n  scrape_interval: ${SCRAPE_MS / 1000}s\n  evaluation_interval: ${EVALUATION_MS / 1000}s\nrule_files:\n  - ${RULES}\nscrape_configs:\n  - job_name: chango-backup\n    static_configs:\n      - targets: ${JSON.stringify(targets)}\n`,
    );
    const prometheus = new RunningProcess(
      spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    t.after(() => prometheus.stop());
    const api = `http://127.0.0.1:${port}/api/v1`;
    const query = async (expr: string) => {
      const body = (await (await fetch(`${api}/query?query=${encodeURIComponent(expr)}`)).json()) as { status: string; error?: string; data: { result: unknown[] } };
      assert.equal(body.status, 'success', `${expr}: ${body.error ?? ''}`);
      return body.data.result;
    };
    // Prometheus starts, then scrapes both replicas within a scrape interval.
    await waitFor('Prometheus to scrape both replicas', async () => ((await query('up == 1').catch(() => [])).length === 2 ? true : undefined), withinLoad(SCRAPE_MS), 250);

    // Before anything happened: the scrape is already clean.
    assert.equal(await promtoolComplaints(await scrape(stack.baseUrl)), '');

    const backup = await backupAndDrill(stack);

    const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
    const rules = parseYaml(await readFile(RULES, 'utf8')) as RuleFile;
    const recordings = rules.groups.flatMap((g) => g.rules.filter((r) => r.record));
    const expressions = [
      ...dashboard.panels.flatMap((panel) => panel.targets.map((target) => ({ where: `dashboard "${panel.title}"`, expr: target.expr }))),
      ...recordings.flatMap((r) => [
        { where: `rule ${r.record}`, expr: r.expr },
        { where: 'recorded series', expr: r.record as string },
      ]),
    ];
    assert.ok(expressions.length >= 20, `${expressions.length} expressions`);
    const alertRules = rules.groups.flatMap((g) => g.rules.filter((r) => r.alert));
    const comparisons = alertRules.map((rule) => ({ rule, comparison: rule.expr.replace(/\s(==|!=|>=|<=|>|<)\s/, ' $1 bool ') }));

    // Scrapes and rule evaluations after the backup and the drill: both replicas scraped since the drill (their
    // figures are the backup's and the drill's), a rule evaluation since then, every expression with data. Due within
    // a scrape and an evaluation interval; the assertions below then say what is missing if it never came.
    const valuesOf = async (expr: string) => ((await query(expr)) as { value: [number, string] }[]).map((r) => r.value[1]);
    await settled(async () => {
      const [size, verified, recorded] = await Promise.all([valuesOf('chango_backup_last_archive_size_bytes'), valuesOf('chango_backup_last_verify_success'), valuesOf('chango_backup:last_verify_success')]);
      if (size.length !== 2 || !size.every((v) => Number(v) === backup.size)) return false;
      if (verified.length !== 2 || !verified.every((v) => v === '1') || recorded.join() !== '1') return false;
      for (const expr of [...expressions.map((e) => e.expr), ...comparisons.map((c) => c.comparison)]) if ((await query(expr)).length === 0) return false;
      return true;
    }, withinLoad(SCRAPE_MS + EVALUATION_MS));

    for (const { where, expr } of expressions) {
      const result = await query(expr);
      assert.ok(result.length > 0, `${where}: ${expr} returned no data`);
    }

    // Alert expressions are comparisons, empty while all is well. With `bool` they answer 0 or 1 for every
    // series they compare: data there shows their operands exist and match, whatever the alert's state.
    assert.equal(alertRules.length, 5);
    for (const { rule, comparison } of comparisons) {
      assert.notEqual(comparison, rule.expr, `${rule.alert}: one comparison in ${rule.expr}`);
      const result = (await query(comparison)) as { value: [number, string] }[];
      assert.ok(result.length > 0, `alert ${rule.alert}: ${comparison} returned no data`);
      assert.ok(result.every((r) => r.value[1] === '0'), `alert ${rule.alert} would fire on a healthy system: ${JSON.stringify(result)}`);
    }

    // Every alert's expression evaluates without error (firing or not).
    const ruleState = (await (await fetch(`${api}/rules`)).json()) as { data: { groups: { rules: { name: string; type: string; health: string; lastError?: string }[] }[] } };
    const alerts = ruleState.data.groups.flatMap((g) => g.rules).filter((r) => r.type === 'alerting');
    assert.deepEqual(alerts.map((a) => a.name).sort(), ['ChangoBackupCopyFailing', 'ChangoBackupFailingRepeatedly', 'ChangoBackupLastVerifyFailed', 'ChangoBackupNoLeader', 'ChangoBackupNoRecentSuccess']);
    for (const alert of alerts) assert.equal(alert.health, 'ok', `${alert.name}: ${alert.lastError ?? ''}`);


    // The figures are the backup's, whichever replica Prometheus asked.
    const size = (await query('chango_backup_last_archive_size_bytes')) as { value: [number, string] }[];
    assert.equal(size.length, 2);
    for (const sample of size) assert.equal(Number(sample.value[1]), backup.size);

    // The copy target goes away (an unmounted disk): the backup commits, the copy fails for good, and the alert's
    // expression returns that target — within a scrape and an evaluation of the copy's final failure.
    const unmounted = join(stack.dir, 'unmounted-disk');
    const moved = await stack.request('PUT', '/admin/api/backup/config', {
      body: { endpoint: rgw.endpoint, region: rgw.region, bucket: backup.bucket, prefix: 'prod/', accessKey: rgw.accessKey, schedule: '0 3 * * *', retention: { keepLast: 5 }, copy: { type: 'directory', path: unmounted } },
    });
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    const next = await stack.request<BackupResult>('POST', '/admin/api/backup/run');
    assert.equal(next.status, 200, JSON.stringify(next.body));
    assert.notEqual((await copyEnded(stack, `file://${unmounted}`, next.body.key)).lastFailure, null);
    const failing = await waitFor('the copy alert expression to return the target', async () => {
      const result = (await query(alertRules.find((r) => r.alert === 'ChangoBackupCopyFailing')?.expr ?? '')) as { metric: { destination?: string } }[];
      return result.length > 0 ? result : undefined;
    }, withinLoad(SCRAPE_MS + EVALUATION_MS), 250);
    assert.deepEqual(failing.map((r) => r.metric.destination), [`file://${unmounted}`], 'only the failing target, once (both replicas agree)');
  });

  test('after a backup and a drill, /metrics passes promtool check metrics and two replicas report the same figures', async (t) => {
    const { stack, replicaUrl } = await twoReplicas(t);
    const backup = await backupAndDrill(stack);
    const [first, second] = await Promise.all([scrape(stack.baseUrl), scrape(replicaUrl)]);
    assert.equal(await promtoolComplaints(first), '');
    assert.deepEqual(backupSamples(first), backupSamples(second));
    assert.match(first, /^chango_backup_runs_total\{trigger="api",result="success"\} 1$/m);
    assert.match(first, /^chango_backup_runs_total\{trigger="schedule",result="failure"\} 0$/m);
    assert.match(first, /^chango_backup_duration_seconds_count 1$/m);
    assert.match(first, /^chango_backup_duration_seconds_bucket\{le="\+Inf"\} 1$/m);
    assert.match(first, new RegExp(`^chango_backup_last_archive_size_bytes ${backup.size}$`, 'm'));
    assert.match(first, /^chango_backup_last_verify_success 1$/m);
    assert.match(first, /^chango_backup_verify_runs_total\{result="success"\} 1$/m);
    assert.match(first, new RegExp(`^chango_backup_leader_info\\{node_id="${stack.env.CHANGO_NODE_ID}"\\} 1$`, 'm'));
    assert.match(first, /^chango_backup_schedule_interval_seconds 86400$/m);
    assert.match(first, /^chango_backup_queue_jobs\{queue="backup",state="completed"\} 3$/m, 'the backup, its copy and its drill');
    assert.match(first, /^chango_backup_copy_runs_total\{destination="file:\/\/[^"]+",result="success"\} 1$/m);
    // Cumulative buckets never decrease.
    const buckets = [...first.matchAll(/^chango_backup_duration_seconds_bucket\{le="[^"]+"\} (\d+)$/gm)].map((m) => Number(m[1]));
    assert.deepEqual(buckets, [...buckets].sort((a, b) => a - b));
  });
});
