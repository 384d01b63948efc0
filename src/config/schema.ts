import { z } from 'zod';
import { parseDuration, parseSize } from './units.js';
import type { Config } from './types.js';

/** Every default in one place; docs/configuration.md cites these. */
export const DEFAULTS = {
  admin: { listen: '127.0.0.1:9190', token: '' },
  log: { level: 'info', format: 'json' },
  limits: { max_client_connections: 10000, max_message_size: '64MB', auth_timeout: '10s', client_idle_timeout: '0s' },
  tls: { mode: 'prefer' },
  backend_tls: { mode: 'disable' },
  node: { weight: 1 },
  roles: 'auto',
  pool: { mode: 'transaction', size: 20, min_idle: 0, acquire_timeout: '5s', idle_timeout: '60s' },
  routing: {
    primary_reads: 0,
    max_replica_lag: { bytes: '16MB', time: '1s' },
    when_no_replica: 'primary',
    consistency: 'causal',
    write_functions: [] as string[],
    read_functions: [] as string[],
  },
  health: { interval: '250ms', timeout: '1s', fall: 3, rise: 2 },
  failover: { write_hold: '10s' },
} as const;

const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const r = parseDuration(v);
  if (!r.ok) {
    ctx.addIssue({ code: 'custom', message: r.message });
    return z.NEVER;
  }
  return r.ms;
});

const size = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const r = parseSize(v);
  if (!r.ok) {
    ctx.addIssue({ code: 'custom', message: r.message });
    return z.NEVER;
  }
  return r.bytes;
});

const listenAddress = z.string().superRefine((v, ctx) => {
  const m = /^\[(.+)\]:(\d+)$/.exec(v) ?? /^([^:\s]*):(\d+)$/.exec(v);
  if (!m) {
    ctx.addIssue({ code: 'custom', message: `invalid address "${v}": expected host:port` });
    return;
  }
  const port = Number(m[2]);
  if (port < 1 || port > 65535) ctx.addIssue({ code: 'custom', message: `port ${port} must be between 1 and 65535` });
});

const name = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'names are 1-64 letters, digits, _ . or -');

const nodeSchema = z.strictObject({
  name,
  host: z.string().min(1),
  port: z.number().int().min(1, 'port must be between 1 and 65535').max(65535, 'port must be between 1 and 65535'),
  weight: z.number().min(0, 'weight must be >= 0').default(DEFAULTS.node.weight),
});

const clusterSchema = z.strictObject({
  name,
  protocol: z.enum(['postgres', 'mysql']),
  listen: listenAddress,
  listen_read_only: listenAddress.optional(),
  tls: z
    .strictObject({
      cert: z.string().optional(),
      key: z.string().optional(),
      mode: z.enum(['disable', 'prefer', 'require']).default(DEFAULTS.tls.mode),
    })
    .optional(),
  backend_tls: z
    .strictObject({
      mode: z.enum(['disable', 'prefer', 'require', 'verify-full']).default(DEFAULTS.backend_tls.mode),
      ca: z.string().optional(),
    })
    .prefault({}),
  nodes: z.array(nodeSchema).min(1, 'a cluster needs at least one node'),
  roles: z.union([z.literal('auto'), z.strictObject({ primary: z.string() })]).default(DEFAULTS.roles),
  discovery: z.strictObject({ patroni: z.array(z.string().url()).min(1) }).optional(),
  users: z.array(z.strictObject({ name: z.string().min(1), password: z.string() })).min(1, 'a cluster needs at least one user'),
  pool: z
    .strictObject({
      mode: z.enum(['transaction', 'session']).default(DEFAULTS.pool.mode),
      size: z.number().int().min(1, 'pool.size must be >= 1').default(DEFAULTS.pool.size),
      min_idle: z.number().int().min(0).default(DEFAULTS.pool.min_idle),
      acquire_timeout: duration.prefault(DEFAULTS.pool.acquire_timeout),
      idle_timeout: duration.prefault(DEFAULTS.pool.idle_timeout),
    })
    .prefault({}),
  routing: z
    .strictObject({
      primary_reads: z.number().min(0).default(DEFAULTS.routing.primary_reads),
      max_replica_lag: z
        .strictObject({
          bytes: size.prefault(DEFAULTS.routing.max_replica_lag.bytes),
          time: duration.prefault(DEFAULTS.routing.max_replica_lag.time),
        })
        .prefault({}),
      when_no_replica: z.enum(['primary', 'error']).default(DEFAULTS.routing.when_no_replica),
      consistency: z.enum(['eventual', 'causal']).default(DEFAULTS.routing.consistency),
      write_functions: z.array(z.string().min(1)).default([]),
      read_functions: z.array(z.string().min(1)).default([]),
    })
    .prefault({}),
  health: z
    .strictObject({
      interval: duration.prefault(DEFAULTS.health.interval),
      timeout: duration.prefault(DEFAULTS.health.timeout),
      fall: z.number().int().min(1, 'fall must be >= 1').default(DEFAULTS.health.fall),
      rise: z.number().int().min(1, 'rise must be >= 1').default(DEFAULTS.health.rise),
    })
    .prefault({}),
  failover: z.strictObject({ write_hold: duration.prefault(DEFAULTS.failover.write_hold) }).prefault({}),
});

const baseSchema = z.strictObject({
  admin: z
    .strictObject({
      listen: listenAddress.default(DEFAULTS.admin.listen),
      token: z.string().default(DEFAULTS.admin.token),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default(DEFAULTS.log.level),
      format: z.enum(['json', 'pretty']).default(DEFAULTS.log.format),
    })
    .prefault({}),
  limits: z
    .strictObject({
      max_client_connections: z.number().int().min(1).default(DEFAULTS.limits.max_client_connections),
      max_message_size: size.prefault(DEFAULTS.limits.max_message_size),
      auth_timeout: duration.prefault(DEFAULTS.limits.auth_timeout),
      client_idle_timeout: duration.prefault(DEFAULTS.limits.client_idle_timeout),
    })
    .prefault({}),
  clusters: z.array(clusterSchema).min(1, 'at least one cluster is needed'),
});

type Parsed = z.output<typeof baseSchema>;

export const configSchema = baseSchema.superRefine(semanticChecks);

/** Checks across keys that a per-field schema cannot express; each issue names its key path. */
function semanticChecks(c: Parsed, ctx: z.RefinementCtx): void {
  const addresses = new Map<string, string>();
  const claim = (addr: string | undefined, path: (string | number)[]) => {
    if (!addr) return;
    const prev = addresses.get(addr);
    if (prev) ctx.addIssue({ code: 'custom', path, message: `listen address ${addr} is already used by ${prev}` });
    else addresses.set(addr, path.join('.'));
  };
  claim(c.admin.listen, ['admin', 'listen']);
  const clusterNames = new Set<string>();
  c.clusters.forEach((cl, i) => {
    if (clusterNames.has(cl.name)) ctx.addIssue({ code: 'custom', path: ['clusters', i, 'name'], message: `duplicate cluster name "${cl.name}"` });
    clusterNames.add(cl.name);
    claim(cl.listen, ['clusters', i, 'listen']);
    claim(cl.listen_read_only, ['clusters', i, 'listen_read_only']);
    const nodeNames = new Set<string>();
    cl.nodes.forEach((n, j) => {
      if (nodeNames.has(n.name)) ctx.addIssue({ code: 'custom', path: ['clusters', i, 'nodes', j, 'name'], message: `duplicate node name "${n.name}" in cluster ${cl.name}` });
      nodeNames.add(n.name);
    });
    if (cl.roles !== 'auto' && !nodeNames.has(cl.roles.primary)) {
      ctx.addIssue({ code: 'custom', path: ['clusters', i, 'roles', 'primary'], message: `roles.primary "${cl.roles.primary}" is not a node of cluster ${cl.name}` });
    }
    const userNames = new Set<string>();
    cl.users.forEach((u, j) => {
      if (userNames.has(u.name)) ctx.addIssue({ code: 'custom', path: ['clusters', i, 'users', j, 'name'], message: `duplicate user "${u.name}"` });
      userNames.add(u.name);
    });
    if (cl.pool.min_idle > cl.pool.size) ctx.addIssue({ code: 'custom', path: ['clusters', i, 'pool', 'min_idle'], message: `min_idle (${cl.pool.min_idle}) must not exceed size (${cl.pool.size})` });
    if (cl.routing.max_replica_lag.bytes <= 0) ctx.addIssue({ code: 'custom', path: ['clusters', i, 'routing', 'max_replica_lag', 'bytes'], message: 'must be greater than 0' });
    if (cl.routing.max_replica_lag.time <= 0) ctx.addIssue({ code: 'custom', path: ['clusters', i, 'routing', 'max_replica_lag', 'time'], message: 'must be greater than 0' });
    if (cl.health.interval <= 0) ctx.addIssue({ code: 'custom', path: ['clusters', i, 'health', 'interval'], message: 'must be greater than 0' });
    if (cl.health.timeout <= 0) ctx.addIssue({ code: 'custom', path: ['clusters', i, 'health', 'timeout'], message: 'must be greater than 0' });
    if (cl.tls && cl.tls.mode !== 'disable') {
      if (!cl.tls.cert) ctx.addIssue({ code: 'custom', path: ['clusters', i, 'tls', 'cert'], message: 'tls.cert is required unless tls.mode is disable' });
      if (!cl.tls.key) ctx.addIssue({ code: 'custom', path: ['clusters', i, 'tls', 'key'], message: 'tls.key is required unless tls.mode is disable' });
    }
    if (cl.backend_tls.mode === 'verify-full' && !cl.backend_tls.ca) {
      ctx.addIssue({ code: 'custom', path: ['clusters', i, 'backend_tls', 'ca'], message: 'backend_tls.ca is required with mode verify-full' });
    }
  });
}

/**
 * What the schema produces, as the Config the rest of switchyard uses. TLS
 * cert/key are optional in the schema only for `mode: disable`, which the
 * semantic checks enforce.
 */
export function toConfig(parsed: Parsed): Config {
  return {
    ...parsed,
    clusters: parsed.clusters.map((c) => ({
      ...c,
      tls: c.tls ? { cert: c.tls.cert ?? '', key: c.tls.key ?? '', mode: c.tls.mode } : undefined,
    })),
  };
}
