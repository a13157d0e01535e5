import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { BackupDestinationSchema, redisKeys, type BackupDestination, type DestinationRevision } from '@chango/contracts';
import { metadataWrites, type ControlPlaneState } from '@chango/state';
import type { Logger } from '@chango/telemetry';

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

interface PublishedDestination extends DestinationRevision {
  iv: string;
  tag: string;
  ct: string;
}

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
  /** Called after a newer destination from another worker was stored here. */
  adopted?: (destination: BackupDestination) => Promise<void>;
}

export class DestinationReplica {
  private readonly key: Buffer;
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly state: ControlPlaneState;
  private readonly nodeId: string;
  private readonly log: Logger;
  private readonly adopted: (destination: BackupDestination) => Promise<void>;
  private failing = false;
  private held: { destination: BackupDestination | undefined; revision: DestinationRevision | undefined } = { destination: undefined, revision: undefined };

  constructor(options: DestinationReplicaOptions) {
    this.redis = options.redis;
    this.prefix = options.prefix;
    this.state = options.state;
    this.nodeId = options.nodeId;
    this.log = options.log;
    this.adopted = options.adopted ?? (async () => undefined);
    this.key = Buffer.from(hkdfSync('sha256', options.rootSecret, Buffer.alloc(0), INFO, 32));
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
        await this.adopted(destination);
      } else if (local > (published?.revision ?? 0) && this.held.destination) {
        await this.publish(this.held.destination, this.held.revision ?? { revision: local, updatedAt: new Date().toISOString(), updatedBy: this.nodeId });
      }
      if (this.failing) this.log.info('destination replica: in step again');
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.log.error({ err: (err as Error).message }, 'destination replica: could not sync with Redis');
      this.failing = true;
    }
  }

  /** The revision this store holds: 0 for none; a destination stored before revisions existed counts as 1. */
  private localRevision(): number {
    if (this.held.revision) return this.held.revision.revision;
    return this.held.destination ? 1 : 0;
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
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(aad(revision)));
    const ct = Buffer.concat([cipher.update(JSON.stringify(destination), 'utf8'), cipher.final()]);
    const body: PublishedDestination = { ...revision, iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), ct: ct.toString('base64') };
    await this.redis.set(redisKeys(this.prefix).destination, JSON.stringify(body));
  }

  private open(published: PublishedDestination): BackupDestination {
    let plaintext: string;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(published.iv, 'base64'));
      decipher.setAAD(Buffer.from(aad(published)));
      decipher.setAuthTag(Buffer.from(published.tag, 'base64'));
      plaintext = Buffer.concat([decipher.update(Buffer.from(published.ct, 'base64')), decipher.final()]).toString('utf8');
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
