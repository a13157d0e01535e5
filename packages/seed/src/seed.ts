import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { hashPassword, iamWrites, metadataWrites, type AccessKey, type Component, type ControlPlaneState, type GatewayTopology, type Policy, type User } from '@chango/state';

export interface SeedOptions {
  users: number;
  components: number;
}

export interface SeedSummary {
  users: number;
  groups: number;
  policies: number;
  accessKeys: number;
  clusters: number;
  nodeManagers: number;
  components: number;
}

/** What a Chango cluster runs; the inventory is spread over these kinds. */
const COMPONENT_KINDS = [
  ['shannonstore', '3.4.1'],
  ['neorunbase', '2.9.0'],
  ['itdastream', '1.12.2'],
  ['kafka', '3.7.1'],
  ['postgresql', '16.4'],
  ['kiok', '0.18.3'],
  ['trino', '451'],
  ['spark-history', '3.5.2'],
] as const;

const GROUPS = ['admins', 'operators', 'analysts', 'auditors'] as const;
const FIRST_NAMES = ['ana', 'bo', 'chen', 'dara', 'eun', 'farid', 'gita', 'hana', 'ivo', 'jun', 'kai', 'lea'];
const COMPONENTS_PER_CLUSTER = 50;
const NODE_MANAGERS_PER_CLUSTER = 6;
/** Components per commit: each commit is one batch per store. */
const CHUNK = 500;

/**
 * Fills the stores with realistic control-plane records — users with hashed
 * passwords and access keys, groups, policies, clusters with settings, a
 * component inventory spread over node managers, gateway topology and nginx
 * state — for demos, tests and benchmarks. Adds to whatever is there already.
 * Secrets are random and never returned.
 */
export async function seedState(state: ControlPlaneState, options: SeedOptions): Promise<SeedSummary> {
  const run = randomBytes(3).toString('hex');
  const policies = seedPolicies();
  await state.commit((tx) => {
    for (const policy of policies) iamWrites.putPolicy(tx, policy);
    for (const group of GROUPS) {
      iamWrites.putGroup(tx, { name: group, description: `${group} of the Chango cluster`, policies: policiesFor(group) });
    }
  });

  let accessKeys = 0;
  for (let start = 0; start < options.users; start += CHUNK) {
    const users = await Promise.all(
      range(start, Math.min(options.users, start + CHUNK)).map((i) => makeUser(`${FIRST_NAMES[i % FIRST_NAMES.length]}.${run}${i}`)),
    );
    await state.commit((tx) => {
      for (const user of users) {
        iamWrites.putUser(tx, user);
        for (let k = 0; k < 1 + (user.name.length % 2); k++) {
          iamWrites.putAccessKey(tx, makeAccessKey(user.name), randomToken(40));
          accessKeys++;
        }
      }
    });
  }

  const clusters = Math.max(1, Math.ceil(options.components / COMPONENTS_PER_CLUSTER));
  const clusterName = (c: number) => `cluster-${run}-${c}`;
  await state.commit((tx) => {
    for (let c = 0; c < clusters; c++) {
      metadataWrites.putClusterSettings(tx, {
        name: clusterName(c),
        settings: {
          zookeeperQuorum: `zk-${c}-1:2181,zk-${c}-2:2181,zk-${c}-3:2181`,
          s3Endpoint: `http://shannonstore-${c}:8080`,
          defaultReplicas: 3,
          tlsEnabled: true,
          timezone: 'UTC',
        },
      });
    }
  });

  const topology: GatewayTopology = { gateways: [], updatedAt: new Date().toISOString() };
  // Each cluster's nginx upstream lines, gathered as its gateways are made: one pass over the
  // components (filtering every gateway per cluster made seeding quadratic in the component count).
  const upstreams: string[][] = Array.from({ length: clusters }, () => []);
  for (let start = 0; start < options.components; start += CHUNK) {
    const components = range(start, Math.min(options.components, start + CHUNK)).map((i) => {
      const cluster = Math.floor(i / COMPONENTS_PER_CLUSTER);
      return makeComponent(clusterName(cluster), `nm-${run}-${cluster}-${i % NODE_MANAGERS_PER_CLUSTER}`, i);
    });
    await state.commit((tx) => {
      for (const component of components) {
        metadataWrites.putComponent(tx, component, { adminPassword: randomToken(24), jmxPassword: randomToken(24) });
      }
    });
    for (const [offset, component] of components.entries()) {
      topology.gateways.push({
        id: `gw-${component.id}`,
        nodeId: component.nodeId,
        listen: '0.0.0.0:443',
        routes: [{ path: `/${component.kind}/${component.id}`, componentId: component.id }],
      });
      upstreams[Math.floor((start + offset) / COMPONENTS_PER_CLUSTER)]?.push(`  server ${component.nodeId}.internal:8443; # ${component.id}`);
    }
  }

  await state.commit((tx) => {
    metadataWrites.putGatewayTopology(tx, topology);
    for (let c = 0; c < clusters; c++) {
      metadataWrites.putNginxSite(tx, {
        name: clusterName(c),
        cluster: clusterName(c),
        config: `upstream ${clusterName(c)} {\n${(upstreams[c] ?? []).join('\n')}\n}\nserver {\n  listen 443 ssl;\n  location / { proxy_pass https://${clusterName(c)}; }\n}\n`,
        updatedAt: new Date().toISOString(),
      });
    }
  });

  return {
    users: options.users,
    groups: GROUPS.length,
    policies: policies.length,
    accessKeys,
    clusters,
    nodeManagers: Math.min(options.components, clusters * NODE_MANAGERS_PER_CLUSTER),
    components: options.components,
  };
}

function seedPolicies(): Policy[] {
  return [
    { name: 'admin', statements: [{ effect: 'Allow', actions: ['*'], resources: ['*'] }] },
    { name: 'read-only', statements: [{ effect: 'Allow', actions: ['*:Get*', '*:List*'], resources: ['*'] }] },
    { name: 'backup-operator', statements: [{ effect: 'Allow', actions: ['backup:*'], resources: ['backup/*'] }] },
    ...COMPONENT_KINDS.map(([kind]) => ({
      name: `${kind}-operator`,
      statements: [
        { effect: 'Allow' as const, actions: [`${kind}:*`], resources: [`component/${kind}/*`] },
        { effect: 'Deny' as const, actions: [`${kind}:Delete*`], resources: ['*'] },
      ],
    })),
  ];
}

function policiesFor(group: (typeof GROUPS)[number]): string[] {
  switch (group) {
    case 'admins':
      return ['admin'];
    case 'operators':
      return ['backup-operator', ...COMPONENT_KINDS.map(([kind]) => `${kind}-operator`)];
    default:
      return ['read-only'];
  }
}

async function makeUser(name: string): Promise<User> {
  return {
    name,
    email: `${name}@example.com`,
    passwordHash: await hashPassword(randomToken(20)),
    groups: [GROUPS[randomInt(GROUPS.length)] ?? 'analysts'],
    disabled: false,
    createdAt: new Date().toISOString(),
  };
}

function makeAccessKey(user: string): AccessKey {
  return { id: `AK${randomBytes(9).toString('hex').toUpperCase()}`, user, status: 'active', createdAt: new Date().toISOString() };
}

function makeComponent(cluster: string, nodeId: string, index: number): Component {
  const [kind, version] = COMPONENT_KINDS[index % COMPONENT_KINDS.length] ?? COMPONENT_KINDS[0];
  const id = `${kind}-${randomUUID()}`;
  const config: Record<string, string> = {
    'heap.max': `${4 + (index % 8)}g`,
    'data.dir': `/data/${kind}/${id}`,
    'log.dir': `/var/log/${kind}`,
    'listen.port': String(9000 + (index % 1000)),
    'replication.factor': '3',
    'jvm.opts': '-XX:+UseG1GC -XX:MaxGCPauseMillis=200 -XX:+ExitOnOutOfMemoryError',
  };
  for (let p = 0; p < 24; p++) config[`${kind}.tuning.p${p}`] = String(randomInt(1, 100000));
  return { id, kind, version, cluster, nodeId, config, tlsCertificate: fakeCertificatePem(), createdAt: new Date().toISOString() };
}

/** A PEM block with random content: certificate-sized and, like real DER, incompressible. */
function fakeCertificatePem(): string {
  const body = randomBytes(1200).toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
}

function randomToken(length: number): string {
  return randomBytes(length).toString('base64url').slice(0, length);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}
