import { rmSync } from 'node:fs';
import { isAlive, sleep } from '../../src/devcluster/proc.js';

/** Sends SIGKILL to each pid that is still alive; ignores the ones already gone. */
function killPids(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone (or never ours to signal): nothing left to stop.
    }
  }
}

/**
 * Stops a cluster without ever hanging a test run:
 *   1. run its clean `stop` for at most `graceMs`;
 *   2. SIGKILL whichever of `pids` is still alive and wait (bounded) for them to go;
 *   3. remove `baseDir`.
 * Never throws: teardown must always get through every cluster.
 */
export async function stopOrKill(stop: () => Promise<void>, pids: readonly number[], baseDir: string, graceMs = 8000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, graceMs);
  });
  await Promise.race([stop().catch(() => undefined), gaveUp]);
  clearTimeout(timer);
  killPids(pids.filter(isAlive));
  for (let waited = 0; waited < 5000 && pids.some(isAlive); waited += 20) await sleep(20);
  rmSync(baseDir, { recursive: true, force: true });
}
