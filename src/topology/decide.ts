import type { NodeRole, NodeState, TopologySnapshot } from '../routing/topology.js';

/**
 * Pure topology decisions: from the latest probe of each node and the previous
 * state, compute health (fall/rise), roles, and lag. Monitors only gather
 * probes and publish what this returns.
 */
export interface NodeProbe {
  name: string;
  ok: boolean;
  /** Writable (primary) or read-only (replica), when ok. */
  writable?: boolean;
  /** PG: current WAL LSN on a primary, replayed LSN on a replica. */
  position?: bigint | null;
  error?: string;
  /**
   * The node refused the connection (nothing listens): certain, so it counts
   * as `fall` failures at once, as does a failed connect on the hot path.
   */
  refused?: boolean;
}

export interface NodeHealth {
  up: boolean;
  /** Consecutive results that disagree with `up` (counts toward fall or rise). */
  streak: number;
  role: NodeRole;
  position: bigint | null;
  lastError?: string;
}

export interface PositionSample {
  at: number;
  position: bigint;
}

export interface TopologyInputs {
  cluster: string;
  nodes: readonly { name: string; host: string; port: number; weight: number }[];
  staticPrimary: string | null;
  fall: number;
  rise: number;
  drained: ReadonlySet<string>;
}

/** 1. fall/rise: a node changes state only after `fall` failures or `rise` successes in a row. */
export function nextHealth(prev: NodeHealth | undefined, probe: NodeProbe, fall: number, rise: number): NodeHealth {
  if (!prev) {
    // First probe decides at once: there is no earlier state to protect.
    return { up: probe.ok, streak: 0, role: roleOf(probe), position: probe.position ?? null, lastError: probe.error };
  }
  const agrees = probe.ok === prev.up;
  const streak = agrees ? 0 : probe.refused && prev.up ? fall : prev.streak + 1;
  const flip = !agrees && streak >= (prev.up ? fall : rise);
  const up = flip ? !prev.up : prev.up;
  return {
    up,
    streak: flip ? 0 : streak,
    role: probe.ok ? roleOf(probe) : prev.role,
    position: probe.ok ? (probe.position ?? null) : prev.position,
    lastError: probe.ok ? undefined : probe.error,
  };
}

function roleOf(probe: NodeProbe): NodeRole {
  if (!probe.ok || probe.writable === undefined) return 'unknown';
  return probe.writable ? 'primary' : 'replica';
}

/**
 * 2. Lag time: how long ago the primary was at the replica's replay position,
 * from the primary's recent (time, position) samples. A replica at or past the
 * newest sample has zero lag, so an idle primary reads as zero lag.
 */
export function lagSeconds(history: readonly PositionSample[], replayed: bigint, now: number): number | null {
  if (history.length === 0) return null;
  const newest = history[history.length - 1]!;
  if (replayed >= newest.position) return 0;
  // The first sample past the replayed position is when the replica started being behind it.
  for (const s of history) {
    if (s.position > replayed) return Math.max(0, (now - s.at) / 1000);
  }
  return 0;
}

/** 3. Assemble the snapshot: roles (static or discovered), primary, split brain, lag. */
export function buildSnapshot(
  inputs: TopologyInputs,
  health: ReadonlyMap<string, NodeHealth>,
  history: readonly PositionSample[],
  version: number,
  now: number,
  /** When the round that measured the primary's position started (read-your-writes needs it). */
  sampledAt: number = now,
): TopologySnapshot {
  const writable = inputs.nodes.filter((n) => {
    const h = health.get(n.name);
    return h?.up && h.role === 'primary';
  });
  let primary: string | null;
  let splitBrain = false;
  if (inputs.staticPrimary) {
    const h = health.get(inputs.staticPrimary);
    primary = h?.up ? inputs.staticPrimary : null;
  } else if (writable.length === 1) {
    primary = writable[0]!.name;
  } else {
    primary = null;
    splitBrain = writable.length > 1;
  }
  // With no primary (failover under way, not split brain) lag is measured against the last position the
  // primary was seen at: a replica that replayed all of it is as fresh as anything, so reads keep going to replicas.
  const lastKnown = !splitBrain && history.length > 0 ? history[history.length - 1]!.position : null;
  const primaryPos = primary ? (health.get(primary)?.position ?? null) : lastKnown;
  const nodes: NodeState[] = inputs.nodes.map((n) => {
    const h = health.get(n.name);
    const role: NodeRole = inputs.staticPrimary ? (n.name === inputs.staticPrimary ? 'primary' : 'replica') : (h?.role ?? 'unknown');
    let lagBytes: number | null = null;
    let lag: number | null = null;
    if (role === 'replica' && h?.up && h.position !== null && primaryPos !== null) {
      lagBytes = h.position >= primaryPos ? 0 : Number(primaryPos - h.position);
      lag = lagSeconds(history, h.position, now);
    }
    return {
      name: n.name,
      host: n.host,
      port: n.port,
      weight: n.weight,
      role,
      up: h?.up ?? false,
      drained: inputs.drained.has(n.name),
      lagBytes,
      lagSeconds: lag,
      replayPosition: h?.position ?? null,
    };
  });
  return { cluster: inputs.cluster, version, takenAt: now, sampledAt, nodes, primary, splitBrain };
}

/**
 * Keeps the primary's position history short: samples from the last `keepMs`
 * (plus the one just before, so the window's start is still known), at most `max`.
 * Lag older than the window reads as the window's length.
 */
export function pushSample(history: PositionSample[], sample: PositionSample, keepMs: number, max = 512): void {
  const last = history[history.length - 1];
  // Only movement is recorded: an idle primary keeps the sample of when it got there.
  if (!last || sample.position !== last.position) history.push(sample);
  const cutoff = sample.at - keepMs;
  while (history.length > max || (history.length > 1 && history[1]!.at < cutoff)) history.shift();
}
