/**
 * Smooth weighted round-robin (nginx's algorithm). On each pick every
 * candidate's current value grows by its weight, the largest wins (ties: the
 * earlier candidate), and the winner's value drops by the total weight. Over
 * sum(weights) picks with a fixed candidate list each candidate is chosen
 * exactly `weight` times, spread out (2:1 gives a a b a a b ...). Deterministic.
 */
export class SmoothWeightedBalancer {
  private current = new Map<string, number>();

  /**
   * The next candidate, or undefined when none has a positive weight.
   * Candidates may change between calls: a new name starts at 0, and a name
   * that left (or dropped to weight 0) is forgotten so it starts fresh when it
   * comes back.
   */
  pick(candidates: readonly { name: string; weight: number }[]): string | undefined {
    const next = new Map<string, number>();
    let total = 0;
    let best: string | undefined;
    let bestValue = -Infinity;
    for (const c of candidates) {
      // Non-finite weights would poison the arithmetic (Infinity - Infinity); treat them as absent.
      if (!(c.weight > 0) || !Number.isFinite(c.weight) || next.has(c.name)) continue;
      const value = (this.current.get(c.name) ?? 0) + c.weight;
      next.set(c.name, value);
      total += c.weight;
      if (value > bestValue) {
        bestValue = value;
        best = c.name;
      }
    }
    if (best !== undefined) next.set(best, bestValue - total);
    this.current = next;
    return best;
  }

  reset(): void {
    this.current.clear();
  }
}
