import { z } from 'zod';
import { parseDuration, parseSize } from './units.js';
import type { Config } from './types.js';

/**
 * Every default in one place: the schema below uses these, docs/configuration.md
 * cites them. Durations and sizes are written as a user would write them.
 */
export const DEFAULTS = {
  admin: { listen: '127.0.0.1:9190', token: '' },
  log: { level: 'info', format: 'json' },
  limits: { max_client_connections: 10000, max_message_size: '64MB', auth_timeout: '10s', client_idle_timeout: '0s' },
  tls: { mode: 'prefer' },
  backend_tls: { mode: 'disable' },
  node: { weight: 1 },
  roles: 'auto',
  pool: { mode: 'transaction', size: 20, min_idle: 0, acquire_timeout: '5s', idle_timeout: '60s', prepared_statements: 256, connect_timeout: '5s' },
  routing: {
    primary_reads: 0,
    max_replica_lag: { bytes: '16MB', time: '1s' },
    when_no_replica: 'primary',
    consistency: 'causal',
    write_functions: [],
    read_functions: [],
  },
  health: { interval: '250ms', timeout: '1s', fall: 3, rise: 2 },
  failover: { write_hold: '10s' },
} as const;

const PORT_RANGE = 'must be between 1 and 65535';

/** Splits `host:port` or `[v6]:port`; an empty host means every interface. */
export function parseListenAddress(address: string): { ok: true; host: string; port: number } | { ok: false; message: string } {
  const m = /^\[([^\]\s]+)\]:(\d{1,5})$/.exec(address) ?? /^([^:\s[\]]*):(\d{1,5})$/.exec(address);
  if (!m) return { ok: false, message: `invalid address "${address}": expected host:port (or [ipv6]:port)` };
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return { ok: false, message: `port ${port} ${PORT_RANGE}` };
  return { ok: true, host: m[1]!, port };
}

const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const r = parseDuration(v);
  if (r.ok) return r.ms;
  ctx.addIssue({ code: 'custom', message: r.message });
  return z.NEVER;
});

const size = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const r = parseSize(v);
  if (r.ok) return r.bytes;
  ctx.addIssue({ code: 'custom', message: r.message });
  return z.NEVER;
});

const listenAddress = z.string().superRefine((v, ctx) => {
  const r = parseListenAddress(v);
  if (!r.ok) ctx.addIssue({ code: 'custom', message: r.message });
});

const count = (min: number) => z.int().min(min, `must be >= ${min}`);
const name = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'names are 1-64 letters, digits, _ . or -');
const functionNames = (fallback: readonly string[]) => z.array(z.string().min(1)).default(() => [...fallback]);

const nodeSchema = z.strictObject({
  name,
  host: z.string().regex(/^\S+$/, 'must be a host name or address without spaces'),
  port: z.int().min(1, PORT_RANGE).max(65535, PORT_RANGE),
  weight: z.number().min(0, 'must be >= 0').default(DEFAULTS.node.weight),
});

const clusterSchema = z.strictObject({
  name,
  protocol: z.enum(['postgres', 'mysql']),
  listen: listenAddress,
  listen_read_only: listenAddress.optional(),
  // cert/key are optional here only so that `mode: disable` needs neither; the semantic checks require them otherwise.
  tls: z
    .strictObject({
      cert: z.string().min(1).optional(),
      key: z.string().min(1).optional(),
      mode: z.enum(['disable', 'prefer', 'require']).default(DEFAULTS.tls.mode),
    })
    .optional(),
  backend_tls: z
    .strictObject({
      mode: z.enum(['disable', 'prefer', 'require', 'verify-full']).default(DEFAULTS.backend_tls.mode),
      ca: z.string().min(1).optional(),
    })
    .prefault({}),
  nodes: z.array(nodeSchema).min(1, 'a cluster needs at least one node'),
  roles: z
    .union([z.literal('auto'), z.strictObject({ primary: z.string() })], { error: 'must be auto or { primary: NODE }' })
    .default(DEFAULTS.roles),
  discovery: z
    .strictObject({ patroni: z.array(z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })).min(1, 'list at least one Patroni URL') })
    .optional(),
  users: z.array(z.strictObject({ name: z.string().min(1), password: z.string(), auth: z.enum(['scram-sha-256', 'md5']).default('scram-sha-256') })).min(1, 'a cluster needs at least one user'),
  pool: z
    .strictObject({
      mode: z.enum(['transaction', 'session']).default(DEFAULTS.pool.mode),
      size: count(1).default(DEFAULTS.pool.size),
      min_idle: count(0).default(DEFAULTS.pool.min_idle),
      acquire_timeout: duration.prefault(DEFAULTS.pool.acquire_timeout),
      idle_timeout: duration.prefault(DEFAULTS.pool.idle_timeout),
      prepared_statements: count(1).default(DEFAULTS.pool.prepared_statements),
      connect_timeout: duration.prefault(DEFAULTS.pool.connect_timeout),
    })
    .prefault({}),
  routing: z
    .strictObject({
      primary_reads: z.number().min(0, 'must be >= 0').default(DEFAULTS.routing.primary_reads),
      max_replica_lag: z
        .strictObject({
          bytes: size.prefault(DEFAULTS.routing.max_replica_lag.bytes),
          time: duration.prefault(DEFAULTS.routing.max_replica_lag.time),
        })
        .prefault({}),
      when_no_replica: z.enum(['primary', 'error']).default(DEFAULTS.routing.when_no_replica),
      consistency: z.enum(['eventual', 'causal']).default(DEFAULTS.routing.consistency),
      write_functions: functionNames(DEFAULTS.routing.write_functions),
      read_functions: functionNames(DEFAULTS.routing.read_functions),
    })
    .prefault({}),
  health: z
    .strictObject({
      interval: duration.prefault(DEFAULTS.health.interval),
      timeout: duration.prefault(DEFAULTS.health.timeout),
      fall: count(1).default(DEFAULTS.health.fall),
      rise: count(1).default(DEFAULTS.health.rise),
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
      max_client_connections: count(1).default(DEFAULTS.limits.max_client_connections),
      max_message_size: size.prefault(DEFAULTS.limits.max_message_size),
      auth_timeout: duration.prefault(DEFAULTS.limits.auth_timeout),
      client_idle_timeout: duration.prefault(DEFAULTS.limits.client_idle_timeout),
    })
    .prefault({}),
  clusters: z.array(clusterSchema).min(1, 'at least one cluster is needed'),
});

type Parsed = z.output<typeof baseSchema>;
type Path = (string | number)[];

/**
 * The config file's schema: strict shape and defaults, then the checks across
 * keys, then the normalized Config. Parse it with safeParse; every issue carries
 * the key path that load.ts turns into a YAML line.
 */
export const configSchema = baseSchema.superRefine(semanticChecks).transform(toConfig);

// Compile-time proof that what the schema produces is the Config the rest of switchyard consumes.
const _outputIsConfig: (parsed: z.output<typeof configSchema>) => Config = (parsed) => parsed;
void _outputIsConfig;

/** Checks across keys that a per-field schema cannot express; each issue names its key path. */
function semanticChecks(c: Parsed, ctx: z.RefinementCtx): void {
  const issue = (path: Path, message: string) => ctx.addIssue({ code: 'custom', path, message });
  const claimAddress = addressRegistry(issue);
  claimAddress(c.admin.listen, ['admin', 'listen']);
  const clusterNames = new Set<string>();
  c.clusters.forEach((cl, i) => {
    const at = (...rest: Path): Path => ['clusters', i, ...rest];
    if (clusterNames.has(cl.name)) issue(at('name'), `duplicate cluster name "${cl.name}"`);
    clusterNames.add(cl.name);
    claimAddress(cl.listen, at('listen'));
    if (cl.listen_read_only !== undefined) claimAddress(cl.listen_read_only, at('listen_read_only'));

    const nodeNames = new Set<string>();
    cl.nodes.forEach((n, j) => {
      if (nodeNames.has(n.name)) issue(at('nodes', j, 'name'), `duplicate node name "${n.name}" in cluster ${cl.name}`);
      nodeNames.add(n.name);
    });
    if (cl.roles !== 'auto' && !nodeNames.has(cl.roles.primary)) {
      issue(at('roles', 'primary'), `"${cl.roles.primary}" is not a node of cluster ${cl.name} (nodes: ${[...nodeNames].join(', ')})`);
    }
    const userNames = new Set<string>();
    cl.users.forEach((u, j) => {
      if (userNames.has(u.name)) issue(at('users', j, 'name'), `duplicate user "${u.name}" in cluster ${cl.name}`);
      userNames.add(u.name);
    });

    if (cl.pool.min_idle > cl.pool.size) issue(at('pool', 'min_idle'), `min_idle (${cl.pool.min_idle}) must not exceed pool.size (${cl.pool.size})`);
    if (cl.routing.max_replica_lag.bytes <= 0) issue(at('routing', 'max_replica_lag', 'bytes'), 'must be greater than 0');
    if (cl.routing.max_replica_lag.time <= 0) issue(at('routing', 'max_replica_lag', 'time'), 'must be greater than 0');
    if (cl.health.interval <= 0) issue(at('health', 'interval'), 'must be greater than 0');
    if (cl.health.timeout <= 0) issue(at('health', 'timeout'), 'must be greater than 0');
    if (cl.pool.connect_timeout <= 0) issue(at('pool', 'connect_timeout'), 'must be greater than 0');
    if (cl.tls && cl.tls.mode !== 'disable') {
      if (!cl.tls.cert) issue(at('tls', 'cert'), `is required unless tls.mode is disable`);
      if (!cl.tls.key) issue(at('tls', 'key'), `is required unless tls.mode is disable`);
    }
    if (cl.backend_tls.mode === 'verify-full' && !cl.backend_tls.ca) issue(at('backend_tls', 'ca'), 'is required with backend_tls.mode verify-full');
    // Patroni manages PostgreSQL only; a MySQL monitor would silently ignore the key.
    if (cl.discovery && cl.protocol !== 'postgres') issue(at('discovery', 'patroni'), 'Patroni discovery is for protocol: postgres clusters only');
  });
}

const WILDCARD_HOSTS = new Set(['', '0.0.0.0', '::', '*']);

/**
 * Remembers every listen address; a second claim on the same port fails when the
 * hosts are equal or either is a wildcard (binding both would fail at start).
 */
function addressRegistry(issue: (path: Path, message: string) => void) {
  const claimed: { host: string; port: number; address: string; path: string }[] = [];
  return (address: string, path: Path): void => {
    const parsed = parseListenAddress(address);
    if (!parsed.ok) return; // already reported by the field schema
    const host = parsed.host.toLowerCase();
    const clash = claimed.find((c) => c.port === parsed.port && (c.host === host || WILDCARD_HOSTS.has(c.host) || WILDCARD_HOSTS.has(host)));
    if (clash) issue(path, `listen address ${address} is already used by ${clash.path} (${clash.address})`);
    else claimed.push({ host, port: parsed.port, address, path: formatKeyPath(path) });
  };
}

/** `['clusters', 0, 'nodes', 1, 'port']` -> `clusters[0].nodes[1].port` */
export function formatKeyPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${p}` : p;
  return out;
}

/** Fills the TLS cert/key that the semantic checks guarantee unless mode is disable. */
function toConfig(parsed: Parsed): Config {
  return {
    ...parsed,
    clusters: parsed.clusters.map(({ tls, ...cluster }) => ({
      ...cluster,
      ...(tls ? { tls: { cert: tls.cert ?? '', key: tls.key ?? '', mode: tls.mode } } : {}),
    })),
  };
}
