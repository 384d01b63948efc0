import { describe, expect, it } from 'vitest';
import { TopologyHolder } from '../../../src/topology/holder.js';
import type { TopologySnapshot } from '../../../src/routing/topology.js';

const snap = (version: number, primary: string | null): TopologySnapshot => ({ cluster: 'c', version, takenAt: version, nodes: [], primary, splitBrain: false });

describe('TopologyHolder.onPublish', () => {
  it('calls listeners synchronously with every published snapshot until unsubscribed; waiters still work', async () => {
    const h = new TopologyHolder(snap(0, null));
    const seen: string[] = [];
    const waiting = h.waitFor((s) => s.primary !== null, 1000).then((s) => seen.push(`waiter resolved ${s?.version}`));
    const off = h.onPublish((s) => seen.push(`listener ${s.version} current=${h.current().version}`));
    h.publish(snap(1, 'pg0'));
    h.publish(snap(2, 'pg0'));
    off();
    h.publish(snap(3, 'pg0'));
    await waiting;
    expect(seen).toEqual(['listener 1 current=1', 'listener 2 current=2', 'waiter resolved 1']);
  });
});
