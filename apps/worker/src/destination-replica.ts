import type { Redis } from 'ioredis';
import { BackupDestinationSchema, redisKeys, type BackupDestination, type DestinationRevision } from '@chango/contracts';
import { deriveKey, seal, unseal, type SealedBox } from '@chango/security';
import { metadataWrites, type ControlPlaneState } from '@chango/state';
import { OutageLog, type Logger } from '@chango/telemetry';

/**
 * Keeps the destination (and so the schedule) the same on every master host.
 *
 * Each worker holds the destination in its own metadata store — the source of
 * truth, which a restored master or an emptied Redis resumes from. A save (on
 * the leader) bumps a revision and publishes the destination in Redis,
 * encrypted and authenticated with a key only the cluster's workers can derive
 * from the root secret (Redis never sees the S3 secret, and a Redis writer
 * cannot plant a destination). Every worker adopts a published revision newer
 * than its own, and publishes its own when Redis has an older one or none (an
 * emptied Redis), so the copy there is always the newest any worker holds.
 *
 * What this store holds is read once (load) and then kept in memory: the
 * rounds every few seconds touch Redis only, never the live stores (a read
 * there would load every SST's index into memory in the middle of a backup).
 */

type PublishedDestination = DestinationRevision & SealedBox;

/** Hears of every destination this host stores: one saved here, or adopted from another master host. */
export type DestinationListener = (destination: BackupDestination) => Promise<void>;

const INFO = 'chango/destination-replica/v1';

export interface DestinationReplicaOptions {
  redis: Redis;
  /** The queue prefix: the published destination lives under it. */
  prefix: string;
  state: ControlPlaneState;
  /** Derives the key the published destination is sealed with (every worker of the cluster has it). */
  rootSecret: Buffer;
  nodeId: string;
  log: Logger;
}

export class DestinationReplica {
  private readonly key: Buffer;
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly state: ControlPlaneState;
  private readonly nodeId: string;
  private readonly log: Logger;
  private readonly listeners: DestinationListener[] = [];
  private following: NodeJS.Timeout | undefined;
  private readonly outage: OutageLog;
  private held: { destination: BackupDestination | undefined; revision: DestinationRevision | undefined } = { destination: undefined, revision: undefined };

  constructor(options: DestinationReplicaOptions) {
    this.redis = options.redis;
    this.prefix = options.prefix;
    this.state = options.state;
    this.nodeId = options.nodeId;
    this.log = options.log;
    this.key = deriveKey(options.rootSecret, Buffer.alloc(0), INFO);
    this.outage = new OutageLog(options.log, { failed: 'destination replica: could not sync with Redis', recovered: 'destination replica: in step again' });
  }

  /** `listener` is awaited after each destination stored here, saved or adopted; it should not throw. */
  onChange(listener: DestinationListener): void {
    this.listeners.push(listener);
  }

  /** Syncs now and then every `everyMs` until stop(). */
  async follow(everyMs: number): Promise<void> {
    await this.sync();
    this.following = setInterval(() => void this.sync(), everyMs);
  }

  stop(): void {
    clearInterval(this.following);
  }

  /** Reads what this host's metadata store holds; call once before anything else. */
  async load(): Promise<void> {
    this.held = { destination: await this.state.metadata.backupDestination(), revision: await this.state.metadata.backupDestinationRevision() };
  }

  /** The destination this host holds (as stored in its metadata store). */
  get destination(): BackupDestination | undefined {
    return this.held.destination;
  }

  /** Stores a destination edited here as the newest revision, and publishes it. */
  async save(destination: BackupDestination): Promise<DestinationRevision> {
    const published = await this.published();
    const revision: DestinationRevision = {
      revision: Math.max(this.localRevision(), published?.revision ?? 0) + 1,
      updatedAt: new Date().toISOString(),
      updatedBy: this.nodeId,
    };
    await this.store(destination, revision);
    await this.publish(destination, revision);
    await this.changed(destination);
    return revision;
  }

  /** One round of following: adopt a newer published revision, or publish ours if it is newer. Never throws. */
  async sync(): Promise<void> {
    try {
      const local = this.localRevision();
      const published = await this.published();
      if (published && published.revision > local) {
        const destination = this.open(published);
        const revision: DestinationRevision = { revision: published.revision, updatedAt: published.updatedAt, updatedBy: published.updatedBy };
        await this.store(destination, revision);
        this.log.info({ revision: revision.revision, from: revision.updatedBy, bucket: destination.bucket }, 'backup destination updated from another master host');
        await this.changed(destination);
      } else if (local > (published?.revision ?? 0) && this.held.destination) {
        await this.publish(this.held.destination, this.held.revision ?? { revision: local, updatedAt: new Date().toISOString(), updatedBy: this.nodeId });
      }
      this.outage.succeeded();
    } catch (err) {
      this.outage.failed(err);
    }
  }

  /** The revision this store holds: 0 for none; a destination stored before revisions existed counts as 1. */
  private localRevision(): number {
    if (this.held.revision) return this.held.revision.revision;
    return this.held.destination ? 1 : 0;
  }

  private async changed(destination: BackupDestination): Promise<void> {
    for (const listener of this.listeners) await listener(destination);
  }

  private async store(destination: BackupDestination, revision: DestinationRevision): Promise<void> {
    await this.state.commit((tx) => metadataWrites.putBackupDestination(tx, destination, revision));
    this.held = { destination, revision };
  }

  private async published(): Promise<PublishedDestination | null> {
    const raw = await this.redis.get(redisKeys(this.prefix).destination);
    if (!raw) return null;
    try {
      const parsed = JSON.parse(raw) as PublishedDestination;
      return Number.isSafeInteger(parsed.revision) ? parsed : null;
    } catch {
      return null;
    }
  }

  private async publish(destination: BackupDestination, revision: DestinationRevision): Promise<void> {
    const body: PublishedDestination = { ...revision, ...seal(this.key, JSON.stringify(destination), aad(revision)) };
    await this.redis.set(redisKeys(this.prefix).destination, JSON.stringify(body));
  }

  private open(published: PublishedDestination): BackupDestination {
    let plaintext: string;
    try {
      plaintext = unseal(this.key, published, aad(published)).toString('utf8');
    } catch {
      throw new Error(
        `the destination published in Redis (revision ${published.revision} by ${published.updatedBy}) does not open with this worker's root secret: ` +
          'every master host of a cluster must use the same root secret',
      );
    }
    return BackupDestinationSchema.parse(JSON.parse(plaintext));
  }
}

function aad(revision: DestinationRevision): string {
  return `${revision.revision}|${revision.updatedAt}|${revision.updatedBy}`;
}
