import http from 'node:http';
import https from 'node:https';
import type { Logger } from '../observability/logger.js';
import { decidePatroni, parseClusterJson, type PatroniDecision, type PatroniView } from './patroni.js';
import type { NodeHealth } from './decide.js';

/** A /cluster answer is a few hundred bytes per member; anything past this is not Patroni. */
const MAX_BODY = 1 << 20;

/**
 * GET `url` and JSON-decode it, within `timeoutMs` for the whole exchange
 * (connect, headers, body). Credentials in the URL become Basic auth.
 */
export function getJson(url: URL, timeoutMs: number): Promise<unknown> {
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const auth = url.username ? `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}` : undefined;
    const req = mod.get(url, { auth, headers: { accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) req.destroy(new Error(`answer larger than ${MAX_BODY} bytes`));
        else chunks.push(c);
      });
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}`));
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch {
          reject(new Error('answer is not JSON'));
        }
      });
      res.on('error', reject);
    });
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs}ms`)), timeoutMs);
    req.on('error', reject);
    req.on('close', () => clearTimeout(timer));
  });
}

/** The URL of /cluster under a configured Patroni REST address (which may carry a path prefix). */
export function clusterUrl(base: string): URL {
  const u = new URL(base);
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return new URL('cluster', u);
}

/**
 * Polls Patroni's `GET /cluster` for one cluster and turns the latest answer
 * into a PatroniDecision (src/topology/patroni.ts), logging changes once.
 *
 * 1. One fetch at a time, started by the monitor's round; the round waits for
 *    it as for a probe (at most one interval), so a hung Patroni never slows the checks.
 * 2. URLs are tried in order from the last one that answered, within one
 *    `health.timeout` for the whole attempt; a failed URL moves the start on.
 * 3. All of them failing makes the view stale: roles come from the probes alone.
 */
export class PatroniDiscovery {
  private view: PatroniView | null = null;
  private fresh = false;
  private start = 0;
  private inflight: Promise<void> | null = null;
  private lastError: string | null = null;
  private loggedNotes = '';
  private readonly reportedMembers = new Set<string>();
  private stopped = false;

  constructor(
    private urls: readonly string[],
    private readonly log: Logger,
  ) {}

  setUrls(urls: readonly string[]): void {
    if (urls.join() !== this.urls.join()) this.start = 0;
    this.urls = urls;
  }

  stop(): void {
    this.stopped = true;
  }

  /** Starts a fetch unless one is running; resolves when the running one ends. */
  poll(timeoutMs: number): Promise<void> {
    if (!this.inflight) {
      this.inflight = this.fetchOnce(timeoutMs).finally(() => {
        this.inflight = null;
      });
    }
    return this.inflight;
  }

  /** Rules 1-4 on the latest view and these probe results; logs what changed. */
  decide(nodes: readonly { name: string; host: string; port: number }[], health: ReadonlyMap<string, NodeHealth>): PatroniDecision {
    const d = decidePatroni({ view: this.view, fresh: this.fresh }, nodes, health);
    for (const m of d.unknownMembers) {
      if (this.reportedMembers.has(m)) continue;
      this.reportedMembers.add(m);
      this.log.warn({ member: m }, 'Patroni lists a member that is not in nodes: ignored (add it to nodes: to use it)');
    }
    const notes = d.notes.join('; ');
    if (notes !== this.loggedNotes) {
      if (notes) this.log.warn({ patroni: notes, error: this.lastError ?? undefined }, 'Patroni discovery');
      else this.log.info({ leader: d.leader }, 'Patroni discovery agrees with the nodes');
      this.loggedNotes = notes;
    }
    return d;
  }

  private async fetchOnce(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const errors: string[] = [];
    for (let i = 0; i < this.urls.length && !this.stopped; i++) {
      const idx = (this.start + i) % this.urls.length;
      const left = deadline - Date.now();
      if (left <= 0) break;
      try {
        const view = parseClusterJson(await getJson(clusterUrl(this.urls[idx]!), left));
        this.view = view;
        this.fresh = true;
        this.start = idx;
        this.lastError = null;
        return;
      } catch (e) {
        errors.push(`${redact(this.urls[idx]!)}: ${(e as Error).message}`);
        this.start = (idx + 1) % this.urls.length;
      }
    }
    this.fresh = false;
    this.lastError = errors.join('; ') || `no answer within ${timeoutMs}ms`;
  }
}

/** A URL without its password, for logs. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
