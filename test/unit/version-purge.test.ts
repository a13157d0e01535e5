import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { purgeVersions, type ObjectVersion, type PurgeIo, type Refusal } from '@chango/s3';

/**
 * The order and bookkeeping of a purge, against a small model of a versioned
 * bucket with locked versions (what Ceph RGW and AWS do, as measured: a locked
 * version refuses deletion with AccessDenied, a delete marker is always allowed).
 * The real thing is test/integration/object-lock.test.ts.
 */
class VersionedBucket implements PurgeIo {
  private next = 0;
  readonly objects = new Map<string, { versionId: string; deleteMarker: boolean; locked: boolean }[]>();
  readonly requests: string[] = [];
  /** Keys whose deletion is refused for another reason than a lock (a policy without DeleteObjectVersion, say). */
  readonly forbidden = new Set<string>();

  put(key: string, locked = false): void {
    this.objects.set(key, [...(this.objects.get(key) ?? []), { versionId: `v${++this.next}`, deleteMarker: false, locked }]);
  }

  visible(key: string): boolean {
    const versions = this.objects.get(key) ?? [];
    return versions.length > 0 && !versions.at(-1)?.deleteMarker;
  }

  async versionsOf(prefix: string): Promise<ObjectVersion[]> {
    this.requests.push(`list ${prefix}`);
    return [...this.objects].filter(([key]) => key.startsWith(prefix)).flatMap(([key, versions]) => versions.map((v) => ({ key, versionId: v.versionId, deleteMarker: v.deleteMarker })));
  }

  async deleteVersions(versions: readonly ObjectVersion[]): Promise<Refusal[]> {
    this.requests.push(`delete ${versions.length}`);
    const refused: Refusal[] = [];
    for (const { key, versionId } of versions) {
      const list = this.objects.get(key) ?? [];
      const version = list.find((v) => v.versionId === versionId);
      if (!version) continue;
      if (this.forbidden.has(key)) refused.push({ key, versionId, code: 'MethodNotAllowed', message: 'not for you' });
      else if (version.locked && !version.deleteMarker) refused.push({ key, versionId, code: 'AccessDenied', message: 'forbidden by object lock' });
      else this.objects.set(key, list.filter((v) => v !== version));
    }
    return refused;
  }

  async hide(keys: readonly string[]): Promise<Refusal[]> {
    this.requests.push(`hide ${keys.length}`);
    for (const key of keys) this.objects.set(key, [...(this.objects.get(key) ?? []), { versionId: `m${++this.next}`, deleteMarker: true, locked: false }]);
    return [];
  }
}

const siblingsOf = (key: string) => [`${key}.sha256`, `${key}.verify.json`];

function backup(bucket: VersionedBucket, key: string, lock: { archive?: boolean; sidecar?: boolean; record?: boolean } = {}): void {
  bucket.put(key, lock.archive);
  bucket.put(`${key}.sha256`, lock.sidecar);
  bucket.put(`${key}.verify.json`, lock.record);
}

describe('purgeVersions', () => {
  test('every version of a backup whose lock has passed goes (delete markers too); nothing else under its name is touched', async () => {
    const bucket = new VersionedBucket();
    backup(bucket, 'prod/a.tar.gz');
    bucket.put('prod/a.tar.gz'); // a second version of the archive
    await bucket.hide(['prod/a.tar.gz.verify.json']); // and a delete marker
    bucket.put('prod/a.tar.gz.copy-by-hand');
    const outcome = await purgeVersions(bucket, ['prod/a.tar.gz'], { siblingsOf, whenLocked: 'keep' });
    assert.deepEqual(outcome, { deleted: ['prod/a.tar.gz'], locked: [], hidden: [], lingering: [], failed: [] });
    assert.deepEqual([...bucket.objects].filter(([, v]) => v.length > 0).map(([k]) => k), ['prod/a.tar.gz.copy-by-hand']);
  });

  test('a locked archive is kept whole: its sidecar and drill record are not even tried', async () => {
    const bucket = new VersionedBucket();
    backup(bucket, 'prod/locked.tar.gz', { archive: true, sidecar: true });
    backup(bucket, 'prod/free.tar.gz');
    const outcome = await purgeVersions(bucket, ['prod/locked.tar.gz', 'prod/free.tar.gz'], { siblingsOf, whenLocked: 'keep' });
    assert.deepEqual(outcome.locked, ['prod/locked.tar.gz']);
    assert.deepEqual(outcome.deleted, ['prod/free.tar.gz']);
    for (const key of ['prod/locked.tar.gz', 'prod/locked.tar.gz.sha256', 'prod/locked.tar.gz.verify.json']) assert.ok(bucket.visible(key), `${key} is still there`);
    // One listing per backup, one deletion request for the archives, one for the siblings of those that went.
    assert.deepEqual(bucket.requests, ['list prod/locked.tar.gz', 'list prod/free.tar.gz', 'delete 2', 'delete 2']);
  });

  test('a drill record locked longer than its archive stays, hidden behind a delete marker, and is reported as lingering', async () => {
    const bucket = new VersionedBucket();
    backup(bucket, 'prod/b.tar.gz', { record: true });
    const outcome = await purgeVersions(bucket, ['prod/b.tar.gz'], { siblingsOf, whenLocked: 'keep' });
    assert.deepEqual(outcome.deleted, ['prod/b.tar.gz']);
    assert.deepEqual(outcome.lingering, ['prod/b.tar.gz.verify.json']);
    assert.equal(bucket.visible('prod/b.tar.gz.verify.json'), false, 'hidden');
    assert.equal(bucket.objects.get('prod/b.tar.gz.verify.json')?.length, 2, 'its locked version and the marker');
  });

  test("a failed attempt's locked archive is hidden, not fought (whenLocked hide), and so are its siblings", async () => {
    const bucket = new VersionedBucket();
    bucket.put('prod/c.tar.gz', true);
    bucket.put('prod/c.tar.gz.sha256', true);
    const outcome = await purgeVersions(bucket, ['prod/c.tar.gz'], { siblingsOf, whenLocked: 'hide' });
    assert.deepEqual(outcome, { deleted: [], locked: [], hidden: ['prod/c.tar.gz'], lingering: ['prod/c.tar.gz.sha256'], failed: [] });
    assert.equal(bucket.visible('prod/c.tar.gz'), false);
    assert.equal(bucket.visible('prod/c.tar.gz.sha256'), false);
    // Once more (a remembered leftover swept again): the old marker is removed and a new one added; still hidden, still reported.
    const again = await purgeVersions(bucket, ['prod/c.tar.gz'], { siblingsOf, whenLocked: 'hide' });
    assert.deepEqual(again.hidden, ['prod/c.tar.gz']);
    assert.equal(bucket.visible('prod/c.tar.gz'), false);
  });

  test('a refusal that is not a lock is a failure of that backup, with the code', async () => {
    const bucket = new VersionedBucket();
    backup(bucket, 'prod/d.tar.gz');
    bucket.forbidden.add('prod/d.tar.gz');
    const outcome = await purgeVersions(bucket, ['prod/d.tar.gz'], { siblingsOf, whenLocked: 'keep' });
    assert.deepEqual(outcome.deleted, []);
    assert.equal(outcome.failed[0]?.key, 'prod/d.tar.gz');
    assert.equal(outcome.failed[0]?.refusal.code, 'MethodNotAllowed');
    assert.ok(bucket.visible('prod/d.tar.gz.sha256'), 'its sidecar was not touched');
  });

  test('a backup with no versions left (deleted meanwhile) counts as deleted, and nothing is sent', async () => {
    const bucket = new VersionedBucket();
    const outcome = await purgeVersions(bucket, ['prod/gone.tar.gz'], { siblingsOf, whenLocked: 'keep' });
    assert.deepEqual(outcome.deleted, ['prod/gone.tar.gz']);
    assert.deepEqual(bucket.requests, ['list prod/gone.tar.gz']);
  });
});
