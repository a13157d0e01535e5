/**
 * The systemd units of deploy/systemd (README, "Install on a master host"): `systemd-analyze verify`
 * accepts them with nothing to say, and they keep what the install promises — secrets as
 * credentials and never in the environment, the sandbox, a restart policy that gives up on a crash
 * loop, a stop timeout above the worker's own bound — and the example environment files name the
 * settings the README documents, with the defaults the code uses.
 *
 * Hermetic: verify runs on copies whose ExecStart= names this machine's node and this checkout's
 * built entries (verify checks that the program exists), nothing else changed. It needs
 * systemd-analyze (Debian's systemd package; scripts/debian-deps.sh installs it), not a running
 * systemd: it works as root in a container where systemd is not PID 1.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CREDENTIAL_NAMES } from '@chango/security';
import { DEFAULT_DATA_DIR } from '@chango/state';
import { readApiConfig } from '../../apps/api/src/config.js';
import { readWorkerConfig } from '../../apps/worker/src/config.js';
import { STOP_BOUND_MS } from '../../apps/worker/src/stop-bound.js';
import { newRootSecret, tempDir } from '../../testkit/fixtures.js';
import { WORKER_ENV } from '../../testkit/processes.js';
import { SAFETY_NET_MS } from '../../testkit/liveness.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (relative: string): string => readFileSync(join(ROOT, relative), 'utf8');

/** Where the README installs the code and which node runs it: what the units' ExecStart= names. */
const INSTALL_DIR = '/opt/chango-backup';
const NODE = '/usr/bin/node';

const UNITS = {
  worker: { file: 'deploy/systemd/chango-backup-worker.service', entry: 'apps/worker/dist/main.js', env: 'deploy/systemd/worker.env.example' },
  api: { file: 'deploy/systemd/chango-backup-api.service', entry: 'apps/api/dist/main.js', env: 'deploy/systemd/api.env.example' },
} as const;

/** A unit file's settings by section, every value of a repeated key in order (comments and blank lines dropped). */
type Unit = Map<string, Map<string, string[]>>;

function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    assert.ok(!line.endsWith('\\'), `no continuation lines, please: ${line}`);
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = new Map();
      unit.set(header[1]!, section);
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(section && eq > 0, `not a setting in a section: ${line}`);
    const key = line.slice(0, eq).trim();
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return unit;
}

function loadUnit(name: keyof typeof UNITS): Unit {
  return parseUnit(read(UNITS[name].file));
}

/** Every value of `key` in `section`. */
function all(unit: Unit, section: string, key: string): string[] {
  return unit.get(section)?.get(key) ?? [];
}

/** The one value of `key` in `section` (the last wins in systemd; we want exactly one). */
function one(unit: Unit, section: string, key: string): string | undefined {
  const values = all(unit, section, key);
  assert.ok(values.length <= 1, `[${section}] ${key}= is set ${values.length} times`);
  return values[0];
}

/** A systemd time span ("40s", "5min", "1min 30s", a bare number of seconds) in milliseconds. */
function timeSpanMs(span: string): number {
  const units: Record<string, number> = { ms: 1, msec: 1, s: 1_000, sec: 1_000, second: 1_000, seconds: 1_000, m: 60_000, min: 60_000, minute: 60_000, minutes: 60_000, h: 3_600_000, hr: 3_600_000, hour: 3_600_000 };
  if (/^\d+$/.test(span)) return Number(span) * 1_000;
  let total = 0;
  let rest = span.replace(/\s+/g, '');
  while (rest !== '') {
    const part = /^(\d+)([a-z]+)/.exec(rest);
    const factor = part ? units[part[2]!] : undefined;
    assert.ok(part && factor !== undefined, `not a time span: ${span}`);
    total += Number(part[1]) * factor;
    rest = rest.slice(part[0].length);
  }
  return total;
}

function systemdAnalyzeVerify(files: string[]): { status: number | null; output: string } {
  const result = spawnSync('systemd-analyze', ['verify', ...files], {
    encoding: 'utf8',
    timeout: SAFETY_NET_MS, // a child run to completion: the safety net
    // Its messages at their usual level, whatever the caller's environment asks.
    env: { ...process.env, SYSTEMD_LOG_LEVEL: 'info', SYSTEMD_PAGER: '' },
  });
  assert.equal(result.error, undefined, `systemd-analyze: ${String(result.error)} (install Debian's systemd: bash scripts/debian-deps.sh)`);
  return { status: result.status, output: `${result.stdout}${result.stderr}`.trim() };
}

/** The units as installed, but running this machine's node and this checkout's built entries. */
async function hermeticCopies(dir: string, change: (text: string) => string = (text) => text): Promise<string[]> {
  const files: string[] = [];
  for (const [name, unit] of Object.entries(UNITS)) {
    const original = read(unit.file);
    const installed = `ExecStart=${NODE} ${INSTALL_DIR}/${unit.entry}`;
    assert.ok(original.includes(`\n${installed}\n`), `${unit.file} does not run ${installed}`);
    const copy = join(dir, `chango-backup-${name}.service`);
    await writeFile(copy, change(original.replace(installed, `ExecStart=${process.execPath} ${join(ROOT, unit.entry)}`)));
    files.push(copy);
  }
  return files;
}

test('systemd-analyze verify accepts both units and has nothing to say about them', async (t) => {
  const dir = await tempDir(t, 'chango-systemd');
  const verified = systemdAnalyzeVerify(await hermeticCopies(dir));
  assert.equal(verified.output, '', 'systemd-analyze verify printed warnings or errors');
  assert.equal(verified.status, 0);

  // The same tool on a unit with one wrong setting does speak: the silence above is a verdict.
  const broken = await tempDir(t, 'chango-systemd-broken');
  const complaint = systemdAnalyzeVerify(await hermeticCopies(broken, (text) => text.replace('ProtectSystem=strict', 'ProtectSystem=strictest')));
  assert.match(complaint.output, /chango-backup-worker\.service:\d+: .*strictest/);
  assert.match(complaint.output, /chango-backup-api\.service:\d+: .*strictest/);
});

test('each unit runs the built entry of its app with node, as the README installs it, and starts at boot', () => {
  for (const [name, { entry }] of Object.entries(UNITS)) {
    const unit = loadUnit(name as keyof typeof UNITS);
    assert.equal(one(unit, 'Service', 'ExecStart'), `${NODE} ${INSTALL_DIR}/${entry}`);
    assert.ok(existsSync(join(ROOT, entry)), `${entry} is not built (npm run build)`);
    assert.ok(existsSync(join(ROOT, entry.replace('/dist/', '/src/').replace(/\.js$/, '.ts'))), `${entry} is not built from a source in this repo`);
    assert.equal(one(unit, 'Install', 'WantedBy'), 'multi-user.target');
    assert.equal(one(unit, 'Service', 'Type'), 'exec', `${name}: a start whose program cannot run fails the start`);
  }
  assert.match(read('README.md'), /## Install on a master host/);
  assert.ok(read('README.md').includes(INSTALL_DIR), 'the README does not say where the install lives');
});

test('secrets come as credentials from /etc/chango-backup, never through the environment; settings from an environment file', () => {
  const worker = loadUnit('worker');
  const api = loadUnit('api');
  assert.deepEqual(all(worker, 'Service', 'LoadCredential'), [`${CREDENTIAL_NAMES.rootSecret}:/etc/chango-backup/root-secret`]);
  assert.deepEqual(all(api, 'Service', 'LoadCredential'), [`${CREDENTIAL_NAMES.apiTokens}:/etc/chango-backup/api-tokens`]);
  // The drills' identity is an operator's choice (README, the drill's trade-off): offered, commented out.
  assert.ok(read(UNITS.worker.file).includes(`\n#LoadCredential=${CREDENTIAL_NAMES.ageIdentity}:/etc/chango-backup/age-identity\n`));
  assert.equal(one(worker, 'Service', 'EnvironmentFile'), '/etc/chango-backup/worker.env');
  assert.equal(one(api, 'Service', 'EnvironmentFile'), '/etc/chango-backup/api.env');

  const secretVariables = /CHANGO_ROOT_SECRET|CHANGO_API_TOKENS_FILE|CHANGO_AGE_IDENTITY_FILE|CREDENTIALS_DIRECTORY|SECRET|TOKEN|PASSWORD/;
  for (const [name, unit] of [['worker', worker], ['api', api]] as const) {
    for (const key of ['Environment', 'SetCredential', 'SetCredentialEncrypted', 'PassEnvironment']) {
      for (const value of all(unit, 'Service', key)) assert.doesNotMatch(value, secretVariables, `${name}: ${key}=${value} puts a secret where it does not belong`);
    }
    assert.deepEqual(all(unit, 'Service', 'SetCredential'), [], `${name}: a secret written in the unit file`);
  }
});

test('the worker runs with the same memory settings wherever it is installed, and as the tests run it', () => {
  const settings = Object.entries(WORKER_ENV).map(([name, value]) => `${name}=${value}`);
  assert.deepEqual(all(loadUnit('worker'), 'Service', 'Environment'), settings, 'the worker unit');
  assert.deepEqual(all(loadUnit('api'), 'Service', 'Environment'), [], 'the api unit needs none');
  const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
  assert.equal(scripts['start:worker'], `${settings.join(' ')} node apps/worker/dist/main.js`, 'npm run start:worker');
  // The image's ENV holds them for every process of it, the api's too.
  const dockerEnv = /^ENV ((?:.*\\\n)*.*)$/m.exec(read('Dockerfile'))?.[1]?.replace(/\\\n\s*/g, ' ') ?? '';
  for (const setting of settings) assert.ok(dockerEnv.split(/\s+/).includes(setting), `the Dockerfile's ENV lacks ${setting}: ${dockerEnv}`);
});

test('the sandbox: a read-only system, the data dir the only place the worker writes, no privilege, no capability', () => {
  const worker = loadUnit('worker');
  const api = loadUnit('api');
  for (const [name, unit] of [['worker', worker], ['api', api]] as const) {
    const setting = (key: string) => one(unit, 'Service', key);
    assert.equal(setting('ProtectSystem'), 'strict', name);
    assert.equal(setting('ProtectHome'), 'yes', name);
    assert.equal(setting('PrivateTmp'), 'yes', name);
    assert.equal(setting('NoNewPrivileges'), 'yes', name);
    assert.equal(setting('CapabilityBoundingSet'), '', `${name}: no capability at all`);
    assert.equal(setting('UMask'), '0077', name);
    for (const key of ['PrivateDevices', 'ProtectKernelTunables', 'ProtectKernelModules', 'ProtectControlGroups', 'RestrictSUIDSGID', 'LockPersonality', 'RestrictRealtime', 'RestrictNamespaces']) {
      assert.equal(setting(key), 'yes', `${name}: ${key}=`);
    }
    assert.equal(setting('SystemCallArchitectures'), 'native', name);
    // V8's JIT maps memory writable and executable: this would kill node at start.
    assert.notEqual(setting('MemoryDenyWriteExecute'), 'yes', `${name}: MemoryDenyWriteExecute= breaks node`);
  }
  // The worker: the user that owns the stores, writing only under the data dir (its work dir is inside by default).
  assert.equal(one(worker, 'Service', 'User'), 'chango');
  assert.equal(one(worker, 'Service', 'Group'), 'chango');
  assert.deepEqual(all(worker, 'Service', 'ReadWritePaths'), [DEFAULT_DATA_DIR]);
  assert.equal(readWorkerConfig({ CHANGO_ROOT_SECRET: newRootSecret() }).workDir.startsWith(`${DEFAULT_DATA_DIR}/`), true, 'the default work dir is outside ReadWritePaths=');
  // The api: a user of its own that writes nowhere and cannot see the stores.
  assert.equal(one(api, 'Service', 'DynamicUser'), 'yes');
  assert.deepEqual(all(api, 'Service', 'ReadWritePaths'), []);
  assert.deepEqual(all(api, 'Service', 'InaccessiblePaths'), [`-${DEFAULT_DATA_DIR}`]);
});

test('a crash restarts the service without hammering, and a crash loop gives up', () => {
  for (const name of ['worker', 'api'] as const) {
    const unit = loadUnit(name);
    assert.equal(one(unit, 'Service', 'Restart'), 'on-failure', name);
    const restartMs = timeSpanMs(one(unit, 'Service', 'RestartSec') ?? '0');
    assert.ok(restartMs >= 5_000, `${name}: RestartSec= below 5 s restarts too fast`);
    const burst = Number(one(unit, 'Unit', 'StartLimitBurst'));
    const intervalMs = timeSpanMs(one(unit, 'Unit', 'StartLimitIntervalSec') ?? '0');
    assert.ok(burst >= 2 && intervalMs > 0, `${name}: no start limit`);
    // The limit must be reachable by restarts alone, or a crash loop never ends.
    assert.ok(burst * restartMs < intervalMs, `${name}: ${burst} restarts ${restartMs} ms apart never hit a limit of ${intervalMs} ms`);
  }
});

test("stopping: systemd waits longer than the worker's own bound, and the drill child dies with the worker", () => {
  const worker = loadUnit('worker');
  const stopMs = timeSpanMs(one(worker, 'Service', 'TimeoutStopSec') ?? '');
  // The worker exits within STOP_BOUND_MS of SIGTERM, whatever hangs; a loaded host needs room on top.
  assert.ok(stopMs >= STOP_BOUND_MS + 10_000, `TimeoutStopSec= (${stopMs} ms) leaves no room above the worker's bound (${STOP_BOUND_MS} ms)`);
  assert.equal(one(worker, 'Service', 'KillMode'), 'mixed', 'SIGTERM to the worker alone, SIGKILL to what is left once it exits');
  assert.notEqual(one(worker, 'Service', 'SendSIGKILL'), 'no');

  const api = loadUnit('api');
  const apiBound = /setTimeout\(\(\) => process\.exit\(0\), (\d[\d_]*)\)/.exec(read('apps/api/src/main.ts'))?.[1];
  assert.ok(apiBound, "the api's stop bound is no longer where this test reads it (apps/api/src/main.ts)");
  assert.ok(timeSpanMs(one(api, 'Service', 'TimeoutStopSec') ?? '') > Number(apiBound.replaceAll('_', '')), "the api's TimeoutStopSec= is not above its stop bound");
  // A reload would re-read the credential's old copy (systemd 252 does not renew credentials): restart instead.
  assert.deepEqual(all(api, 'Service', 'ExecReload'), [], 'ExecReload= would keep a revoked token valid');
});

/** README's Configuration table: variable → the programs that read it. */
function configurationTable(): Map<string, string> {
  const readme = read('README.md');
  const start = readme.indexOf('\n## Configuration\n');
  assert.ok(start >= 0, 'README has no Configuration section');
  const rows = new Map<string, string>();
  for (const line of readme.slice(start, readme.indexOf('\n## ', start + 1)).split('\n')) {
    if (!line.startsWith('| `')) continue;
    const [names = '', usedBy = ''] = line.slice(1).split(/(?<!\\)\|/).map((cell) => cell.trim());
    for (const m of names.matchAll(/`([A-Z][A-Z0-9_]*)`/g)) rows.set(m[1]!, usedBy);
  }
  assert.ok(rows.size > 20, 'the Configuration table was not found');
  return rows;
}

/** An environment file's assignments, commented out or not, with the comment lines just above each. */
function envExample(relative: string): { name: string; value: string; commented: boolean; note: string }[] {
  const entries: { name: string; value: string; commented: boolean; note: string }[] = [];
  let note: string[] = [];
  for (const line of read(relative).split('\n')) {
    const assignment = /^(#?)([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (assignment) {
      entries.push({ name: assignment[2]!, value: assignment[3]!, commented: assignment[1] === '#', note: note.join(' ') });
      note = [];
    } else {
      note = line.startsWith('#') ? [...note, line] : [];
    }
  }
  return entries;
}

test('the example environment files name every setting the README gives their program, no secret, and show the defaults the code uses', () => {
  const table = configurationTable();
  // Given by the unit (credentials) or by systemd itself, never in an environment file.
  const notInEnvFiles = new Set(['CHANGO_ROOT_SECRET_FILE', 'CHANGO_ROOT_SECRET', 'CHANGO_AGE_IDENTITY_FILE', 'CHANGO_API_TOKENS_FILE', 'CREDENTIALS_DIRECTORY']);
  assert.ok(table.has('CREDENTIALS_DIRECTORY'), 'the Configuration table does not say what CREDENTIALS_DIRECTORY does');
  for (const [program, { env }] of Object.entries(UNITS)) {
    const entries = envExample(env);
    const names = entries.map((e) => e.name);
    assert.equal(new Set(names).size, names.length, `${env} names a variable twice`);
    const documented = [...table].filter(([, usedBy]) => usedBy.split(/,\s*/).includes(program)).map(([name]) => name);
    for (const name of documented.filter((n) => !notInEnvFiles.has(n))) assert.ok(names.includes(name), `${env} does not mention ${name}`);
    for (const name of names) {
      assert.ok(documented.includes(name), `${env} names ${name}, which the README does not give the ${program}`);
      assert.ok(!notInEnvFiles.has(name), `${env} assigns ${name}: secrets come as credentials`);
    }
    assert.ok(entries.every((e) => e.commented), `${env}: every line is a commented-out example`);

    // Uncommented as they are, the lines not marked "Default:" change nothing.
    const defaults = Object.fromEntries(entries.filter((e) => !/Default:/.test(e.note)).map((e) => [e.name, e.value]));
    assert.ok(Object.keys(defaults).length >= 10, `${env}: too few defaults found`);
    if (program === 'worker') {
      const secret = { CHANGO_ROOT_SECRET: newRootSecret() };
      assert.deepEqual(readWorkerConfig({ ...defaults, ...secret }), readWorkerConfig(secret));
    } else {
      const tokens = { CHANGO_API_TOKENS_FILE: '/etc/chango-backup/api-tokens' };
      assert.deepEqual(readApiConfig({ ...defaults, ...tokens }), readApiConfig(tokens));
    }
  }
});
