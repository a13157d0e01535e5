import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import SwaggerParser from '@apidevtools/swagger-parser';
import { createLogger } from '@chango/telemetry';
import type { JobView } from '../../apps/api/src/job-view.js';
import { createApp } from '../../apps/api/src/app.js';
import { readApiConfig } from '../../apps/api/src/config.js';
import { RedisLink } from '../../apps/api/src/redis-link.js';
import { createTestBucket, startRgw, type RgwCluster } from '../../testkit/local-rgw.js';
import { SuiteScope, tempDir, waitFor, type CleanupScope } from '../../testkit/fixtures.js';
import { SAFETY_NET_MS } from '../../testkit/liveness.js';
import { REDIS_URL, Stack, type ApiResponse } from '../../testkit/stack.js';
import { ajv, componentValidator, document, DOCUMENT_TEXT, documentedOperations, resolveResponse, validatorFor, type Json } from '../../testkit/openapi-document.js';

/**
 * apps/api/openapi.yaml cannot drift from the api: it is a valid OpenAPI 3.1
 * document, it names exactly the routes the Express app serves, and every
 * answer of the real running stack (worker, api, Redis, Ceph RGW as S3) below
 * validates, strictly, against the schema documented for its status code.
 */

/** `METHOD /path status` of every checked answer, so the suite can tell what it covered. */
const covered = new Set<string>();

/**
 * Asserts that an answer of the running api is documented: its status code is
 * listed for the operation, its media type is, and its body validates against
 * that schema (closed objects: an extra field fails).
 */
function assertDocumented(method: string, docPath: string, response: ApiResponse<unknown>): void {
  const operation = document.paths[docPath]?.[method.toLowerCase()];
  assert.ok(operation, `${method} ${docPath} is documented`);
  const documented = operation.responses[String(response.status)];
  assert.ok(documented, `${method} ${docPath} answered ${response.status}, which the document does not list for it: ${JSON.stringify(response.body)}`);
  const mediaType = (response.headers.get('content-type') ?? '').split(';')[0]!.trim();
  const content = resolveResponse(documented).content?.[mediaType];
  assert.ok(content?.schema, `${method} ${docPath} ${response.status} answered ${mediaType}, which the document does not list`);
  const validate = validatorFor(content.schema);
  assert.ok(validate(response.body), `${method} ${docPath} ${response.status} does not match the document: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(response.body, null, 2)}`);
  covered.add(`${method} ${docPath} ${response.status}`);
}

function assertRequestBodyValid(method: string, docPath: string, body: unknown, valid: boolean): void {
  const schema = document.paths[docPath]?.[method.toLowerCase()]?.requestBody?.content?.['application/json']?.schema;
  assert.ok(schema, `${method} ${docPath} documents its JSON body`);
  const validate = validatorFor(schema);
  assert.equal(validate(body), valid, `${JSON.stringify(body)}: ${ajv.errorsText(validate.errors)}`);
}

// ---- the Express app's routes ---------------------------------------------------------

interface StackLayer {
  rawPath?: unknown;
  route?: { path: unknown; methods: Record<string, boolean> };
  handle?: { stack?: StackLayer[] };
}

/** Every route the Express app registers, as `METHOD /path` with `:param` turned into `{param}`. */
function registeredRoutes(layers: StackLayer[], mount = ''): string[] {
  return layers.flatMap((layer) => {
    if (layer.route) {
      assert.equal(typeof layer.route.path, 'string', 'routes have one string path');
      const path = (mount + String(layer.route.path)).replace(/:([A-Za-z0-9_]+)/g, '{$1}');
      return Object.keys(layer.route.methods).map((m) => `${m.toUpperCase()} ${path}`);
    }
    // A router mounted with app.use(path, router) serves its routes below that path.
    const here = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? mount + layer.rawPath : mount;
    return layer.handle?.stack ? registeredRoutes(layer.handle.stack, here) : [];
  });
}

describe('the OpenAPI document (apps/api/openapi.yaml)', () => {
  test('is a valid OpenAPI 3.1 document', async () => {
    assert.equal(document.openapi, '3.1.0');
    await SwaggerParser.validate(structuredClone(document) as never);
  });

  test('its schemas compile with ajv (JSON Schema 2020-12, strict) and every object is closed', () => {
    const schemas = document.components.schemas;
    for (const name of Object.keys(schemas)) componentValidator(name);

    // An object that lists properties must refuse the others: additionalProperties: false, or
    // (for the *Fields building blocks) be composed only into an allOf closed by unevaluatedProperties: false.
    const problems: string[] = [];
    const walk = (node: unknown, where: string, parent?: Json, viaAllOf = false): void => {
      if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${where}/${i}`, parent, viaAllOf));
      if (!node || typeof node !== 'object') return;
      const schema = node as Json;
      if (typeof schema.$ref === 'string' && schema.$ref.endsWith('Fields') && !(viaAllOf && parent?.unevaluatedProperties === false)) {
        problems.push(`${where} uses ${schema.$ref} outside an allOf closed by unevaluatedProperties: false`);
      }
      const isFields = /^#\/components\/schemas\/[A-Za-z]+Fields$/.test(where);
      if (schema.properties && !isFields && schema.additionalProperties !== false && schema.unevaluatedProperties !== false) {
        problems.push(`${where} lists properties but does not refuse others`);
      }
      for (const [key, inner] of Object.entries(schema)) {
        if (key === 'allOf') walk(inner, `${where}/allOf`, schema, true);
        else if (key === 'properties' && inner && typeof inner === 'object') {
          for (const [prop, propSchema] of Object.entries(inner)) walk(propSchema, `${where}/properties/${prop}`, schema);
        } else if (inner && typeof inner === 'object') walk(inner, `${where}/${key}`, schema);
      }
    };
    for (const [name, schema] of Object.entries(schemas)) walk(schema, `#/components/schemas/${name}`);
    walk(document.paths, '#/paths');
    assert.deepEqual(problems, []);
  });

  test('names exactly the routes the Express app registers', async () => {
    const log = createLogger('openapi-test', { level: 'silent' });
    const link = new RedisLink({ redisUrl: REDIS_URL }, `chango-openapi-routes-${process.pid}`, log);
    try {
      const config = readApiConfig({ CHANGO_API_TOKENS_FILE: '/nonexistent', REDIS_URL, CHANGO_QUEUE_PREFIX: link.prefix, PORT: '0' });
      const app = createApp({ config, link, tokens: () => [], log });
      const routes = registeredRoutes((app as unknown as { router: { stack: StackLayer[] } }).router.stack);
      assert.ok(routes.length >= 12, routes.join('\n'));
      assert.deepEqual([...new Set(routes)].sort(), documentedOperations().sort());
    } finally {
      await link.close();
    }
  });

  test('a closed schema refuses a field it does not list, at the top and nested', () => {
    const destination = {
      endpoint: 'http://127.0.0.1:9',
      region: 'us-east-1',
      bucket: 'chango-backups',
      prefix: 'prod/',
      accessKey: 'AK',
      schedule: null,
      timezone: 'UTC',
      sse: 'AES256',
      retention: { keepLast: 3 },
      addressing: 'path',
      encryption: { recipients: ['age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p'] },
      objectLock: null,
      copy: null,
      secretKeySet: true,
    };
    const publicDestination = componentValidator('PublicDestination');
    assert.equal(publicDestination(destination), true, ajv.errorsText(publicDestination.errors));
    assert.equal(publicDestination({ ...destination, secretKey: 'leaked' }), false, 'a secret key in the public config is refused');
    const { copy: _none, ...withoutCopy } = destination;
    assert.equal(publicDestination(withoutCopy), false, 'the public form always says whether there is a second copy');
    // A second copy, in its public form: an S3 copy says only that its secret is set.
    const s3Copy = { type: 's3', endpoint: 'https://offsite.example', region: 'us-east-1', bucket: 'chango-copies', prefix: 'copies/', accessKey: 'AK2', sse: 'AES256', retention: { keepLast: 5 }, addressing: 'path', secretKeySet: true };
    const directoryCopy = { type: 'directory', path: '/mnt/offline/chango', retention: null };
    for (const copy of [s3Copy, { ...s3Copy, objectLock: { mode: 'GOVERNANCE', days: 2 } }, directoryCopy]) {
      assert.equal(publicDestination({ ...destination, copy }), true, `${JSON.stringify(copy)}: ${ajv.errorsText(publicDestination.errors)}`);
    }
    assert.equal(publicDestination({ ...destination, copy: { ...s3Copy, secretKey: 'leaked' } }), false, "a copy's secret key in the public config is refused");
    assert.equal(publicDestination({ ...destination, copy: { ...directoryCopy, bucket: 'chango-copies' } }), false, 'a directory copy has no S3 fields');
    assert.equal(publicDestination({ ...destination, copy: { ...directoryCopy, type: 'nfs' } }), false);
    // In a PUT body the S3 copy's secret key is write-only: sent, never answered; secretKeySet is the answer's, not the request's.
    const { secretKeySet: _set, ...s3CopyUpdate } = s3Copy;
    const update = { endpoint: 'http://127.0.0.1:9', region: 'us-east-1', bucket: 'chango-backups', accessKey: 'AK' };
    assertRequestBodyValid('PUT', '/admin/api/backup/config', { ...update, copy: { ...s3CopyUpdate, secretKey: 'copy-secret' } }, true);
    assertRequestBodyValid('PUT', '/admin/api/backup/config', { ...update, copy: s3CopyUpdate }, true);
    assertRequestBodyValid('PUT', '/admin/api/backup/config', { ...update, copy: null }, true);
    assertRequestBodyValid('PUT', '/admin/api/backup/config', { ...update, copy: { type: 'directory', path: '/mnt/offline/chango' } }, true);
    assertRequestBodyValid('PUT', '/admin/api/backup/config', { ...update, copy: s3Copy }, false);
    for (const path of ['mnt/offline', '/', '/mnt/offline/', '/mnt//offline', '/mnt/./offline', '/mnt/../etc', '/mnt\\offline']) {
      assertRequestBodyValid('PUT', '/admin/api/backup/config', { ...update, copy: { type: 'directory', path } }, false);
    }
    assert.equal(publicDestination({ ...destination, retention: { keepLast: 3, keepFirst: 1 } }), false);
    assert.equal(publicDestination({ ...destination, encryption: { recipients: ['age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p'], identity: 'AGE-SECRET-KEY-1…' } }), false, 'nothing but recipients');
    assert.equal(publicDestination({ ...destination, objectLock: { mode: 'COMPLIANCE', days: 3 } }), true, ajv.errorsText(publicDestination.errors));
    assert.equal(publicDestination({ ...destination, objectLock: { mode: 'COMPLIANCE', days: 3, years: 1 } }), false);
    const error = componentValidator('Error');
    assert.equal(error({ error: 'x', message: 'y' }), true);
    assert.equal(error({ error: 'x', message: 'y', stack: 'at …' }), false);
    assert.equal(error({ error: 'x', message: 'y', fields: [{ field: 'a', message: 'b', hint: 'c' }] }), false);
  });
});

/** A stack's api, and the helpers that check its answers against the document. */
interface DocumentedApi {
  stack: Stack;
  /** Calls the api, asserts the status, and checks the answer against the document. */
  call<T = Json>(method: string, docPath: string, status: number, options?: Parameters<Stack['request']>[2] & { path?: string }): Promise<ApiResponse<T>>;
  /** Waits for a job to complete or fail: a backup's or a drill's own work, no interval to derive from. */
  finished(id: string): Promise<ApiResponse<JobView>>;
}

const base = '/admin/api/backup';

/** A whole stack of its own (worker, api, Redis prefix), closed by `scope`, and its documented api. */
async function documentedApi(scope: CleanupScope): Promise<DocumentedApi> {
  // The api waits CHANGO_WORKER_ANSWER_MS (default 10 s) for the worker's answer to a config or listing request, then
  // answers 503: left at its documented default, not shortened, so a slow answer on a loaded machine is not a 503.
  const stack = await Stack.start(scope, { env: { CHANGO_BACKUP_ATTEMPTS: '1', CHANGO_VERIFY_SCHEDULED: 'false' } });
  return {
    stack,
    async call<T = Json>(method: string, docPath: string, status: number, options: Parameters<Stack['request']>[2] & { path?: string } = {}): Promise<ApiResponse<T>> {
      const response = await stack.request<T>(method, options.path ?? docPath, options);
      assert.equal(response.status, status, `${method} ${options.path ?? docPath}: ${JSON.stringify(response.body)}`);
      assertDocumented(method, docPath, response);
      return response;
    },
    finished: (id) =>
      waitFor(
        `job ${id} to finish`,
        async () => {
          const job = await stack.request<JobView>('GET', `${base}/jobs/${id}`, { token: stack.viewerToken });
          return job.body.state === 'completed' || job.body.state === 'failed' ? job : undefined;
        },
        SAFETY_NET_MS, // a backup's or a drill's own work: no interval to derive from
      ),
  };
}

/**
 * Each group below runs on a stack of its own and each test sets up what it checks (a saved destination, its own
 * backups and drills), so no test depends on another having run, or run first. The last test is the exception by
 * design: it reads what all the others recorded (`covered`) and says which documented answers none of them checked.
 */
describe('the running api answers as documented (real worker, Redis and Ceph RGW)', () => {
  let rgw: RgwCluster;
  /** A destination on the test RGW, in a bucket of its own. */
  const newDestination = async () => ({ endpoint: rgw.endpoint, region: rgw.region, bucket: await createTestBucket(rgw), prefix: 'prod/', accessKey: rgw.accessKey, secretKey: rgw.secretKey });

  type Destination = Awaited<ReturnType<typeof newDestination>>;
  /** A group's own stack, and a destination in a bucket of its own, saved to the api when `save`. */
  const ownApi = async (scope: SuiteScope, { save }: { save: boolean }): Promise<{ api: DocumentedApi; destination: Destination }> => {
    const api = await documentedApi(scope);
    const destination = await newDestination();
    if (save) {
      const saved = await api.stack.request('PUT', `${base}/config`, { body: destination });
      assert.equal(saved.status, 200, JSON.stringify(saved.body));
    }
    return { api, destination };
  };

  before(async () => {
    rgw = await startRgw();
  });
  after(async () => {
    await rgw?.stop();
  });

  describe('before a destination is saved (nothing here saves one)', () => {
    const scope = new SuiteScope();
    let api: DocumentedApi;
    let destination: Destination;
    before(async () => ({ api, destination } = await ownApi(scope, { save: false })));
    after(() => scope.run());

    test('every documented path and method is served (never the not_found fallback)', async () => {
      const { stack } = api;
      const unknown = await stack.request('GET', '/admin/api/backup/nothing-here');
      assert.equal(unknown.status, 404);
      assert.equal(unknown.body.error, 'not_found', 'the fallback answers not_found: the check below can fail');
      // Before any destination is configured, so no backup or drill starts.
      for (const operation of documentedOperations()) {
        const [method, path] = operation.split(' ') as [string, string];
        const response = await stack.request(method, path.replace('{id}', 'no-such-job'), method === 'PUT' ? { body: {} } : {});
        assert.ok(!(response.status === 404 && (response.body as Json).error === 'not_found'), `${operation} is not served: ${JSON.stringify(response.body)}`);
      }
    });

    test('health, readiness, metrics and the document itself need no token', async () => {
      const { call } = api;
      await call('GET', '/healthz', 200, { token: null });
      await call('GET', '/readyz', 200, { token: null });
      const metrics = await call<string>('GET', '/metrics', 200, { token: null });
      assert.match(metrics.body, /^chango_backup_redis_up 1$/m);
      const served = await call<string>('GET', '/admin/api/openapi.yaml', 200, { token: null });
      assert.match(served.headers.get('content-type') ?? '', /^application\/yaml/);
      assert.equal(served.body, DOCUMENT_TEXT, 'the api serves apps/api/openapi.yaml as it is');
    });

    test('the admin UI: /admin redirects to its page; whoami names the token and its role', async () => {
      const { stack, call } = api;
      const redirect = await fetch(`${stack.baseUrl}/admin`, { redirect: 'manual' });
      assert.equal(redirect.status, 301);
      assert.equal(redirect.headers.get('location'), '/admin/');
      assertDocumented('GET', '/admin', { status: 301, body: await redirect.text(), headers: redirect.headers });
      const page = await fetch(`${stack.baseUrl}/admin/`);
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
      assert.match(await page.text(), /<title>Chango · Backup<\/title>/);
      const admin = await call<{ name: string; role: string }>('GET', '/admin/api/whoami', 200);
      assert.deepEqual(admin.body, { name: 'test-admin', role: 'admin' });
      const viewer = await call<{ name: string; role: string }>('GET', '/admin/api/whoami', 200, { token: stack.viewerToken });
      assert.deepEqual(viewer.body, { name: 'test-viewer', role: 'viewer' });
      await call('GET', '/admin/api/whoami', 401, { token: null });
    });

    test('401 and 403 bodies', async () => {
      const { stack, call } = api;
      await call('GET', `${base}/config`, 401, { token: null });
      await call('PUT', `${base}/config`, 401, { token: null, body: destination });
      await call('GET', `${base}/jobs`, 401, { token: 'chb_not-a-real-token' });
      await call('PUT', `${base}/config`, 403, { token: stack.viewerToken, body: destination });
      await call('POST', `${base}/run`, 403, { token: stack.viewerToken });
      await call('POST', `${base}/verify`, 403, { token: stack.viewerToken });
      for (const path of ['config', 'jobs', 'jobs/{id}', 'objects', 'status']) {
        await call('GET', `${base}/${path}`, 401, { token: null, path: `${base}/${path.replace('{id}', 'x')}` });
      }
    });

    test('before a destination: config 404, run and verify 409, objects 404, empty job list, status', async () => {
      const { stack, call } = api;
      await call('GET', `${base}/config`, 404, { token: stack.viewerToken });
      await call('POST', `${base}/run`, 409);
      await call('POST', `${base}/verify`, 409);
      await call('GET', `${base}/objects`, 404, { token: stack.viewerToken });
      const jobs = await call<{ jobs: unknown[] }>('GET', `${base}/jobs`, 200, { token: stack.viewerToken });
      assert.deepEqual(jobs.body.jobs, []);
      await call('GET', `${base}/status`, 200, { token: stack.viewerToken });
    });

    test('config PUT: 400 naming the field, 502 for a bucket that cannot be asked about Object Lock, 415, 413; the refused bodies are refused by the document too', async () => {
      const { call } = api;
      const cases: { body?: unknown; rawBody?: string; contentType?: string; status: number; schemaRefuses?: boolean }[] = [
        { rawBody: '{"endpoint": ', status: 400 },
        { body: { ...destination, bucket: 'No_Such Bucket' }, status: 400, schemaRefuses: true },
        { body: { ...destination, region: 7 }, status: 400, schemaRefuses: true },
        { body: { ...destination, sse: 'DES' }, status: 400, schemaRefuses: true },
        { body: { ...destination, secretKeyy: 'typo' }, status: 400, schemaRefuses: true },
        { body: { ...destination, retention: { keepLast: 0 } }, status: 400, schemaRefuses: true },
        { body: { ...destination, objectLock: { mode: 'COMPLIANCE', days: 0 } }, status: 400, schemaRefuses: true },
        // Valid for the schema; refused by the worker, which asks the bucket: made without Object Lock (400), or not reachable (502).
        { body: { ...destination, objectLock: { mode: 'COMPLIANCE', days: 1 } }, status: 400 },
        { body: { ...destination, endpoint: 'http://127.0.0.1:9', objectLock: { mode: 'COMPLIANCE', days: 1 } }, status: 502 },
        { rawBody: 'endpoint=x', contentType: 'text/plain', status: 415 },
        { body: { ...destination, prefix: `${'p'.repeat(100_000)}/` }, status: 413 },
      ];
      for (const c of cases) {
        const response = await call<{ error: string }>('PUT', `${base}/config`, c.status, c);
        if (c.status === 400 && c.body) assert.equal(response.body.error, 'invalid_config');
        if (c.schemaRefuses) assertRequestBodyValid('PUT', `${base}/config`, c.body, false);
      }
    });
  });

  describe('with a destination saved: backups, drills, jobs and objects', () => {
    const scope = new SuiteScope();
    let api: DocumentedApi;
    let destination: Destination;
    before(async () => ({ api, destination } = await ownApi(scope, { save: true })));
    after(() => scope.run());

    /** A backup of this test's own, made through POST /run (the answer is checked against the document too). */
    const backupNow = async () => (await api.call<{ key: string; jobId: string }>('POST', `${base}/run`, 200)).body;
    /** A drill of `key`, finished; its job view. */
    const drilled = async (key: string) => {
      const drill = await api.call<{ jobId: string }>('POST', `${base}/verify`, 202, { body: { key } });
      return api.finished(drill.body.jobId);
    };

    test('config PUT 200 and GET 200', async () => {
      const { stack, call } = api;
      const body = { ...destination, schedule: '0 3 * * *', timezone: 'Europe/Berlin', retention: { keepLast: 10 } };
      assertRequestBodyValid('PUT', `${base}/config`, body, true);
      const put = await call<Json>('PUT', `${base}/config`, 200, { body });
      assert.equal(put.body.secretKeySet, true);
      const { secretKey: _kept, ...withoutSecret } = body;
      assertRequestBodyValid('PUT', `${base}/config`, { ...withoutSecret, schedule: null }, true);
      await call('PUT', `${base}/config`, 200, { body: { ...withoutSecret, schedule: null } });
      const got = await call<Json>('GET', `${base}/config`, 200, { token: stack.viewerToken });
      assert.equal(got.body.schedule, null);
    });

    test('run 200 (waits), then run?wait=false 202, and a second trigger joins it', async () => {
      const { stack, call, finished } = api;
      const done = await call<{ key: string; alreadyRunning: boolean }>('POST', `${base}/run`, 200);
      assert.equal(done.body.alreadyRunning, false);
      const accepted = await call<{ jobId: string; statusUrl: string }>('POST', `${base}/run`, 202, { path: `${base}/run?wait=false` });
      assert.equal(accepted.headers.get('location'), accepted.body.statusUrl);
      const joined = await stack.request<{ jobId: string; alreadyRunning: boolean }>('POST', `${base}/run`);
      assert.ok(joined.status === 200 || joined.status === 202, JSON.stringify(joined.body));
      assertDocumented('POST', `${base}/run`, joined);
      assert.equal(joined.body.jobId, accepted.body.jobId);
      assert.equal(joined.body.alreadyRunning, true);
      await finished(accepted.body.jobId);
    });

    test('run: 400 for a bad wait flag', async () => {
      await api.call('POST', `${base}/run`, 400, { path: `${base}/run?wait=maybe` });
    });

    test('verify: 400 naming key, 415, 202 with and without a key', async () => {
      const { call, finished } = api;
      const backupKey = (await backupNow()).key;
      const bad = await call<{ fields: { field: string }[] }>('POST', `${base}/verify`, 400, { body: { key: 'not-a-backup.tar.gz' } });
      assert.deepEqual(bad.body.fields.map((f) => f.field), ['key']);
      await call('POST', `${base}/verify`, 400, { body: { kee: backupKey } });
      const badSource = await call<{ fields: { field: string }[] }>('POST', `${base}/verify`, 400, { body: { key: backupKey, from: 'elsewhere' } });
      assert.deepEqual(badSource.body.fields.map((f) => f.field), ['from']);
      assertRequestBodyValid('POST', `${base}/verify`, { key: backupKey, from: 'elsewhere' }, false);
      assertRequestBodyValid('POST', `${base}/verify`, { key: backupKey, from: 'copy' }, true);
      await call('POST', `${base}/verify`, 415, { rawBody: backupKey, contentType: 'text/plain' });
      assertRequestBodyValid('POST', `${base}/verify`, { key: backupKey }, true);
      const drill = await call<{ jobId: string; key: string | null }>('POST', `${base}/verify`, 202, { body: { key: backupKey } });
      assert.equal(drill.body.key, backupKey);
      const drillJobView = await finished(drill.body.jobId);
      assert.equal(drillJobView.body.state, 'completed', JSON.stringify(drillJobView.body));
      const newest = await call<{ jobId: string; key: string | null }>('POST', `${base}/verify`, 202);
      assert.equal(newest.body.key, null);
      await finished(newest.body.jobId);
    });

    test('jobs: list 200 (and 400), job 200 for a backup and a drill, 404, 400', async () => {
      const { stack, call, finished } = api;
      // A backup job and a drill job of this test's own, both finished.
      const accepted = await call<{ jobId: string }>('POST', `${base}/run`, 202, { path: `${base}/run?wait=false` });
      const backupJob = (await finished(accepted.body.jobId)).body;
      const drillJob = (await drilled((backupJob.result as { key: string } | null)?.key ?? assert.fail(`no key: ${JSON.stringify(backupJob)}`))).body;

      const list = await call<{ jobs: JobView[] }>('GET', `${base}/jobs`, 200, { token: stack.viewerToken });
      assert.deepEqual(new Set(list.body.jobs.map((j) => j.kind)), new Set(['backup', 'verify']));
      assert.ok(list.body.jobs.every((j) => j.state === 'completed'), JSON.stringify(list.body.jobs));
      await call('GET', `${base}/jobs`, 200, { token: stack.viewerToken, path: `${base}/jobs?limit=1` });
      await call('GET', `${base}/jobs`, 400, { token: stack.viewerToken, path: `${base}/jobs?limit=0` });
      const backup = await call<JobView>('GET', `${base}/jobs/{id}`, 200, { token: stack.viewerToken, path: `${base}/jobs/${backupJob.id}` });
      assert.equal(backup.body.kind, 'backup');
      const drill = await call<JobView>('GET', `${base}/jobs/{id}`, 200, { token: stack.viewerToken, path: `${base}/jobs/${drillJob.id}` });
      assert.equal((drill.body.result as { ok?: boolean } | null)?.ok, true, JSON.stringify(drill.body));
      await call('GET', `${base}/jobs/{id}`, 404, { token: stack.viewerToken, path: `${base}/jobs/00000000-0000-4000-8000-000000000000` });
      await call('GET', `${base}/jobs/{id}`, 400, { token: stack.viewerToken, path: `${base}/jobs/bad%20id` });

      // Strict: the same real answer with one field more, top level or nested, does not validate.
      const jobView = componentValidator('JobView');
      assert.equal(jobView(backup.body), true);
      assert.equal(jobView({ ...backup.body, extra: 1 }), false);
      assert.equal(jobView({ ...backup.body, result: { ...(backup.body.result as unknown as Json), extra: 1 } }), false);
      assert.equal(jobView({ ...drill.body, result: { ...(drill.body.result as unknown as Json), extra: 1 } }), false);
    });

    test('objects 200 and status 200 after backups and drills', async () => {
      const { stack, call } = api;
      // Two backups of this test's own (a second page to ask for), the first drilled.
      const backupKey = (await backupNow()).key;
      await drilled(backupKey);
      await backupNow();

      const objects = await call<{ objects: { key: string; verify: { ok: boolean } | null }[] }>('GET', `${base}/objects`, 200, { token: stack.viewerToken });
      const drilledObject = objects.body.objects.find((o) => o.key === backupKey);
      assert.equal(drilledObject?.verify?.ok, true, JSON.stringify(objects.body));
      const first = await call<{ objects: { key: string }[]; nextCursor: string | null }>('GET', `${base}/objects`, 200, { token: stack.viewerToken, path: `${base}/objects?limit=1` });
      assert.equal(first.body.objects.length, 1);
      assert.ok(first.body.nextCursor, 'there are older backups, so a cursor');
      const second = await call<{ objects: { key: string }[] }>('GET', `${base}/objects`, 200, { token: stack.viewerToken, path: `${base}/objects?limit=1&cursor=${encodeURIComponent(first.body.nextCursor)}` });
      assert.notEqual(second.body.objects[0]?.key, first.body.objects[0]?.key);
      assert.deepEqual([first.body.objects[0]?.key, second.body.objects[0]?.key], objects.body.objects.slice(0, 2).map((o) => o.key), 'pages continue where the last ended');
      const badLimit = await call<{ fields: { field: string }[] }>('GET', `${base}/objects`, 400, { token: stack.viewerToken, path: `${base}/objects?limit=0` });
      assert.equal(badLimit.body.fields[0]?.field, 'limit');
      const badCursor = await call<{ fields: { field: string }[] }>('GET', `${base}/objects`, 400, { token: stack.viewerToken, path: `${base}/objects?cursor=not-a-key` });
      assert.equal(badCursor.body.fields[0]?.field, 'cursor');
      const status = await call<Json>('GET', `${base}/status`, 200, { token: stack.viewerToken });
      assert.ok(status.body.lastSuccess && status.body.lastVerify, JSON.stringify(status.body));
    });
  });

  test('a second copy: config with a copy (its secret never answered), 400 naming copy fields, the copy job and status lastCopy', async (t) => {
    // A stack of its own: its copy jobs would be in every other test's job list.
    const { stack, call, finished } = await documentedApi(t);
    const destination = await newDestination();
    const root = await tempDir(t, 'chango-openapi-copy');
    const s3Copy = { type: 's3', endpoint: rgw.endpoint, region: rgw.region, bucket: destination.bucket, prefix: 'copies/', accessKey: rgw.accessKey };

    // No secret key for the S3 copy and none stored: valid for the document, refused by the worker, which names the field.
    const noSecret = { ...destination, copy: s3Copy };
    assertRequestBodyValid('PUT', `${base}/config`, noSecret, true);
    const refused = await call<{ fields: { field: string }[] }>('PUT', `${base}/config`, 400, { body: noSecret });
    assert.deepEqual(refused.body.fields.map((f) => f.field), ['copy.secretKey']);
    const withSecret = { ...destination, copy: { ...s3Copy, secretKey: rgw.secretKey, retention: { keepLast: 2 } } };
    assertRequestBodyValid('PUT', `${base}/config`, withSecret, true);
    const savedS3 = await call<{ copy: Json }>('PUT', `${base}/config`, 200, { body: withSecret });
    assert.equal(savedS3.body.copy.secretKeySet, true);
    assert.ok(!('secretKey' in savedS3.body.copy), JSON.stringify(savedS3.body.copy));
    assert.ok(!JSON.stringify(savedS3.body).includes(rgw.secretKey));

    // Fields of a copy the schema refuses are refused by the api too, named copy.<field>.
    for (const [copy, field] of [
      [{ type: 'directory', path: 'relative/dir' }, 'copy.path'],
      [{ type: 'directory', path: `${root}/` }, 'copy.path'],
      [{ type: 'directory', path: root, bucket: destination.bucket }, 'copy.bucket'],
      [{ ...s3Copy, bucket: 'No_Such Bucket' }, 'copy.bucket'],
      [{ type: 'directory', path: root, retention: { keepLast: 0 } }, 'copy.retention.keepLast'],
    ] as const) {
      assertRequestBodyValid('PUT', `${base}/config`, { ...destination, copy }, false);
      const bad = await call<{ error: string; fields: { field: string }[] }>('PUT', `${base}/config`, 400, { body: { ...destination, copy } });
      assert.deepEqual(bad.body.fields.map((f) => f.field), [field], JSON.stringify(bad.body));
    }

    const directory = { ...destination, copy: { type: 'directory', path: root } };
    assertRequestBodyValid('PUT', `${base}/config`, directory, true);
    await call('PUT', `${base}/config`, 200, { body: directory });
    const got = await call<{ copy: Json }>('GET', `${base}/config`, 200, { token: stack.viewerToken });
    assert.deepEqual(got.body.copy, { type: 'directory', path: root, retention: null });

    // A backup: its copy is a job of its own, queued before the backup's job completes.
    const backup = (await call<{ key: string }>('POST', `${base}/run`, 200)).body;
    const queued = await stack.request<{ jobs: JobView[] }>('GET', `${base}/jobs`, { token: stack.viewerToken });
    const copyJobId = queued.body.jobs.find((j) => j.kind === 'copy' && j.key === backup.key)?.id ?? assert.fail(`no copy job: ${JSON.stringify(queued.body)}`);
    assert.equal((await finished(copyJobId)).body.state, 'completed');
    const copyJob = await call<JobView>('GET', `${base}/jobs/{id}`, 200, { token: stack.viewerToken, path: `${base}/jobs/${copyJobId}` });
    const result = copyJob.body.result as { destination: string; key: string } | null;
    assert.equal(result?.destination, `file://${root}`);
    assert.ok(result?.key.startsWith(`${root}/`) && result.key.endsWith(backup.key.slice('prod/'.length)), JSON.stringify(result));
    const jobView = componentValidator('JobView');
    assert.equal(jobView({ ...copyJob.body, result: { ...(copyJob.body.result as unknown as Json), extra: 1 } }), false);
    const list = await call<{ jobs: JobView[] }>('GET', `${base}/jobs`, 200, { token: stack.viewerToken });
    assert.deepEqual(new Set(list.body.jobs.map((j) => j.kind)), new Set(['backup', 'copy']));
    const status = await call<{ lastCopy: { destination: string; lastSuccess: { copyKey: string | null } | null; lastFailure: unknown }[] }>('GET', `${base}/status`, 200, { token: stack.viewerToken });
    assert.deepEqual(status.body.lastCopy, [{ destination: `file://${root}`, lastSuccess: status.body.lastCopy[0]?.lastSuccess, lastFailure: null }]);
    assert.equal(status.body.lastCopy[0]?.lastSuccess?.copyKey, result?.key);
  });

  test('a destination that refuses the credentials: run 502 backup_failed with the job, objects 502, status with the failure', async (t) => {
    // A stack of its own: the failed job it leaves would be in every other test's job list.
    const { stack, call } = await documentedApi(t);
    await call('PUT', `${base}/config`, 200, { body: { ...(await newDestination()), secretKey: 'not-the-secret-key' } });
    const failed = await call<{ error: string; job: JobView }>('POST', `${base}/run`, 502);
    assert.equal(failed.body.error, 'backup_failed');
    assert.equal(failed.body.job.state, 'failed');
    assert.ok(failed.body.job.failure?.message, JSON.stringify(failed.body));
    const objects = await call<{ error: string }>('GET', `${base}/objects`, 502, { token: stack.viewerToken });
    assert.match(objects.body.error, /^s3_/);
    const status = await call<{ lastFailure: { error: string | null } | null }>('GET', `${base}/status`, 200, { token: stack.viewerToken });
    assert.ok(status.body.lastFailure?.error, JSON.stringify(status.body));
  });

  test('once the worker is gone: readyz 503, config 503 worker_unavailable', async (t) => {
    // A stack of its own: its worker is stopped for good.
    const { stack, call } = await documentedApi(t);
    assert.equal(await stack.worker.stop('SIGTERM', SAFETY_NET_MS), 0); // a clean exit is asserted: only the safety net may cut it short
    const ready = await call<{ reason: string }>('GET', '/readyz', 503, { token: null });
    assert.match(ready.body.reason, /no chango worker has sent a heartbeat recently/);
    const config = await call<{ error: string }>('GET', `${base}/config`, 503, { token: stack.viewerToken });
    assert.equal(config.body.error, 'worker_unavailable');
  });

  test('the answers checked above cover every route and the status codes asked for', () => {
    const wanted = [
      'GET /admin 301',
      'GET /admin/api/whoami 200',
      'GET /admin/api/whoami 401',
      `PUT ${base}/config 200`,
      `PUT ${base}/config 400`,
      `PUT ${base}/config 401`,
      `PUT ${base}/config 403`,
      `PUT ${base}/config 413`,
      `PUT ${base}/config 502`,
      `PUT ${base}/config 415`,
      `GET ${base}/config 200`,
      `GET ${base}/config 401`,
      `GET ${base}/config 404`,
      `GET ${base}/config 503`,
      `POST ${base}/run 200`,
      `POST ${base}/run 202`,
      `POST ${base}/run 400`,
      `POST ${base}/run 403`,
      `POST ${base}/run 409`,
      `POST ${base}/run 502`,
      `POST ${base}/verify 202`,
      `POST ${base}/verify 400`,
      `POST ${base}/verify 403`,
      `POST ${base}/verify 409`,
      `POST ${base}/verify 415`,
      `GET ${base}/jobs 200`,
      `GET ${base}/jobs 400`,
      `GET ${base}/jobs 401`,
      `GET ${base}/jobs/{id} 200`,
      `GET ${base}/jobs/{id} 400`,
      `GET ${base}/jobs/{id} 404`,
      `GET ${base}/objects 200`,
      `GET ${base}/objects 400`,
      `GET ${base}/objects 404`,
      `GET ${base}/objects 502`,
      `GET ${base}/status 200`,
      `GET ${base}/status 401`,
      'GET /healthz 200',
      'GET /readyz 200',
      'GET /readyz 503',
      'GET /metrics 200',
      'GET /admin/api/openapi.yaml 200',
    ];
    assert.deepEqual(wanted.filter((w) => !covered.has(w)), []);
    const operationsCovered = new Set([...covered].map((c) => c.split(' ').slice(0, 2).join(' ')));
    assert.deepEqual(documentedOperations().filter((o) => !operationsCovered.has(o)), []);
  });
});
