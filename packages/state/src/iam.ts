import type { Envelope } from './kms.js';
import type { Kms } from './kms.js';
import type { RocksStore } from './rocks-store.js';
import type { Transaction } from './transaction.js';

export interface User {
  name: string;
  email: string;
  /** `scrypt$…` from passwords.ts; the password itself is never stored. */
  passwordHash: string;
  groups: string[];
  disabled: boolean;
  createdAt: string;
}

export interface Group {
  name: string;
  description: string;
  policies: string[];
}

export interface PolicyStatement {
  effect: 'Allow' | 'Deny';
  actions: string[];
  resources: string[];
}

export interface Policy {
  name: string;
  statements: PolicyStatement[];
}

export interface AccessKey {
  id: string;
  user: string;
  status: 'active' | 'inactive';
  createdAt: string;
}

/** How an access key is stored: its secret envelope-encrypted. */
export interface StoredAccessKey extends AccessKey {
  secret: Envelope;
}

export const IAM_PREFIX = {
  user: 'user/',
  group: 'group/',
  policy: 'policy/',
  accessKey: 'accesskey/',
} as const;

const accessKeySecretContext = (id: string) => `iam/${IAM_PREFIX.accessKey}${id}#secret`;

/** Adds IAM writes to a transaction. */
export const iamWrites = {
  putUser(tx: Transaction, user: User): void {
    tx.putJson('iam', IAM_PREFIX.user + user.name, user);
  },
  putGroup(tx: Transaction, group: Group): void {
    tx.putJson('iam', IAM_PREFIX.group + group.name, group);
  },
  putPolicy(tx: Transaction, policy: Policy): void {
    tx.putJson('iam', IAM_PREFIX.policy + policy.name, policy);
  },
  putAccessKey(tx: Transaction, key: AccessKey, secret: string): void {
    const stored: StoredAccessKey = { ...key, secret: tx.kms.encrypt(secret, accessKeySecretContext(key.id)) };
    tx.putJson('iam', IAM_PREFIX.accessKey + key.id, stored);
  },
  deleteAccessKey(tx: Transaction, id: string): void {
    tx.delete('iam', IAM_PREFIX.accessKey + id);
  },
};

/** Reads the IAM store. */
export class IamReader {
  constructor(
    private readonly store: RocksStore,
    private readonly kms: Kms,
  ) {}

  getUser(name: string): Promise<User | undefined> {
    return this.store.getJson<User>(IAM_PREFIX.user + name);
  }

  users(): AsyncGenerator<[string, User]> {
    return this.store.entries<User>(IAM_PREFIX.user);
  }

  groups(): AsyncGenerator<[string, Group]> {
    return this.store.entries<Group>(IAM_PREFIX.group);
  }

  policies(): AsyncGenerator<[string, Policy]> {
    return this.store.entries<Policy>(IAM_PREFIX.policy);
  }

  accessKeys(): AsyncGenerator<[string, StoredAccessKey]> {
    return this.store.entries<StoredAccessKey>(IAM_PREFIX.accessKey);
  }

  getAccessKey(id: string): Promise<StoredAccessKey | undefined> {
    return this.store.getJson<StoredAccessKey>(IAM_PREFIX.accessKey + id);
  }

  accessKeySecret(key: StoredAccessKey): string {
    return this.kms.decryptString(key.secret, accessKeySecretContext(key.id));
  }
}
