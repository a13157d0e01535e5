import type { ControlPlaneState } from './control-plane-state.js';

export interface StateStats {
  kms: { records: number; keks: number };
  iam: { records: number; users: number; groups: number; policies: number; accessKeys: number };
  metadata: { records: number; components: number; clusters: number; nginxSites: number; backupDestinations: number };
  /** Secret fields decrypted during the check (access secrets, component secrets, destination). */
  secretsDecrypted: number;
}

/**
 * Counts every store's records and decrypts every secret field once. It
 * throws (StateError DECRYPT_FAILED) at the first field that does not open,
 * so a resolved promise means the state is whole and readable with this root secret.
 */
export async function collectStats(state: ControlPlaneState): Promise<StateStats> {
  let secretsDecrypted = 0;
  const count = async <T>(entries: AsyncGenerator<[string, T]>, check?: (value: T) => void): Promise<number> => {
    let n = 0;
    for await (const [, value] of entries) {
      check?.(value);
      n++;
    }
    return n;
  };

  const accessKeys = await count(state.iam.accessKeys(), (key) => {
    state.iam.accessKeySecret(key);
    secretsDecrypted++;
  });
  const components = await count(state.metadata.components(), (component) => {
    if (component.secrets) {
      state.metadata.componentSecrets(component);
      secretsDecrypted++;
    }
  });
  const destination = await state.metadata.backupDestination();
  if (destination) secretsDecrypted++;

  return {
    kms: { records: await state.countRecords('kms'), keks: state.kms.kekCount },
    iam: {
      records: await state.countRecords('iam'),
      users: await count(state.iam.users()),
      groups: await count(state.iam.groups()),
      policies: await count(state.iam.policies()),
      accessKeys,
    },
    metadata: {
      records: await state.countRecords('metadata'),
      components,
      clusters: await count(state.metadata.clusters()),
      nginxSites: await count(state.metadata.nginxSites()),
      backupDestinations: destination ? 1 : 0,
    },
    secretsDecrypted,
  };
}
