import http from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { ClusterStatus } from '../observability/metrics.js';

/** What /metrics serves: one process's registry, or the workers' aggregate (--workers N). */
export interface MetricsExposition {
  registry: { metrics(): Promise<string>; contentType: string };
}
import { splitHostPort } from '../frontend/listen.js';
import { renderStatsPage } from './page.js';

export interface StatusDocument {
  clusters: ClusterStatus[];
  /** generation: successful reloads since the process started. */
  config: { loaded_at: string; sha256: string; generation?: number };
  /** With --workers: each worker's pid and the config it runs (a reload reached it when its sha256 is the file's). */
  workers?: { pid: number; config: StatusDocument['config']; client_connections: number }[];
}

/** What the admin server asks of the App, or (with --workers) of the workers through the primary. */
export interface AdminHooks {
  status(): StatusDocument | Promise<StatusDocument>;
  ready(): boolean | Promise<boolean>;
  reload(): Promise<{ ok: boolean; problems: string[] }>;
  setDrained(cluster: string, node: string, drained: boolean): boolean | Promise<boolean>;
}

/**
 * The admin HTTP server: GET /metrics /healthz /readyz /status /, and the
 * token-protected POST actions. 401 without a valid bearer token, 403 when no
 * token is configured (POST actions disabled), 404 for anything else.
 */
export class AdminServer {
  private server: http.Server | null = null;
  port = 0;

  constructor(
    private readonly metrics: MetricsExposition,
    private readonly hooks: AdminHooks,
    private token: string,
  ) {}

  setToken(token: string): void {
    this.token = token;
  }

  async listen(address: string): Promise<void> {
    const { host, port } = splitHostPort(address);
    const server = http.createServer((req, res) => {
      this.handle(req, res).catch((e) => {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`internal error: ${(e as Error).message}\n`);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return Promise.resolve();
    s.closeAllConnections?.();
    return new Promise((r) => s.close(() => r()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname;
    if (req.method === 'GET' || req.method === 'HEAD') {
      switch (path) {
        case '/metrics': {
          const body = await this.metrics.registry.metrics();
          res.writeHead(200, { 'content-type': this.metrics.registry.contentType }).end(body);
          return;
        }
        case '/healthz':
          res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
          return;
        case '/readyz': {
          const ok = await this.hooks.ready();
          res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ready\n' : 'not ready\n');
          return;
        }
        case '/status':
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(await this.hooks.status(), null, 2));
          return;
        case '/':
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'" }).end(renderStatsPage());
          return;
      }
    } else if (req.method === 'POST') {
      const denied = this.authorize(req);
      if (denied) {
        res.writeHead(denied, { 'content-type': 'text/plain' }).end(denied === 401 ? 'missing or wrong bearer token\n' : 'POST actions are disabled: admin.token is empty\n');
        return;
      }
      if (path === '/reload') {
        const r = await this.hooks.reload();
        res.writeHead(r.ok ? 200 : 422, { 'content-type': 'application/json' }).end(JSON.stringify(r));
        return;
      }
      const m = /^\/clusters\/([^/]+)\/nodes\/([^/]+)\/(drain|enable)$/.exec(path);
      if (m) {
        const ok = await this.hooks.setDrained(decodeURIComponent(m[1]!), decodeURIComponent(m[2]!), m[3] === 'drain');
        res.writeHead(ok ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify({ ok }));
        return;
      }
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  }

  /** Returns an HTTP status to refuse with, or 0 when the request carries the token. */
  private authorize(req: http.IncomingMessage): number {
    if (!this.token) return 403;
    const header = req.headers.authorization ?? '';
    const m = /^Bearer (.+)$/.exec(header);
    if (!m) return 401;
    const got = Buffer.from(m[1]!);
    const want = Buffer.from(this.token);
    return got.length === want.length && timingSafeEqual(got, want) ? 0 : 401;
  }
}
