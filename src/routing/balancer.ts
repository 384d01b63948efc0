/**
 * Smooth weighted round-robin (nginx's algorithm). On each pick every
 * candidate's current value grows by its weight, the largest wins (ties: the
 * earlier candidate), and the winner's value drops by the total weight. Over
 * sum(weights) picks with a fixed candidate list each candidate is chosen
 * exactly `weight` times, spread out (2:1 gives a a b a a b ...). Deterministic.
 */
export class SmoothWeightedBalancer {
  /** Per name: its running value, and the pick that last saw it (to forget names that left). */
  private readonly current = new Map<string, { value: number; seenAt: number }>();
  private picks = 0;

  /**
   * The next candidate, or undefined when none has a positive weight.
   * Candidates may change between calls: a new name starts at 0, and a name
   * that left (or dropped to weight 0) is forgotten so it starts fresh when it
   * comes back. Updates in place: a pick allocates nothing once every name is known.
   */
  pick(candidates: readonly { name: string; weight: number }[]): string | undefined {
    const pick = ++this.picks;
    let total = 0;
    let seen = 0;
    let best: { value: number; seenAt: number } | undefined;
    let bestName: string | undefined;
    for (const c of candidates) {
      // Non-finite weights would poison the arithmetic (Infinity - Infinity); treat them as absent.
      if (!(c.weight > 0) || !Number.isFinite(c.weight)) continue;
      let e = this.current.get(c.name);
      if (e === undefined) this.current.set(c.name, (e = { value: 0, seenAt: 0 }));
      if (e.seenAt === pick) continue; // a duplicate name counts once
      e.seenAt = pick;
      seen++;
      e.value += c.weight;
      total += c.weight;
      if (best === undefined || e.value > best.value) {
        best = e;
        bestName = c.name;
      }
    }
    if (this.current.size > seen) for (const [name, e] of this.current) if (e.seenAt !== pick) this.current.delete(name);
    if (best !== undefined) best.value -= total;
    return bestName;
  }

  reset(): void {
    this.current.clear();
  }
}
