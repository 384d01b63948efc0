/**
 * The topology snapshot the router reads: immutable, published by monitors.
 * Pure types and helpers only.
 */
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
  /** PostgreSQL: replayed WAL position (replica) or current WAL position (primary). */
  readonly replayPosition: bigint | null;
}

export interface TopologySnapshot {
  readonly cluster: string;
  readonly version: number;
  readonly takenAt: number;
  readonly nodes: readonly NodeState[];
  readonly primary: string | null;
  readonly splitBrain: boolean;
}

/** Roles from config: `primary` is the primary, the others replicas; all up, no lag. */
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
    nodes: nodes.map((n) => ({
      ...n,
      role: n.name === primary ? 'primary' : 'replica',
      up: true,
      drained: false,
      lagBytes: n.name === primary ? null : 0,
      lagSeconds: n.name === primary ? null : 0,
      replayPosition: null,
    })),
  };
}

/** PostgreSQL LSN text 'X/Y' (two hex halves) to a 64-bit number. */
export function parseLsn(text: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!m) throw new Error(`invalid LSN "${text}"`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}
