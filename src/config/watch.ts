import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface ConfigWatcher {
  close(): void;
}

export interface WatchOptions {
  /** Also re-hash the file this often, in case an event was missed (NFS, some overlay fs). */
  pollMs?: number;
  /** Wait this long after an event before reading, so a burst of events is one change. */
  debounceMs?: number;
}

/** sha256 of the file's bytes, following symlinks; null when it cannot be read right now. */
export async function fileSha256(path: string): Promise<string | null> {
  try {
    return createHash('sha256').update(await readFile(path)).digest('hex');
  } catch {
    return null;
  }
}

/**
 * Calls `onChange` when the content of `path` changes.
 *
 * The directory is watched, not the file: an editor's save-by-rename and the
 * Kubernetes ConfigMap update (a new timestamped dir, then the `..data` symlink
 * renamed over the old one) replace the inode, which a watch on the file itself
 * would never report. Events only wake us up; the decision is the sha256 of the
 * content read through the path, so touching the file or a swap to identical
 * content does nothing, and a half-written state that cannot be read is skipped
 * (the next event or poll sees the finished file).
 */
export function watchConfigFile(path: string, initialSha: string, onChange: (sha: string) => void, opts: WatchOptions = {}): ConfigWatcher {
  let last = initialSha;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  let checking = false;
  let again = false;

  const check = async () => {
    if (checking) {
      again = true;
      return;
    }
    checking = true;
    try {
      do {
        again = false;
        const sha = await fileSha256(path);
        if (!closed && sha !== null && sha !== last) {
          last = sha;
          onChange(sha);
        }
      } while (again && !closed);
    } finally {
      checking = false;
    }
  };
  const soon = () => {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      void check();
    }, opts.debounceMs ?? 100);
  };

  let fsw: FSWatcher | null = null;
  try {
    fsw = watch(dirname(path), { persistent: false }, soon);
    fsw.on('error', () => undefined);
  } catch {
    // No inotify (or the dir vanished): the poll below still sees changes.
  }
  const poll = setInterval(() => void check(), opts.pollMs ?? 2000);
  poll.unref();

  return {
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      clearInterval(poll);
      fsw?.close();
    },
  };
}
