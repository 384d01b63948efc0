/**
 * Smooth weighted round-robin (nginx's algorithm): each pick adds every
 * candidate's weight to its current value, takes the largest, and subtracts
 * the total from it. Over sum(weights) picks each candidate is chosen exactly
 * `weight` times, spread out (2:1 gives a a b, a a b, ...). Deterministic.
 */
export class SmoothWeightedBalancer {
  private current = new Map<string, number>();

  pick(candidates: readonly { name: string; weight: number }[]): string | undefined {
    let total = 0;
    let best: string | undefined;
    let bestValue = -Infinity;
    for (const c of candidates) {
      if (c.weight <= 0) continue;
      const value = (this.current.get(c.name) ?? 0) + c.weight;
      this.current.set(c.name, value);
      total += c.weight;
      if (value > bestValue) {
        bestValue = value;
        best = c.name;
      }
    }
    if (best === undefined) return undefined;
    this.current.set(best, bestValue - total);
    // Forget names that are no longer candidates, so a node that returns starts fresh.
    if (this.current.size > candidates.length) {
      const live = new Set(candidates.map((c) => c.name));
      for (const name of this.current.keys()) if (!live.has(name)) this.current.delete(name);
    }
    return best;
  }

  reset(): void {
    this.current.clear();
  }
}
