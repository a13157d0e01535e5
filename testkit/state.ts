import { randomBytes } from 'node:crypto';
import type { BackupDestination } from '@chango/contracts';
import { ControlPlaneState, hashPassword, iamWrites, metadataWrites } from '@chango/state';
import { destinationAt } from './destinations.js';

/** Secret values planted in a state, so tests can look for them in the bytes on disk. */
export interface PlantedSecrets {
  password: string;
  accessKeyId: string;
  accessSecret: string;
  componentPassword: string;
  destination: BackupDestination;
}

/** Random hex: no repeats for RocksDB's compression to fold, so a plaintext copy would show. */
const hex = (bytes: number) => randomBytes(bytes).toString('hex');

/** Creates the stores and writes one record of each secret-bearing kind with known values. */
export async function plantSecrets(state: ControlPlaneState): Promise<PlantedSecrets> {
  const planted: PlantedSecrets = {
    password: `pw-${hex(16)}`,
    accessKeyId: `AK${hex(9).toUpperCase()}`,
    accessSecret: hex(20),
    componentPassword: hex(16),
    destination: destinationAt({ endpoint: 'http://127.0.0.1:9000', region: 'us-east-1', accessKey: `S3KEY${hex(8)}`, secretKey: hex(20) }, 'chango-backups', 'prod/'),
  };
  const passwordHash = await hashPassword(planted.password);
  await state.commit((tx) => {
    iamWrites.putUser(tx, { name: 'alice', email: 'alice@example.com', passwordHash, groups: ['admins'], disabled: false, createdAt: new Date().toISOString() });
    iamWrites.putAccessKey(tx, { id: planted.accessKeyId, user: 'alice', status: 'active', createdAt: new Date().toISOString() }, planted.accessSecret);
    metadataWrites.putComponent(
      tx,
      { id: 'kafka-1', kind: 'kafka', version: '3.7.1', cluster: 'prod', nodeId: 'nm-1', config: { 'listen.port': '9092' }, createdAt: new Date().toISOString() },
      { adminPassword: planted.componentPassword },
    );
    metadataWrites.putBackupDestination(tx, planted.destination);
  });
  return planted;
}

export async function openState(dataDir: string, rootSecret: string, create = false): Promise<ControlPlaneState> {
  return ControlPlaneState.open({ dataDir, rootSecret: Buffer.from(rootSecret), create });
}
