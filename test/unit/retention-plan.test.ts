import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { BackupObject } from '@chango/contracts';
import { planRetention } from '../../apps/worker/src/retention-plan.js';

const NOW = new Date('2026-11-25T12:00:00Z');
let uuidCounter = 0;

/** A backup object `daysAgo` old, as BackupBucket.list() returns it. */
function backup(daysAgo: number, extra: Partial<BackupObject> = {}): BackupObject {
  const at = new Date(NOW.getTime() - daysAgo * 86_400_000);
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
  const uuid = `00000000-0000-4000-8000-${String(++uuidCounter).padStart(12, '0')}`;
  return { key: `prod/chango-${stamp}-${uuid}.tar.gz`, size: 10, lastModified: at.toISOString(), sha256: 'a'.repeat(64), complete: true, verify: null, ...extra };
}

const removed = (plan: ReturnType<typeof planRetention>) => plan.remove.map((d) => d.key);

describe('planRetention', () => {
  test('keepLast keeps the N newest and removes the rest', () => {
    const objects = [backup(0), backup(1), backup(2), backup(3)];
    const plan = planRetention(objects, { keepLast: 2 }, 'prod/', NOW);
    assert.deepEqual(removed(plan).sort(), [objects[2]?.key, objects[3]?.key].sort());
  });

  test('maxAgeDays removes backups older than the limit, but never the newest', () => {
    const objects = [backup(10), backup(20), backup(40)];
    const plan = planRetention(objects, { maxAgeDays: 15 }, 'prod/', NOW);
    assert.deepEqual(removed(plan).sort(), [objects[1]?.key, objects[2]?.key].sort());
    const allOld = planRetention([backup(100), backup(200)], { maxAgeDays: 15 }, 'prod/', NOW);
    assert.equal(allOld.remove.length, 1, 'the newest backup stays even when it is past the age limit');
  });

  test('with both rules a backup stays when either keeps it', () => {
    const objects = [backup(1), backup(2), backup(3), backup(30)];
    const plan = planRetention(objects, { keepLast: 1, maxAgeDays: 7 }, 'prod/', NOW);
    assert.deepEqual(removed(plan), [objects[3]?.key]);
  });

  test('the newest backup that passed a restore drill is never removed', () => {
    const verified = backup(50, { verify: { ok: true, kind: 'restore', verifiedAt: NOW.toISOString() } });
    const failedDrill = backup(5, { verify: { ok: false, kind: 'restore', verifiedAt: NOW.toISOString() } });
    const objects = [backup(0), failedDrill, backup(10), verified, backup(60)];
    const plan = planRetention(objects, { keepLast: 1 }, 'prod/', NOW);
    assert.ok(!removed(plan).includes(verified.key));
    assert.ok(removed(plan).includes(failedDrill.key), 'a failed drill protects nothing');
    assert.match(plan.keep.find((d) => d.key === verified.key)?.reasons.join() ?? '', /restore drill/);
  });

  test('no rule keeps every complete backup', () => {
    assert.equal(planRetention([backup(0), backup(400)], null, 'prod/', NOW).remove.length, 0);
    assert.equal(planRetention([backup(0), backup(400)], {}, 'prod/', NOW).remove.length, 0);
  });

  test('incomplete archives (no sidecar) go once older than a day, whatever the policy; recent ones stay', () => {
    const stale = backup(2, { complete: false, sha256: null });
    const fresh = { ...backup(0, { complete: false, sha256: null }), lastModified: new Date(NOW.getTime() - 3_600_000).toISOString() };
    const plan = planRetention([backup(0), stale, fresh], null, 'prod/', NOW);
    assert.deepEqual(removed(plan), [stale.key]);
  });

  test('objects that are not our archives under the prefix are never considered', () => {
    const foreign: BackupObject[] = [
      { ...backup(100), key: 'prod/notes.txt' },
      { ...backup(100), key: 'other/chango-20200101T000000Z-00000000-0000-4000-8000-000000000001.tar.gz' },
      { ...backup(100), key: 'prod/chango-old.tar.gz' },
    ];
    const plan = planRetention([backup(0), ...foreign], { keepLast: 1 }, 'prod/', NOW);
    assert.deepEqual(plan.remove, []);
    assert.equal(plan.keep.length, 1);
  });

  test('Object Lock: a backup the rule dooms is kept, reason locked, until key time + days; from then it is removed', () => {
    const lock = { mode: 'COMPLIANCE' as const, days: 30 };
    const objects = [backup(0), backup(10), backup(29), backup(31), backup(400)];
    const plan = planRetention(objects, { keepLast: 1 }, 'prod/', NOW, lock);
    assert.deepEqual(removed(plan).sort(), [objects[3]?.key, objects[4]?.key].sort(), 'only those locked for less than their age');
    const locked = plan.keep.filter((d) => d.lockedUntil !== undefined);
    assert.deepEqual(locked.map((d) => d.key).sort(), [objects[1]?.key, objects[2]?.key].sort());
    for (const decision of locked) {
      assert.match(decision.reasons.join(), /^locked: Object Lock COMPLIANCE holds it until at least .*not among the 1 newest/);
    }
    // The bound is the key's time + days: one day before it, still locked; at it, not.
    const tenDays = objects[1] as BackupObject;
    assert.equal(locked.find((d) => d.key === tenDays.key)?.lockedUntil, new Date(NOW.getTime() + 20 * 86_400_000).toISOString());
    const later = (days: number) => new Date(NOW.getTime() + days * 86_400_000);
    assert.ok(planRetention(objects, { keepLast: 1 }, 'prod/', later(19), lock).keep.some((d) => d.key === tenDays.key && d.lockedUntil));
    assert.ok(removed(planRetention(objects, { keepLast: 1 }, 'prod/', later(20), lock)).includes(tenDays.key));
    // What the rule keeps is kept for its own reason, never counted as locked; without a lock nothing is.
    assert.ok(!plan.keep.find((d) => d.key === objects[0]?.key)?.lockedUntil);
    assert.equal(planRetention(objects, { keepLast: 1 }, 'prod/', NOW).keep.filter((d) => d.lockedUntil).length, 0);
  });

  test('Object Lock holds an old incomplete archive too', () => {
    const stale = backup(2, { complete: false, sha256: null });
    const plan = planRetention([backup(0), stale], null, 'prod/', NOW, { mode: 'GOVERNANCE', days: 7 });
    assert.deepEqual(removed(plan), []);
    assert.match(plan.keep.find((d) => d.key === stale.key)?.reasons.join() ?? '', /^locked: Object Lock GOVERNANCE .*incomplete/);
  });
});
