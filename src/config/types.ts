/**
 * The normalized configuration, after YAML parsing, ${VAR} expansion, zod
 * validation and unit conversion. Durations are milliseconds, sizes are bytes.
 * This is what the rest of switchyard consumes; src/config/schema.ts produces it
 * (and checks at compile time that its output matches these types).
 */
export type Protocol = 'postgres' | 'mysql';

export interface AdminConfig {
  listen: string; // host:port
  token: string; // '' disables POST actions
}

export interface LogConfig {
  level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  format: 'json' | 'pretty';
}

export interface LimitsConfig {
  max_client_connections: number;
  max_message_size: number; // bytes
  auth_timeout: number; // ms
  client_idle_timeout: number; // ms, 0 = none
}

export interface TlsConfig {
  cert: string;
  key: string;
  mode: 'disable' | 'prefer' | 'require';
}

export interface BackendTlsConfig {
  mode: 'disable' | 'prefer' | 'require' | 'verify-full';
  ca?: string;
}

export interface NodeConfig {
  name: string;
  host: string;
  port: number;
  weight: number; // default 1
}

export type RolesConfig = 'auto' | { primary: string };

export interface UserConfig {
  name: string;
  password: string;
  /** How clients prove the password to the proxy (PostgreSQL: scram-sha-256 | md5). */
  auth: 'scram-sha-256' | 'md5';
}

export interface PoolConfig {
  mode: 'transaction' | 'session';
  size: number;
  min_idle: number;
  acquire_timeout: number; // ms
  idle_timeout: number; // ms
  /** Named statements kept prepared per server connection (LRU). */
  prepared_statements: number;
  /** One deadline for a new backend connection: TCP connect + TLS + login (ms). */
  connect_timeout: number;
}

export interface RoutingConfig {
  primary_reads: number;
  max_replica_lag: { bytes: number; time: number }; // bytes, ms
  when_no_replica: 'primary' | 'error';
  consistency: 'eventual' | 'causal';
  write_functions: string[];
  read_functions: string[];
}

export interface HealthConfig {
  interval: number; // ms
  timeout: number; // ms
  fall: number;
  rise: number;
}

export interface FailoverConfig {
  write_hold: number; // ms
}

export interface DiscoveryConfig {
  patroni: string[];
}

export interface ClusterConfig {
  name: string;
  protocol: Protocol;
  listen: string; // host:port
  listen_read_only?: string;
  tls?: TlsConfig;
  backend_tls: BackendTlsConfig;
  nodes: NodeConfig[];
  roles: RolesConfig;
  discovery?: DiscoveryConfig;
  users: UserConfig[];
  pool: PoolConfig;
  routing: RoutingConfig;
  health: HealthConfig;
  failover: FailoverConfig;
}

export interface Config {
  admin: AdminConfig;
  log: LogConfig;
  limits: LimitsConfig;
  clusters: ClusterConfig[];
}
