/**
 * The Docker deployment (Dockerfile, docker-compose.yml, deploy/) checked without a Docker
 * engine: what every file names must exist, agree with the other files, and be what the code
 * reads. Nothing here builds or starts an image.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { basename, dirname, join, normalize, posix } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { authenticate, parseTokensFile } from '@chango/security';
import { loadRootSecret } from '@chango/state';
import { tempDir } from '../../testkit/fixtures.js';
import { SAFETY_NET_MS } from '../../testkit/liveness.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const repoPath = (relative: string): string => join(ROOT, relative);
const read = (relative: string): string => readFileSync(repoPath(relative), 'utf8');

/** Host folders mounted by compose whose contents other files own (rules, dashboard). */
const MOUNTED_FOR_OTHERS = new Set(['deploy/prometheus/rules', 'deploy/grafana/dashboards']);

interface ComposeService {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  volumes?: (string | { type?: string; source?: string; target?: string })[];
  secrets?: (string | { source: string; target?: string })[];
  ports?: (string | number | { target?: number; published?: string | number })[];
}
interface Compose {
  version?: unknown;
  services: Record<string, ComposeService>;
  secrets?: Record<string, { file?: string }>;
  volumes?: Record<string, unknown>;
}

function loadCompose(): Compose {
  const compose = parse(read('docker-compose.yml'), { merge: true }) as Compose;
  assert.equal(typeof compose, 'object');
  assert.ok(compose.services && typeof compose.services === 'object', 'docker-compose.yml has no services');
  return compose;
}

function service(compose: Compose, name: string): ComposeService {
  const found = compose.services[name];
  assert.ok(found, `docker-compose.yml has no service ${name}`);
  return found;
}

function environment(svc: ComposeService): Map<string, string> {
  const env = new Map<string, string>();
  if (Array.isArray(svc.environment)) {
    for (const item of svc.environment) {
      const eq = item.indexOf('=');
      env.set(eq < 0 ? item : item.slice(0, eq), eq < 0 ? '' : item.slice(eq + 1));
    }
  } else {
    for (const [key, value] of Object.entries(svc.environment ?? {})) env.set(key, value === null ? '' : String(value));
  }
  return env;
}

interface Mount {
  kind: 'bind' | 'volume';
  source: string;
  target: string;
}

function mounts(svc: ComposeService): Mount[] {
  return (svc.volumes ?? []).map((entry) => {
    if (typeof entry === 'string') {
      const [source = '', target = ''] = entry.split(':');
      return { kind: /^[./~]/.test(source) ? 'bind' : 'volume', source, target };
    }
    return { kind: entry.type === 'bind' ? 'bind' : 'volume', source: entry.source ?? '', target: entry.target ?? '' };
  });
}

/** A bind mount's host path, relative to the repo root (compose resolves it against the file's folder). */
function hostPath(source: string): string {
  return normalize(source).replace(/\/$/, '');
}

/** The secrets a service gets, as [top-level secret name, path in the container]. */
function serviceSecrets(svc: ComposeService): [string, string][] {
  return (svc.secrets ?? []).map((entry) => {
    if (typeof entry === 'string') return [entry, `/run/secrets/${entry}`];
    const target = entry.target ?? entry.source;
    return [entry.source, target.startsWith('/') ? target : `/run/secrets/${target}`];
  });
}

function commandOf(svc: ComposeService): string[] {
  if (Array.isArray(svc.command)) return svc.command;
  return (svc.command ?? '').split(/\s+/).filter(Boolean);
}

/** Names the code reads from the environment: `env.NAME` and `…Setting(env, 'NAME', …)`. */
function envNamesReadBy(files: string[]): Set<string> {
  const names = new Set<string>();
  for (const file of files) {
    const text = read(file);
    for (const m of text.matchAll(/\benv\.([A-Z][A-Z0-9_]*)\b/g)) names.add(m[1]!);
    for (const m of text.matchAll(/Setting\(\s*env\s*,\s*'([A-Z][A-Z0-9_]*)'/g)) names.add(m[1]!);
    // The shared settings schema (packages/contracts/src/settings.ts): one key per variable.
    for (const m of text.matchAll(/^\s+([A-Z][A-Z0-9_]*): (?:text|wholeNumber)\(/gm)) names.add(m[1]!);
  }
  return names;
}

const API_ENV_SOURCES = ['apps/api/src/config.ts', 'packages/contracts/src/settings.ts', 'packages/telemetry/src/logger.ts'];
const WORKER_ENV_SOURCES = ['apps/worker/src/config.ts', 'packages/contracts/src/settings.ts', 'packages/state/src/root-secret.ts', 'packages/telemetry/src/logger.ts'];

interface Instruction {
  keyword: string;
  args: string;
}

/** The Dockerfile's instructions, continuation lines joined, comments dropped. */
function dockerfile(): Instruction[] {
  const logical: string[] = [];
  let current = '';
  for (const raw of read('Dockerfile').split('\n')) {
    if (/^\s*#/.test(raw)) continue;
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      current += line.slice(0, -1) + ' ';
      continue;
    }
    current += line;
    if (current.trim() !== '') logical.push(current.trim());
    current = '';
  }
  return logical.map((line) => {
    const space = line.search(/\s/);
    return { keyword: line.slice(0, space).toUpperCase(), args: line.slice(space + 1).trim() };
  });
}

/** Where `tsc -b` puts the output of a workspace's `src/<file>.ts`: its tsconfig's outDir. */
function sourceOfBuiltFile(builtPath: string): string {
  const match = /^((?:apps|packages)\/[^/]+)\/(.+)\.js$/.exec(builtPath);
  assert.ok(match, `${builtPath} is not a file inside a workspace`);
  const [, workspace, inside] = match as unknown as [string, string, string];
  const tsconfig = JSON.parse(read(`${workspace}/tsconfig.json`)) as { compilerOptions?: { rootDir?: string; outDir?: string } };
  const outDir = posix.normalize(tsconfig.compilerOptions?.outDir ?? '');
  const rootDir = posix.normalize(tsconfig.compilerOptions?.rootDir ?? '');
  assert.ok(inside.startsWith(`${outDir}/`), `${builtPath} is not under ${workspace}'s outDir (${outDir})`);
  const rootReferences = (JSON.parse(read('tsconfig.json')) as { references: { path: string }[] }).references.map((r) => posix.normalize(r.path));
  assert.ok(rootReferences.includes(workspace), `the root tsconfig.json (npm run build = tsc -b) does not build ${workspace}`);
  return `${workspace}/${rootDir}/${inside.slice(outDir.length + 1)}.ts`;
}

test('docker-compose.yml parses, has the whole stack, and every service has an image or a build', () => {
  const compose = loadCompose();
  assert.equal(compose.version, undefined, 'the Compose spec has no version key');
  for (const name of ['redis', 'minio', 'minio-init', 'worker', 'api', 'prometheus', 'grafana']) service(compose, name);
  for (const [name, svc] of Object.entries(compose.services)) {
    assert.ok(svc.image || svc.build, `service ${name} has neither image nor build`);
    if (svc.build) {
      const context = typeof svc.build === 'string' ? svc.build : (svc.build.context ?? '.');
      const file = typeof svc.build === 'string' ? 'Dockerfile' : (svc.build.dockerfile ?? 'Dockerfile');
      assert.ok(existsSync(repoPath(join(context, file))), `service ${name} builds from ${join(context, file)}, which does not exist`);
    }
  }
  // The api and the worker run the one image this repo builds.
  assert.ok(service(compose, 'api').build && service(compose, 'worker').build);
  assert.equal(service(compose, 'api').image, service(compose, 'worker').image);
});

test('every host path compose mounts exists in the repo (or is the rules or dashboard folder), every named volume is declared', () => {
  const compose = loadCompose();
  const declaredVolumes = new Set(Object.keys(compose.volumes ?? {}));
  let binds = 0;
  for (const [name, svc] of Object.entries(compose.services)) {
    for (const mount of mounts(svc)) {
      assert.ok(mount.target.startsWith('/'), `service ${name} mounts ${mount.source} at a relative path`);
      if (mount.kind === 'volume') {
        assert.ok(declaredVolumes.has(mount.source), `service ${name} uses volume ${mount.source}, not declared under volumes:`);
        continue;
      }
      binds++;
      const host = hostPath(mount.source);
      assert.ok(!host.startsWith('..') && !host.startsWith('/'), `service ${name} mounts ${mount.source}, outside the repo`);
      assert.ok(existsSync(repoPath(host)) || MOUNTED_FOR_OTHERS.has(host), `service ${name} mounts ${mount.source}, which is not in the repo`);
    }
  }
  assert.ok(binds >= 5, 'prometheus and grafana mount their configuration from deploy/');
});

test('the secrets compose mounts are git-ignored, named where the services look for them, and made by deploy/make-secrets.sh', () => {
  const compose = loadCompose();
  const declared = compose.secrets ?? {};
  const script = read('deploy/make-secrets.sh');
  const defaultDir = /CHANGO_SECRETS_DIR:-([^}]+)\}/.exec(script)?.[1];
  assert.ok(defaultDir, 'make-secrets.sh names its default folder');
  for (const [name, secret] of Object.entries(declared)) {
    assert.ok(secret.file, `secret ${name} is not file-based`);
    const file = hostPath(secret.file);
    const ignored = spawnSync('git', ['check-ignore', '-q', file], { cwd: ROOT }).status === 0;
    assert.ok(ignored, `${file} (a secret) is not git-ignored`);
    assert.equal(dirname(file), posix.normalize(defaultDir), `${file} is not where make-secrets.sh writes`);
    assert.match(script, new RegExp(`/${basename(file)}"`), `make-secrets.sh does not make ${basename(file)}`);
  }
  const fileVariables: [string, string][] = [
    ['worker', 'CHANGO_ROOT_SECRET_FILE'],
    ['api', 'CHANGO_API_TOKENS_FILE'],
  ];
  for (const [svcName, variable] of fileVariables) {
    const svc = service(compose, svcName);
    const path = environment(svc).get(variable);
    assert.ok(path, `${svcName} does not set ${variable}`);
    const mounted = serviceSecrets(svc).find(([, target]) => target === path);
    assert.ok(mounted, `${svcName}'s ${variable}=${path} is not one of its mounted secrets`);
    assert.ok(declared[mounted[0]], `${svcName} uses secret ${mounted[0]}, not declared under secrets:`);
  }
  // The inline secret would sit in the compose file and in `docker inspect`.
  assert.equal(environment(service(compose, 'worker')).has('CHANGO_ROOT_SECRET'), false);
});

test('every variable compose sets for the api and the worker is one the code reads, and the required ones are set', () => {
  const compose = loadCompose();
  const apiReads = envNamesReadBy(API_ENV_SOURCES);
  const workerReads = envNamesReadBy(WORKER_ENV_SOURCES);
  // The scan itself must see what the code reads, or every check below passes vacuously.
  for (const name of ['CHANGO_API_TOKENS_FILE', 'HOST', 'PORT', 'REDIS_URL', 'CHANGO_RUN_WAIT_MS']) assert.ok(apiReads.has(name), `scan missed ${name}`);
  for (const name of ['CHANGO_DATA_DIR', 'CHANGO_ROOT_SECRET_FILE', 'CHANGO_NODE_ID', 'REDIS_URL', 'CHANGO_GZIP_LEVEL']) {
    assert.ok(workerReads.has(name), `scan missed ${name}`);
  }
  const checks: [string, Set<string>][] = [
    ['api', apiReads],
    ['worker', workerReads],
  ];
  for (const [svcName, reads] of checks) {
    const env = environment(service(compose, svcName));
    assert.ok(env.size > 0, `${svcName} sets no variables`);
    for (const name of env.keys()) assert.ok(reads.has(name), `${svcName} sets ${name}, which its code never reads`);
  }
  const api = environment(service(compose, 'api'));
  assert.equal(api.get('HOST'), '0.0.0.0', 'the api listens on 127.0.0.1 by default, unreachable from other containers');
  assert.ok(api.get('CHANGO_API_TOKENS_FILE'), 'the api does not start without a tokens file');
  const worker = environment(service(compose, 'worker'));
  assert.ok(worker.get('CHANGO_ROOT_SECRET_FILE'), 'the worker does not start without the root secret');
  // Both talk to the compose Redis, by its service name.
  for (const env of [api, worker]) {
    const url = new URL(env.get('REDIS_URL') ?? '');
    assert.ok(compose.services[url.hostname], `REDIS_URL names ${url.hostname}, not a compose service`);
  }
  // The worker's data dir is the named volume.
  const dataDir = worker.get('CHANGO_DATA_DIR');
  assert.ok(mounts(service(compose, 'worker')).some((m) => m.kind === 'volume' && m.target === dataDir), 'CHANGO_DATA_DIR is not on a named volume');
});

test('prometheus.yml parses and scrapes the api service at the port it listens on; the rules folder is where it is mounted', () => {
  const compose = loadCompose();
  const config = parse(read('deploy/prometheus/prometheus.yml')) as {
    rule_files?: string[];
    scrape_configs?: { job_name: string; metrics_path?: string; scrape_interval?: string; static_configs?: { targets: string[] }[] }[];
  };
  const port = environment(service(compose, 'api')).get('PORT') ?? '8080';
  const targets = (config.scrape_configs ?? []).flatMap((job) =>
    (job.static_configs ?? []).flatMap((s) => s.targets.map((target) => ({ job, target }))),
  );
  const api = targets.find(({ target }) => target === `api:${port}`);
  assert.ok(api, `no scrape target api:${port} (targets: ${targets.map((t) => t.target).join(', ')})`);
  assert.equal(api.job.metrics_path ?? '/metrics', '/metrics');
  assert.equal(api.job.scrape_interval, '15s');
  assert.match(read('apps/api/src/routes/health.ts'), /\.get\('\/metrics'/, 'the api serves /metrics');
  for (const { target } of targets) {
    const host = target.split(':')[0] ?? '';
    assert.ok(compose.services[host], `scrape target ${target} is not a compose service`);
  }

  const prometheus = mounts(service(compose, 'prometheus'));
  const configMount = prometheus.find((m) => hostPath(m.source) === 'deploy/prometheus/prometheus.yml');
  assert.equal(configMount?.target, '/etc/prometheus/prometheus.yml', "prometheus.yml is not at the image's default config path");
  const rulesMount = prometheus.find((m) => hostPath(m.source) === 'deploy/prometheus/rules');
  assert.ok(rulesMount, 'deploy/prometheus/rules is not mounted');
  assert.ok(config.rule_files?.length, 'prometheus.yml loads no rules');
  for (const pattern of config.rule_files ?? []) {
    assert.equal(posix.dirname(pattern), rulesMount.target, `rule_files ${pattern} is not in the mounted rules folder`);
  }
});

test('promtool accepts prometheus.yml with the rules it loads in the container (scripts/debian-deps.sh installs promtool)', async (t) => {
  // The rules folder sits where compose mounts it; point rule_files at the repo's copy of it.
  const dir = await tempDir(t, 'chango-promtool');
  const config = read('deploy/prometheus/prometheus.yml').replaceAll('/etc/prometheus/rules/', `${repoPath('deploy/prometheus/rules')}/`);
  assert.notEqual(config, read('deploy/prometheus/prometheus.yml'), 'prometheus.yml does not load /etc/prometheus/rules/');
  const file = join(dir, 'prometheus.yml');
  await writeFile(file, config);
  const result = spawnSync('promtool', ['check', 'config', file], { encoding: 'utf8', timeout: SAFETY_NET_MS }); // a child run to completion: the safety net
  assert.equal(result.error, undefined, `promtool: ${String(result.error)} (install Debian's prometheus: bash scripts/debian-deps.sh)`);
  assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
  assert.match(result.stdout, /SUCCESS: \d+ rule(s)? found/, 'promtool checked no rules');
});

test('grafana provisions the prometheus service as datasource uid "prometheus" and reads the mounted dashboards folder', () => {
  const compose = loadCompose();
  const grafana = mounts(service(compose, 'grafana'));
  const targetOf = (source: string): string | undefined => grafana.find((m) => hostPath(m.source) === source)?.target;
  assert.equal(targetOf('deploy/grafana/provisioning/datasources'), '/etc/grafana/provisioning/datasources');
  assert.equal(targetOf('deploy/grafana/provisioning/dashboards'), '/etc/grafana/provisioning/dashboards');

  const datasources = parse(read('deploy/grafana/provisioning/datasources/prometheus.yml')) as {
    apiVersion: number;
    datasources: { uid: string; type: string; url: string }[];
  };
  assert.equal(datasources.apiVersion, 1);
  const prometheus = datasources.datasources.find((d) => d.uid === 'prometheus');
  assert.ok(prometheus, 'no datasource with uid prometheus');
  assert.equal(prometheus.type, 'prometheus');
  const url = new URL(prometheus.url);
  assert.ok(compose.services[url.hostname], `datasource url ${prometheus.url} is not a compose service`);
  assert.equal(url.hostname, 'prometheus');
  assert.equal(url.port, '9090');

  const providers = parse(read('deploy/grafana/provisioning/dashboards/chango-backup.yml')) as {
    apiVersion: number;
    providers: { type: string; options: { path: string } }[];
  };
  assert.equal(providers.apiVersion, 1);
  const provider = providers.providers.find((p) => p.type === 'file');
  assert.ok(provider, 'no file dashboard provider');
  assert.equal(provider.options.path, targetOf('deploy/grafana/dashboards'), 'the provider reads a folder the dashboards are not mounted at');
});

test('the Dockerfile copies only what exists and is in the build context, builds every workspace, and runs as chango', () => {
  const instructions = dockerfile();
  const ignore = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const excluded = (path: string): boolean =>
    ignore.some((p) => {
      const plain = p.replace(/^\*\*\//, '').replace(/\/$/, '');
      return path === plain || path.startsWith(`${plain}/`) || (p.startsWith('**/') && path.split('/').includes(plain));
    });

  for (const path of ['.git', 'node_modules', 'apps/api/node_modules', 'apps/api/dist', 'packages/state/dist', '.demo', 'bench/out']) {
    assert.ok(excluded(path), `.dockerignore does not exclude ${path}`);
  }
  const copiedPackageJsons = new Set<string>();
  let copies = 0;
  for (const { keyword, args } of instructions) {
    if (keyword !== 'COPY' && keyword !== 'ADD') continue;
    if (/--from=/.test(args)) continue;
    const words = args.split(/\s+/).filter((w) => !w.startsWith('--'));
    const sources = words.slice(0, -1);
    assert.ok(sources.length > 0, `COPY ${args} has no source`);
    for (const source of sources) {
      copies++;
      const path = posix.normalize(source).replace(/\/$/, '');
      assert.ok(existsSync(repoPath(path)), `COPY source ${source} does not exist`);
      assert.equal(excluded(path), false, `COPY source ${source} is excluded by .dockerignore`);
      if (path.endsWith('/package.json')) copiedPackageJsons.add(path);
    }
  }
  assert.ok(copies > 0, 'the Dockerfile copies nothing from the context');
  const workspaces = (JSON.parse(read('package.json')) as { workspaces: string[] }).workspaces;
  for (const workspace of workspaces) {
    assert.ok(copiedPackageJsons.has(`${workspace}/package.json`), `the Dockerfile does not copy ${workspace}/package.json before npm ci`);
  }

  const runs = instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
  assert.ok(runs.some((r) => /npm ci\b/.test(r) && !/--omit=dev/.test(r)), 'the build stage does not npm ci');
  assert.ok(runs.some((r) => /npm run build\b/.test(r)), 'the build stage does not npm run build');
  assert.ok(runs.some((r) => /npm ci\b.*--omit=dev/.test(r)), 'the runtime dependencies are not installed with --omit=dev');
  // --ignore-scripts is the project's allowScripts policy only while that policy allows nothing.
  for (const run of runs.filter((r) => /npm ci\b/.test(r))) assert.match(run, /--ignore-scripts/, `${run} would run install scripts`);
  const allowScripts = (JSON.parse(read('package.json')) as { allowScripts?: Record<string, boolean> }).allowScripts ?? {};
  for (const [pkg, allowed] of Object.entries(allowScripts)) {
    assert.equal(allowed, false, `package.json allows ${pkg}'s install script, which the image's --ignore-scripts would deny`);
  }

  const froms = instructions.filter((i) => i.keyword === 'FROM');
  assert.ok(froms.length >= 2, 'not a multi-stage build');
  const nodeImage = instructions.find((i) => i.keyword === 'ARG' && i.args.startsWith('NODE_IMAGE='))?.args.split('=')[1];
  for (const from of froms) {
    const image = from.args.split(/\s+/)[0]!.replace('${NODE_IMAGE}', nodeImage ?? '');
    assert.equal(image, 'node:20-bookworm-slim', `stage ${from.args} is not node:20-bookworm-slim`);
  }
  const lastFrom = instructions.lastIndexOf(froms[froms.length - 1]!);
  const finalStage = instructions.slice(lastFrom);
  assert.equal(finalStage.filter((i) => i.keyword === 'USER').at(-1)?.args, 'chango', 'the runtime stage does not run as chango');
  assert.ok(!finalStage.some((i) => i.keyword === 'COPY' && !/--from=/.test(i.args)), 'the runtime stage copies from the context, not from the build');
});

test('the commands the image and compose run are files `npm run build` produces', () => {
  const compose = loadCompose();
  const cmd = dockerfile().filter((i) => i.keyword === 'CMD').at(-1);
  assert.ok(cmd, 'the Dockerfile has no CMD');
  const commands: [string, string[]][] = [['Dockerfile CMD', JSON.parse(cmd.args) as string[]]];
  for (const name of ['api', 'worker']) commands.push([`compose ${name}`, commandOf(service(compose, name))]);
  const built = new Set<string>();
  for (const [where, command] of commands) {
    assert.equal(command[0], 'node', `${where} does not run node`);
    const script = command[1] ?? '';
    const source = sourceOfBuiltFile(script);
    assert.ok(existsSync(repoPath(source)), `${where} runs ${script}, but ${source} does not exist`);
    built.add(script);
  }
  assert.ok(built.has('apps/api/dist/main.js') && built.has('apps/worker/dist/main.js'));
  // The CLI the README and make-secrets.sh run in the image is the package's bin.
  const bin = (JSON.parse(read('package.json')) as { bin: Record<string, string> }).bin['chango-backup'];
  assert.equal(bin, 'apps/cli/dist/main.js');
  assert.ok(existsSync(repoPath(sourceOfBuiltFile(bin))));
  assert.match(read('deploy/make-secrets.sh'), /node apps\/cli\/dist\/main\.js token new/);
});

test('the files the code finds next to itself at run time (new URL(…, import.meta.url)) exist and go into the image', () => {
  const workspaces = (JSON.parse(read('package.json')) as { workspaces: string[] }).workspaces;
  const assembly = dockerfile().find((i) => i.keyword === 'RUN' && /npm run build\b/.test(i.args))?.args ?? '';
  // The image keeps whole workspaces minus their TypeScript sources: name exactly what is dropped.
  assert.match(assembly, /cp -R "\$ws" "\/out\/\$ws"/, 'the build stage does not copy whole workspaces into /out');
  const removed = [...assembly.matchAll(/"\/out\/\$ws\/?([^"]*)"([^\s;&]*)/g)].map((m) => `${m[1]}${m[2]}`.replace(/^\//, '')).filter(Boolean);
  assert.deepEqual(removed.sort(), ['*.tsbuildinfo', 'src', 'tsconfig.json']);

  let found = 0;
  for (const workspace of workspaces) {
    const list = execFileSync('find', [repoPath(`${workspace}/src`), '-name', '*.ts'], { encoding: 'utf8' }).split('\n').filter(Boolean);
    for (const file of list) {
      for (const m of readFileSync(file, 'utf8').matchAll(/new URL\(\s*'([^']+)'\s*,\s*import\.meta\.url\s*\)/g)) {
        found++;
        const relative = m[1]!;
        const fromSrc = posix.normalize(posix.join(posix.dirname(file.slice(ROOT.length)), relative));
        const inSrc = `${workspace}/src/`;
        if (fromSrc.startsWith(inSrc) || `${fromSrc}/` === inSrc) {
          // Next to the code: its compiled sibling, built from a .ts source.
          assert.ok(/\.js$/.test(fromSrc) && existsSync(repoPath(fromSrc.replace(/\.js$/, '.ts'))), `${file} expects ${relative} beside it`);
          continue;
        }
        const path = fromSrc.replace(/\/$/, '');
        assert.ok(path.startsWith(`${workspace}/`), `${file} reads ${relative}, outside its workspace (the image has workspaces only)`);
        assert.ok(existsSync(repoPath(path)), `${file} reads ${relative}: ${path} does not exist`);
        const top = path.slice(workspace.length + 1).split('/')[0];
        assert.ok(!['src', 'tsconfig.json'].includes(top ?? '') && !path.endsWith('.tsbuildinfo'), `${path} is dropped from the image`);
        const ignore = read('.dockerignore').split('\n').map((l) => l.trim().replace(/^\*\*\//, ''));
        assert.ok(!path.split('/').some((part) => ignore.includes(part)), `${path} is excluded by .dockerignore`);
      }
    }
  }
  assert.ok(found >= 2, 'the scan found none of the known run-time lookups (worker package.json, drill child)');
});

test('make-secrets.sh is valid bash and makes a root secret and a tokens file the services accept', async (t) => {
  execFileSync('bash', ['-n', repoPath('deploy/make-secrets.sh')]);
  assert.ok(
    existsSync(repoPath('apps/cli/dist/main.js')),
    'make-secrets.sh runs the built CLI: npm run build first (npm test does)',
  );
  const dir = await tempDir(t, 'chango-secrets');
  const run = () =>
    spawnSync('bash', [repoPath('deploy/make-secrets.sh')], {
      cwd: ROOT,
      env: { ...process.env, CHANGO_SECRETS_DIR: dir, CHANGO_TOKEN_NAME: 'compose-test' },
      encoding: 'utf8',
      timeout: SAFETY_NET_MS, // a child run to completion: the safety net
    });
  const first = run();
  assert.equal(first.status, 0, first.stderr);
  const rootSecretFile = join(dir, 'root-secret');
  const tokensFile = join(dir, 'api-tokens');
  for (const file of [rootSecretFile, tokensFile]) assert.equal(statSync(file).mode & 0o777, 0o600, `${file} is not 0600`);

  const secret = readFileSync(rootSecretFile, 'utf8');
  assert.match(secret, /^[A-Za-z0-9+/]{64}\n$/, 'the root secret is not one line of base64');
  assert.equal(Buffer.from(secret.trim(), 'base64').length, 48);
  assert.equal(loadRootSecret({ CHANGO_ROOT_SECRET_FILE: rootSecretFile }).toString(), secret.trim());

  const entries = parseTokensFile(readFileSync(tokensFile, 'utf8'), tokensFile);
  assert.deepEqual(entries.map((e) => [e.name, e.role]), [['compose-test', 'admin']]);
  const token = /admin token for the api \(shown once, keep it secret\): (\S+)/.exec(first.stdout)?.[1];
  assert.ok(token, 'the script does not print the token');
  assert.deepEqual(authenticate(entries, token), { name: 'compose-test', role: 'admin' });
  assert.equal(authenticate(entries, `${token}x`), undefined);

  // A second run keeps both: a new root secret would lock the worker out of its stores.
  const second = run();
  assert.equal(second.status, 0, second.stderr);
  assert.equal(readFileSync(rootSecretFile, 'utf8'), secret);
  assert.equal(parseTokensFile(readFileSync(tokensFile, 'utf8'))[0]!.sha256.equals(entries[0]!.sha256), true);
  assert.doesNotMatch(second.stdout, /chb_/, 'a second run printed a token that is in no tokens file');
});

test("MinIO's demo KMS key is well formed, and the README's Docker Compose steps use the compose file's bucket and credentials", () => {
  const compose = loadCompose();
  const minio = environment(service(compose, 'minio'));
  const kms = /^([A-Za-z0-9_-]+):([A-Za-z0-9+/=]+)$/.exec(minio.get('MINIO_KMS_SECRET_KEY') ?? '');
  assert.ok(kms, 'MINIO_KMS_SECRET_KEY is not <name>:<base64>');
  assert.equal(Buffer.from(kms[2]!, 'base64').length, 32, 'the KMS key is not 32 bytes');
  assert.match(read('docker-compose.yml'), /DEMO KMS key/);

  const init = commandOf(service(compose, 'minio-init')).join(' ');
  const bucket = /mc mb --ignore-existing \w+\/([a-z0-9.-]+)/.exec(init)?.[1];
  assert.equal(bucket, 'chango-backups');
  const init_env = environment(service(compose, 'minio-init'));
  assert.equal(init_env.get('MINIO_ROOT_USER'), minio.get('MINIO_ROOT_USER'));
  assert.equal(init_env.get('MINIO_ROOT_PASSWORD'), minio.get('MINIO_ROOT_PASSWORD'));

  const readme = read('README.md');
  const start = readme.indexOf('\n## Docker Compose\n');
  assert.ok(start >= 0, 'README.md has no Docker Compose section');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  assert.match(section, /bash deploy\/make-secrets\.sh/);
  assert.match(section, /docker compose up -d/);
  assert.ok(section.includes(`"bucket": "${bucket}"`), 'the README puts another bucket');
  assert.ok(section.includes(`"accessKey": "${minio.get('MINIO_ROOT_USER')}"`), "the README's accessKey is not MinIO's");
  assert.ok(section.includes(`"secretKey": "${minio.get('MINIO_ROOT_PASSWORD')}"`), "the README's secretKey is not MinIO's");
  assert.ok(section.includes('"endpoint": "http://minio:9000"') && compose.services.minio, 'the README does not name the minio service as endpoint');
  assert.ok(section.includes('"sse": "AES256"'));
});
