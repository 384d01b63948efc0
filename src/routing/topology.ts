/**
 * The topology snapshot the router reads: immutable, published by monitors.
 * Pure types and helpers only (no I/O, no clock: `now` is passed in).
 */
import { ErrorCodes, SwitchyardError } from '../errors.js';

export type NodeRole = 'primary' | 'replica' | 'unknown';

export interface NodeState {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  readonly role: NodeRole;
  readonly up: boolean;
  readonly drained: boolean;
  readonly lagBytes: number | null;
  readonly lagSeconds: number | null;
  /**
   * PostgreSQL: replayed WAL position (replica) or current WAL position (primary).
   * MySQL/MariaDB: the same ordering over GTID positions (src/topology/gtid.ts:
   * the primary's sum of sequence numbers; a replica's newest fully applied sample of it).
   */
  readonly replayPosition: bigint | null;
  /** MySQL/MariaDB only: the node's applied GTID position as text (gtid.ts formatGtidPos), for exact GTID checks. */
  readonly replayGtid?: string | null;
  /** MySQL/MariaDB replicas only: the server's own Seconds_Behind_Master (null when replication is stopped). */
  readonly secondsBehindSource?: number | null;
  /** With `discovery.patroni`: what Patroni says of this node (src/topology/patroni.ts). */
  readonly patroni?: PatroniNodeState;
  /** MySQL Group Replication: the member's own MEMBER_STATE and MEMBER_ROLE (src/topology/mysql-group.ts). */
  readonly groupReplication?: { readonly state: string; readonly role: string; readonly multiPrimary: boolean };
}

/** Patroni's view of one configured node; member null when Patroni does not list it. */
export interface PatroniNodeState {
  readonly member: string | null;
  readonly role: string | null;
  readonly state: string | null;
  /** Tag: never a read target. */
  readonly noloadbalance: boolean;
  /** Tag: Patroni never promotes it (shown only). */
  readonly nofailover: boolean;
}

export interface TopologySnapshot {
  readonly cluster: string;
  readonly version: number;
  readonly takenAt: number;
  /**
   * When the probe round behind the positions started: every position in the
   * snapshot was read after this moment. Absent in static snapshots.
   */
  readonly sampledAt?: number;
  readonly nodes: readonly NodeState[];
  readonly primary: string | null;
  readonly splitBrain: boolean;
  /** With `discovery.patroni`: did the last fetch of /cluster succeed, and whom it names leader. */
  readonly patroni?: { readonly reachable: boolean; readonly leader: string | null };
}

/**
 * Roles from config: `primary` is the primary, the others replicas; all up,
 * replicas at lag 0. The primary's lag is null, as in monitored snapshots: lag
 * is measured against the primary, so it has none to report.
 */
export function staticSnapshot(
  cluster: string,
  nodes: readonly { name: string; host: string; port: number; weight: number }[],
  primary: string,
  now: number,
): TopologySnapshot {
  return {
    cluster,
    version: 1,
    takenAt: now,
    primary,
    splitBrain: false,
    nodes: nodes.map((n) => {
      const isPrimary = n.name === primary;
      return {
        name: n.name,
        host: n.host,
        port: n.port,
        weight: n.weight,
        role: isPrimary ? 'primary' : 'replica',
        up: true,
        drained: false,
        lagBytes: isPrimary ? null : 0,
        lagSeconds: isPrimary ? null : 0,
        replayPosition: null,
      };
    }),
  };
}

const LSN_PATTERN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;
const MAX_LSN = (1n << 64n) - 1n;

/** PostgreSQL LSN text 'X/Y' (two 32-bit hex halves) to a 64-bit number. */
export function parseLsn(text: string): bigint {
  const m = LSN_PATTERN.exec(text);
  if (!m) throw new SwitchyardError(ErrorCodes.INTERNAL, `invalid PostgreSQL LSN "${text}" (expected two hex halves like 16/B374D848)`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** A 64-bit position as PostgreSQL prints it: upper-case hex halves, no leading zeros. */
export function formatLsn(lsn: bigint): string {
  if (lsn < 0n || lsn > MAX_LSN) throw new SwitchyardError(ErrorCodes.INTERNAL, `LSN out of range: ${lsn}`);
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}
