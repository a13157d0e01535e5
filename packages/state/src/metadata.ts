import { BackupDestinationSchema, type BackupDestination, type DestinationRevision } from '@chango/contracts';
import type { Envelope, Kms } from './kms.js';
import type { RocksStore } from './rocks-store.js';
import type { Transaction } from './transaction.js';

/** One component instance of the inventory: which kind, on which node manager, configured how. */
export interface Component {
  id: string;
  kind: string;
  version: string;
  cluster: string;
  nodeId: string;
  config: Record<string, string>;
  /** PEM of the instance's TLS certificate (public). */
  tlsCertificate?: string;
  createdAt: string;
}

/** How a component is stored: its secrets (passwords, tokens) envelope-encrypted as one JSON object. */
export interface StoredComponent extends Component {
  secrets?: Envelope;
}

export interface ClusterSettings {
  name: string;
  settings: Record<string, string | number | boolean>;
}

export interface GatewayRoute {
  path: string;
  componentId: string;
}

export interface GatewayTopology {
  gateways: { id: string; nodeId: string; listen: string; routes: GatewayRoute[] }[];
  updatedAt: string;
}

export interface NginxSite {
  name: string;
  cluster: string;
  config: string;
  updatedAt: string;
}

export const METADATA_PREFIX = {
  component: 'component/',
  cluster: 'cluster/',
  nginx: 'nginx/',
} as const;

export const METADATA_KEYS = {
  gatewayTopology: 'gateway/topology',
  backupDestination: 'backup/destination',
  /** Which edit of the destination this store holds (plain: no secret in it); see apps/worker destination-replica.ts. */
  backupDestinationRevision: 'backup/destination-revision',
} as const;

const componentSecretsContext = (id: string) => `metadata/${METADATA_PREFIX.component}${id}#secrets`;
const destinationContext = `metadata/${METADATA_KEYS.backupDestination}`;

/** Adds metadata writes to a transaction. */
export const metadataWrites = {
  putComponent(tx: Transaction, component: Component, secrets?: Record<string, string>): void {
    const stored: StoredComponent =
      secrets === undefined
        ? component
        : { ...component, secrets: tx.kms.encrypt(JSON.stringify(secrets), componentSecretsContext(component.id)) };
    tx.putJson('metadata', METADATA_PREFIX.component + component.id, stored);
  },
  deleteComponent(tx: Transaction, id: string): void {
    tx.delete('metadata', METADATA_PREFIX.component + id);
  },
  putClusterSettings(tx: Transaction, cluster: ClusterSettings): void {
    tx.putJson('metadata', METADATA_PREFIX.cluster + cluster.name, cluster);
  },
  putGatewayTopology(tx: Transaction, topology: GatewayTopology): void {
    tx.putJson('metadata', METADATA_KEYS.gatewayTopology, topology);
  },
  putNginxSite(tx: Transaction, site: NginxSite): void {
    tx.putJson('metadata', METADATA_PREFIX.nginx + site.name, site);
  },
  putBackupDestination(tx: Transaction, destination: BackupDestination, revision?: DestinationRevision): void {
    tx.putJson('metadata', METADATA_KEYS.backupDestination, tx.kms.encrypt(JSON.stringify(destination), destinationContext));
    if (revision) tx.putJson('metadata', METADATA_KEYS.backupDestinationRevision, revision);
  },
};

/** Reads the metadata store. */
export class MetadataReader {
  constructor(
    private readonly store: RocksStore,
    private readonly kms: Kms,
  ) {}

  components(): AsyncGenerator<[string, StoredComponent]> {
    return this.store.entries<StoredComponent>(METADATA_PREFIX.component);
  }

  getComponent(id: string): Promise<StoredComponent | undefined> {
    return this.store.getJson<StoredComponent>(METADATA_PREFIX.component + id);
  }

  componentSecrets(component: StoredComponent): Record<string, string> {
    if (!component.secrets) return {};
    return JSON.parse(this.kms.decryptString(component.secrets, componentSecretsContext(component.id))) as Record<string, string>;
  }

  clusters(): AsyncGenerator<[string, ClusterSettings]> {
    return this.store.entries<ClusterSettings>(METADATA_PREFIX.cluster);
  }

  nginxSites(): AsyncGenerator<[string, NginxSite]> {
    return this.store.entries<NginxSite>(METADATA_PREFIX.nginx);
  }

  gatewayTopology(): Promise<GatewayTopology | undefined> {
    return this.store.getJson<GatewayTopology>(METADATA_KEYS.gatewayTopology);
  }

  async backupDestination(): Promise<BackupDestination | undefined> {
    const sealed = await this.store.getJson<Envelope>(METADATA_KEYS.backupDestination);
    // Parsed, not cast: fields added since it was stored get their defaults.
    return sealed && BackupDestinationSchema.parse(JSON.parse(this.kms.decryptString(sealed, destinationContext)));
  }

  backupDestinationRevision(): Promise<DestinationRevision | undefined> {
    return this.store.getJson<DestinationRevision>(METADATA_KEYS.backupDestinationRevision);
  }
}
