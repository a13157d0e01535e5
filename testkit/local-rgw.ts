/**
 * A real S3 server for the integration tests: Ceph's RADOS Gateway (Debian's Ceph 16.2 "pacific")
 * on a throwaway single-node cluster, loopback only, everything in one fresh temp dir.
 *
 * Bring-up (1.0-1.5 s on the 2-core machines, ~200 MiB RSS for the four daemons): monmaptool +
 * `ceph-mon --mkfs`, start the mon; `ceph osd new` + `ceph-osd --mkfs`, start the OSD; start the
 * main radosgw and wait until it answers HTTP; then, together, start the strict radosgw and
 * `radosgw-admin user create` the test user with random keys. Every command gets
 * `-c <tmp>/ceph.conf`, so nothing reads or writes /etc/ceph or /var/lib/ceph.
 *
 * Config decisions (see `cephConf` below), and why:
 * - auth none for cluster/service/client: no keyrings to make; nothing but loopback can reach it.
 *   `keyring = /dev/null` stops daemons looking for keyrings in /etc/ceph.
 * - `ms mon client mode = crc secure`: radosgw (unlike the `ceph` CLI) defaults this to `secure`
 *   only, which auth `none` cannot provide; without it radosgw loops forever on
 *   "get_initial_auth_request returned -13".
 * - msgr v2 only (`ms bind msgr1 = false`, mon host `v2:127.0.0.1:PORT`), `public addr` and
 *   `cluster addr` 127.0.0.1: the OSD otherwise listens on 0.0.0.0. The OSD picks its own ports
 *   in Ceph's 6800-7300 range; the mon and both gateways get free loopback ports we pick (outside
 *   that range).
 * - `osd objectstore = memstore`: no disk, no bluestore tuning; data lives in the OSD's RAM,
 *   capped by `memstore device bytes` (1 GiB). The cluster is thrown away on stop (SIGKILL, then
 *   the dir is removed), so memstore never dumps to disk.
 * - one OSD: `osd pool default size/min size = 1`, `mon allow pool size one`,
 *   `mon warn on pool no redundancy = false`, `osd crush chooseleaf type = 0` (failure domain =
 *   OSD), 8 PGs per pool with the autoscaler off (there is no mgr) and `mon max pg per osd` high,
 *   so radosgw can create its 7 pools.
 * - `paxos propose interval = 0.01` (default 1 s): radosgw creates its pools one mon command at a
 *   time and each waited a full paxos round, which made start-up ~8 s instead of ~1 s.
 * - radosgw starts after the OSD: started before it, start-up took ~6 s (its first writes back off).
 * - no mgr: nothing here needs it (`ceph -s` just shows no usage numbers).
 * - `ms bind retry count = 2`, `ms bind retry delay = 1`: a port taken between our pick and the
 *   daemon's bind fails start-up in ~2 s instead of ~15 s.
 * - `rgw thread pool size = 32` (default 512) and `rgw dynamic resharding = false`: less memory and
 *   no background work on a 2-core machine; `rgw init timeout = 60` bounds a gateway that hangs.
 * - SSE, main gateway: `rgw crypt require ssl = false` (Ceph refuses any SSE header over plain
 *   HTTP otherwise) and `rgw crypt default encryption key` (random 256-bit, per cluster). Pacific
 *   has no SSE-S3 key backend; with a default key it accepts `x-amz-server-side-encryption:
 *   AES256`, keeps the header as the object attribute `user.rgw.x-amz-server-side-encryption`
 *   (= AES256) and encrypts the data with crypt mode `RGW-AUTO` (`user.rgw.crypt.mode`), both
 *   shown by `radosgw-admin object stat`. Side effect: with that key every object is stored
 *   encrypted (RGW-AUTO), header or not; reads decrypt transparently and ETags stay the MD5 of the
 *   plaintext. The key sits in [client] so both gateways (and radosgw-admin) can read every object.
 * - SSE-KMS: `rgw crypt s3 kms backend = testing` with one key, KMS_TEST_KEY_ID (random 256-bit,
 *   per cluster): `x-amz-server-side-encryption: aws:kms` with
 *   `x-amz-server-side-encryption-aws-kms-key-id: chango-test-kms-key` is accepted over HTTP on the
 *   main gateway (crypt mode `SSE-KMS`, the key id in `user.rgw.crypt.keyid` of `object stat`); any
 *   other key id is refused. The testing backend keeps the key in the config: fine for a throwaway
 *   cluster, never for a real one (Vault or Barbican there).
 * - strict gateway: a second radosgw (`client.rgw.strict`) on the same cluster, zone and users,
 *   with the stock `rgw crypt require ssl = true`: SSE headers over HTTP get 400 InvalidRequest.
 * - keys: access key 20 of [A-Z0-9], secret 40 of [A-Za-z0-9] (RGW breaks on `/` in an access key).
 * - daemons run in the foreground (`-f`) as unref'd children (a test file that forgets stop()
 *   still exits), wrapped in `setpriv --pdeathsig KILL` so they die with the test process even if
 *   it is SIGKILLed; `stop()` and an `exit` hook kill them by PID. A dir left by a SIGKILLed
 *   process (its `owner.pid` no longer alive) is removed by the next start. Every wait is bounded
 *   (60 s overall, 30 s per radosgw-admin call); a daemon that dies during start-up fails it with
 *   the tail of its log, one that dies later is reported on stderr with its log tail.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { access, constants, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import * as Minio from 'minio';
import { isProcessRunning } from '@chango/restore';
import { freeLoopbackPort } from './ports.js';
import { spawnTiedToThisProcess } from './processes.js';

const execFileAsync = promisify(execFile);

export interface S3Target {
  endpoint: string; // e.g. 'http://127.0.0.1:41234'
  region: string; // 'us-east-1'
  accessKey: string;
  secretKey: string;
  /** runs radosgw-admin against this cluster (undefined when pointed at an external S3) */
  admin?: (args: string[]) => Promise<string>;
}

/** The one SSE-KMS key the test cluster's KMS (the `testing` backend) knows. */
export const KMS_TEST_KEY_ID = 'chango-test-kms-key';

export interface RgwCluster extends S3Target {
  /** a second gateway on the same cluster with stock SSE policy: refuses SSE headers over plain HTTP */
  strictSse: S3Target;
  /** Process ids of the cluster's daemons (mon, OSD, gateways); none for an external endpoint. */
  daemonPids(): number[];
  stop(): Promise<void>;
}

const REGION = 'us-east-1';
const START_TIMEOUT_MS = 60_000;
const COMMAND_TIMEOUT_MS = 30_000;
const REQUIRED_BINARIES = ['monmaptool', 'ceph-mon', 'ceph-osd', 'ceph', 'radosgw', 'radosgw-admin', 'setpriv'];

/**
 * Starts (or reuses, within one test process) the cluster. Honours CHANGO_TEST_S3_ENDPOINT,
 * CHANGO_TEST_S3_REGION, CHANGO_TEST_S3_ACCESS_KEY, CHANGO_TEST_S3_SECRET_KEY: when
 * CHANGO_TEST_S3_ENDPOINT is set, nothing is started and the returned target points there
 * (strictSse then equals the same target, admin undefined, stop a no-op).
 */
export async function startRgw(): Promise<RgwCluster> {
  const external = process.env.CHANGO_TEST_S3_ENDPOINT;
  if (external) return externalTarget(external);

  users++;
  shared ??= Cluster.start().catch((err: unknown) => {
    shared = undefined;
    throw err;
  });
  let cluster: Cluster;
  try {
    cluster = await shared;
  } catch (err) {
    users--;
    throw err;
  }
  let stopped = false;
  return {
    ...cluster.main,
    strictSse: cluster.strict,
    daemonPids: () => cluster.daemonPids(),
    async stop() {
      if (stopped) return;
      stopped = true;
      users--;
      if (users === 0 && shared) {
        shared = undefined;
        await cluster.stop();
      }
    },
  };
}

/**
 * Creates a bucket with a random name (lowercase, DNS-safe) via the minio client, returns its name.
 * `objectLock`: created with S3 Object Lock enabled (and so versioned), as only a new bucket can be on
 * Ceph; RGW 16.2 supports it (see ../shared/DESIGN.md).
 */
export async function createTestBucket(target: S3Target, options: { objectLock?: boolean } = {}): Promise<string> {
  const name = `chango-test-${randomBytes(8).toString('hex')}`;
  await minioClient(target).makeBucket(name, target.region, options.objectLock ? { ObjectLocking: true } : {});
  return name;
}

// ---------------------------------------------------------------------------------------------

let shared: Promise<Cluster> | undefined;
let users = 0;

function externalTarget(endpoint: string): RgwCluster {
  const accessKey = process.env.CHANGO_TEST_S3_ACCESS_KEY;
  const secretKey = process.env.CHANGO_TEST_S3_SECRET_KEY;
  if (!accessKey || !secretKey) {
    throw new Error('CHANGO_TEST_S3_ENDPOINT is set: CHANGO_TEST_S3_ACCESS_KEY and CHANGO_TEST_S3_SECRET_KEY must be set too');
  }
  const target: S3Target = { endpoint, region: process.env.CHANGO_TEST_S3_REGION || REGION, accessKey, secretKey };
  return { ...target, strictSse: target, daemonPids: () => [], stop: async () => {} };
}

/** A path-style minio client for `target`, independent of the service's own S3 code; `overrides` replace options (e.g. a wrong secret). */
export function minioClient(target: S3Target, overrides: Partial<Minio.ClientOptions> = {}): Minio.Client {
  const url = new URL(target.endpoint);
  const useSSL = url.protocol === 'https:';
  return new Minio.Client({
    endPoint: url.hostname,
    port: url.port ? Number(url.port) : useSSL ? 443 : 80,
    useSSL,
    region: target.region,
    accessKey: target.accessKey,
    secretKey: target.secretKey,
    pathStyle: true,
    ...overrides,
  });
}

const ALNUM_UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const ALNUM = `${ALNUM_UPPER}abcdefghijklmnopqrstuvwxyz`;
function randomString(alphabet: string, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet.charAt(randomInt(alphabet.length));
  return out;
}


async function missingBinaries(): Promise<string[]> {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  const missing: string[] = [];
  for (const bin of REQUIRED_BINARIES) {
    let found = false;
    for (const dir of dirs) {
      try {
        await access(join(dir, bin), constants.X_OK);
        found = true;
        break;
      } catch {
        // not in this dir
      }
    }
    if (!found) missing.push(bin);
  }
  return missing;
}

/** The last `lines` log lines of `path` (timestamped lines only: skips rocksdb's multi-line stats dumps). */
async function tail(path: string, lines = 30): Promise<string> {
  try {
    const text = (await readFile(path, 'utf8')).split('\n').filter((l) => /^\d{4}-\d\d-\d\dT/.test(l));
    return text.slice(-lines).join('\n');
  } catch {
    return '(no file)';
  }
}

interface Daemon {
  name: string; // ceph entity name, e.g. 'mon.a', 'client.rgw.main'
  child: ChildProcess;
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
}

/** PIDs of every daemon this process started and has not seen exit: the exit hook kills them. */
const livePids = new Set<number>();
const liveDirs = new Set<string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pid of livePids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const dir of liveDirs) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // best effort
      }
    }
  });
}

const DIR_PREFIX = 'chango-rgw-';
const OWNER_FILE = 'owner.pid';

/** Removes cluster dirs left by test processes that were SIGKILLed (their daemons died with them). */
async function sweepStaleDirs(): Promise<void> {
  let names: string[];
  try {
    names = (await readdir(tmpdir())).filter((n) => n.startsWith(DIR_PREFIX));
  } catch {
    return;
  }
  for (const name of names) {
    const dir = join(tmpdir(), name);
    let owner: number;
    try {
      owner = Number((await readFile(join(dir, OWNER_FILE), 'utf8')).trim());
    } catch {
      continue; // not ours to judge (or still being created)
    }
    if (!Number.isInteger(owner) || owner <= 0 || owner === process.pid || isProcessRunning(owner)) continue;
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}

class Cluster {
  private readonly daemons: Daemon[] = [];
  private started = false;
  private stopping = false;
  /** Rejects when a daemon exits during start-up, so no start-up step waits out its timeout. */
  private readonly diedDuringStart: Promise<never>;
  private reportDeath: (err: Error) => void = () => {};
  main!: S3Target;
  strict!: S3Target;

  private constructor(
    private readonly dir: string,
    private readonly conf: string,
  ) {
    this.diedDuringStart = new Promise<never>((_, reject) => (this.reportDeath = reject));
    this.diedDuringStart.catch(() => {});
  }

  daemonPids(): number[] {
    return this.daemons.filter((d) => d.exit === undefined && d.child.pid !== undefined).map((d) => d.child.pid!);
  }

  static async start(): Promise<Cluster> {
    const missing = await missingBinaries();
    if (missing.length > 0) {
      throw new Error(`Ceph is not installed (missing ${missing.join(', ')}): run bash scripts/debian-deps.sh`);
    }
    installExitHook();
    await sweepStaleDirs();
    const dir = await mkdtemp(join(tmpdir(), DIR_PREFIX));
    liveDirs.add(dir);
    await writeFile(join(dir, OWNER_FILE), `${process.pid}\n`);
    const cluster = new Cluster(dir, join(dir, 'ceph.conf'));
    const deadline = Date.now() + START_TIMEOUT_MS;
    try {
      await cluster.bringUp(deadline);
      cluster.started = true;
      return cluster;
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }

  private async bringUp(deadline: number): Promise<void> {
    const { dir, conf } = this;
    const taken = new Set<number>();
    const monPort = await freeLoopbackPort(taken);
    const mainPort = await freeLoopbackPort(taken);
    const strictPort = await freeLoopbackPort(taken);
    const fsid = randomUUID();
    const osdUuid = randomUUID();
    for (const sub of ['run', 'log', 'mon.a', 'osd.0', 'rgw']) await mkdir(join(dir, sub));
    await writeFile(conf, cephConf({ dir, fsid, monPort, mainPort, strictPort, key: randomBytes(32).toString('base64'), kmsKey: randomBytes(32).toString('base64') }));

    const monmap = join(dir, 'monmap');
    await this.run('monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, monmap], deadline);
    await this.run('ceph-mon', ['-c', conf, '--mkfs', '-i', 'a', '--monmap', monmap], deadline);
    await this.spawnDaemon('mon.a', 'ceph-mon', ['-c', conf, '-i', 'a', '-f']);

    // Registers osd.0 (this is also the wait for the mon: the CLI retries until it connects).
    const connectTimeout = String(Math.max(1, Math.ceil((deadline - Date.now()) / 1000)));
    await this.run('ceph', ['-c', conf, '--connect-timeout', connectTimeout, 'osd', 'new', osdUuid, '0'], deadline);
    await this.run('ceph-osd', ['-c', conf, '-i', '0', '--mkfs', '--osd-uuid', osdUuid], deadline);
    await this.spawnDaemon('osd.0', 'ceph-osd', ['-c', conf, '-i', '0', '-f']);
    // radosgw waits for the OSD itself. (Starting it before the OSD exists makes start-up ~6 s
    // instead of ~1.5 s: its first writes back off while the PGs have nowhere to go.)
    await this.spawnDaemon('client.rgw.main', 'radosgw', ['-c', conf, '-n', 'client.rgw.main', '-f']);
    await this.waitForHttp(mainPort, deadline);

    // The strict gateway starts only once the main one serves, so the two never race to create
    // the default zone and pools; the user is made meanwhile (it lives in the shared zone).
    const accessKey = randomString(ALNUM_UPPER, 20);
    const secretKey = randomString(ALNUM, 40);
    const admin = (args: string[]) => this.admin(args);
    await Promise.all([
      this.spawnDaemon('client.rgw.strict', 'radosgw', ['-c', conf, '-n', 'client.rgw.strict', '-f']).then(() =>
        this.waitForHttp(strictPort, deadline),
      ),
      admin(['user', 'create', '--uid', 'chango-test', '--display-name', 'chango test', '--access-key', accessKey, '--secret-key', secretKey]),
    ]);
    this.main = { endpoint: `http://127.0.0.1:${mainPort}`, region: REGION, accessKey, secretKey, admin };
    this.strict = { endpoint: `http://127.0.0.1:${strictPort}`, region: REGION, accessKey, secretKey, admin };
  }

  private async admin(args: string[]): Promise<string> {
    if (this.stopping) throw new Error('radosgw-admin: the RGW test cluster is stopped');
    return this.run('radosgw-admin', ['-c', this.conf, ...args], Date.now() + COMMAND_TIMEOUT_MS);
  }

  /** Runs a command to completion (bounded by `deadline`); its failure carries its output and the daemons' state. */
  private async run(cmd: string, args: string[], deadline: number): Promise<string> {
    const timeout = Math.max(1000, deadline - Date.now());
    const pending = execFileAsync(cmd, args, { timeout, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 });
    pending.catch(() => {});
    try {
      const { stdout } = await (this.started ? pending : Promise.race([pending, this.diedDuringStart]));
      return stdout;
    } catch (err) {
      pending.child.kill('SIGKILL');
      const e = err as { stdout?: string; stderr?: string; killed?: boolean; message?: string };
      const why = e.killed ? `timed out after ${timeout} ms` : (e.message ?? String(err));
      throw new Error(`${cmd} ${args.join(' ')}: ${why}\n${e.stderr ?? ''}${e.stdout ?? ''}${await this.deadDaemonsReport()}`);
    }
  }

  private async spawnDaemon(name: string, cmd: string, args: string[]): Promise<void> {
    const child = spawnTiedToThisProcess(cmd, args, join(this.dir, 'log', `${name}.out`));
    const daemon: Daemon = { name, child, exit: undefined };
    this.daemons.push(daemon);
    if (child.pid !== undefined) livePids.add(child.pid);
    child.on('error', (err) => {
      daemon.exit ??= { code: -1, signal: null };
      process.stderr.write(`RGW test cluster: cannot start ${cmd}: ${err.message}\n`);
    });
    child.on('exit', (code, signal) => {
      daemon.exit = { code, signal };
      if (child.pid !== undefined) livePids.delete(child.pid);
      // During start-up the failure is thrown with this tail; afterwards, say it loudly here.
      if (!this.started && !this.stopping) this.reportDeath(new Error(`${name} exited (code ${code}, signal ${signal})`));
      if (this.started && !this.stopping) {
        void this.logTail(name).then((text) =>
          process.stderr.write(`RGW test cluster: ${name} (pid ${child.pid}) died (code ${code}, signal ${signal}):\n${text}\n`),
        );
      }
    });
  }

  private async logTail(name: string): Promise<string> {
    const log = join(this.dir, 'log', `${name}.log`);
    const out = join(this.dir, 'log', `${name}.out`);
    return `--- ${log} (tail) ---\n${await tail(log)}\n--- ${out} (tail) ---\n${await tail(out, 15)}`;
  }

  private async deadDaemonsReport(): Promise<string> {
    const dead = this.daemons.filter((d) => d.exit);
    if (dead.length === 0) return '';
    const parts = await Promise.all(
      dead.map(async (d) => `\n${d.name} exited (code ${d.exit?.code}, signal ${d.exit?.signal}):\n${await this.logTail(d.name)}`),
    );
    return parts.join('\n');
  }

  private async waitForHttp(port: number, deadline: number): Promise<void> {
    for (;;) {
      const dead = this.daemons.filter((d) => d.exit);
      if (dead.length > 0) {
        throw new Error(`RGW test cluster: a daemon died during start-up${await this.deadDaemonsReport()}`);
      }
      if (await httpAnswers(port)) return;
      if (Date.now() > deadline) {
        const gateway = this.daemons[this.daemons.length - 1];
        const logs = gateway ? await this.logTail(gateway.name) : '';
        throw new Error(`RGW test cluster: radosgw on 127.0.0.1:${port} did not answer within ${START_TIMEOUT_MS} ms\n${logs}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Kills every daemon (SIGKILL: the cluster is thrown away) and removes its directory. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.daemons.map(async (d) => {
        if (d.exit) return;
        const exited = new Promise<void>((resolve) => d.child.once('exit', () => resolve()));
        d.child.kill('SIGKILL');
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 10_000)))]);
        clearTimeout(timer);
      }),
    );
    await rm(this.dir, { recursive: true, force: true });
    liveDirs.delete(this.dir);
  }
}

function httpAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', method: 'GET', agent: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/**
 * RAM the OSD may fill (memstore). 1 GiB by default; CHANGO_TEST_RGW_MEMSTORE_MIB raises it for
 * benchmarks with large archives (deleted objects are only reclaimed by RGW's garbage collector later).
 */
function memstoreBytes(): number {
  const mib = Number(process.env.CHANGO_TEST_RGW_MEMSTORE_MIB ?? 1024);
  if (!Number.isInteger(mib) || mib < 256) throw new Error('CHANGO_TEST_RGW_MEMSTORE_MIB must be a whole number of MiB, at least 256');
  return mib * 1024 * 1024;
}

function cephConf(o: { dir: string; fsid: string; monPort: number; mainPort: number; strictPort: number; key: string; kmsKey: string }): string {
  const d = o.dir;
  return `[global]
fsid = ${o.fsid}
mon host = v2:127.0.0.1:${o.monPort}
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms mon client mode = crc secure
ms bind retry count = 2
ms bind retry delay = 1
auth cluster required = none
auth service required = none
auth client required = none
keyring = /dev/null
run dir = ${d}/run
admin socket = ${d}/run/$name.asok
pid file = ${d}/run/$name.pid
log file = ${d}/log/$name.log
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
paxos propose interval = 0.01

[mon]
mon data = ${d}/mon.$id
mon cluster log file = ${d}/log/cluster.log

[osd]
osd data = ${d}/osd.$id
osd objectstore = memstore
memstore device bytes = ${memstoreBytes()}

[client]
rgw data = ${d}/rgw
rgw init timeout = 60
rgw thread pool size = 32
rgw dynamic resharding = false
rgw crypt default encryption key = ${o.key}
rgw crypt s3 kms backend = testing
rgw crypt s3 kms encryption keys = ${KMS_TEST_KEY_ID}=${o.kmsKey}

[client.rgw.main]
rgw frontends = beast endpoint=127.0.0.1:${o.mainPort}
rgw crypt require ssl = false

[client.rgw.strict]
rgw frontends = beast endpoint=127.0.0.1:${o.strictPort}
rgw crypt require ssl = true
`;
}
