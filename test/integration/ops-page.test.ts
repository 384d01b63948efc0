import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import pg from 'pg';
import { PgCluster } from '../support/pg-cluster.js';
import { appClient } from '../support/pg-stats.js';
import { startOpsProxy, waitFor, type OpsProxy } from './ops-support.js';

/**
 * The stats page in real headless Chromium (Debian's package, driven by
 * playwright-core): it shows the live cluster's nodes, and a replica whose
 * replay is paused (lag budget 1kB) as not eligible. Screenshot: test-artifacts/.
 */
const info = inject('pgCluster');
const user = info.users.app;
const cluster = PgCluster.attach(info);
let p: OpsProxy;
let browser: BrowserContext;
let profile: string;

beforeAll(async () => {
  p = await startOpsProxy(info.nodes, user, { lagBytes: '1kB', lagTime: '1s' }, { watch: false });
  profile = mkdtempSync(join(tmpdir(), 'switchyard-chromium-'));
  // A fresh profile dir per run (playwright passes it as --user-data-dir).
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1400, height: 700 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

afterAll(async () => {
  await cluster.resumeReplay('pg2').catch(() => undefined);
  await browser?.close();
  await p?.stop();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

describe('stats page', () => {
  it('renders every node of the live cluster; a paused replica shows as not eligible', async () => {
    const page = await browser.newPage();
    // Some traffic so rates and pool use are not all zero.
    const c = new pg.Client({ host: '127.0.0.1', port: p.port, user: user.user, password: user.password, database: info.database });
    await c.connect();
    for (let i = 0; i < 50; i++) await c.query('SELECT 1');
    await page.goto(`http://127.0.0.1:${p.adminPort}/`);
    for (const n of ['pg0', 'pg1', 'pg2']) await page.waitForSelector(`tr[data-node="${n}"]`, { timeout: 10_000 });
    expect(await page.textContent('tr[data-node="pg0"]')).toMatch(/primary.*up/);
    expect(await page.getAttribute('tr[data-node="pg2"]', 'data-eligible')).toBe('yes');

    await cluster.pauseReplay('pg2');
    try {
      // WAL the paused replica cannot replay: over the 1kB budget.
      const w = await appClient(info, 'pg0', info.database);
      await w.query('CREATE TABLE IF NOT EXISTS ops_page_lag (v text)');
      await w.query("INSERT INTO ops_page_lag SELECT repeat('x', 100) FROM generate_series(1, 500)");
      await w.end();
      await waitFor('pg2 to become ineligible', () => p.app.status().clusters[0]!.nodes.find((n) => n.name === 'pg2')?.eligible === false, 10_000);
      await page.waitForSelector('tr[data-node="pg2"][data-eligible="no"]', { timeout: 10_000 });
      const row = (await page.textContent('tr[data-node="pg2"]'))!;
      expect(row).toMatch(/replica/);
      expect(row).toMatch(/no: lag_(bytes|time)/);
      // pg1 replays the same 50 kB a moment later (over the 1 kB budget while it does, on a busy
      // machine): it must be shown eligible again, while pg2 stays out.
      await page.waitForSelector('tr[data-node="pg1"][data-eligible="yes"]', { timeout: 10_000 });
      expect(await page.getAttribute('tr[data-node="pg2"]', 'data-eligible')).toBe('no');
      // The lag bar of pg2 is full and marked over budget.
      expect(await page.locator('tr[data-node="pg2"] .bar > span.over').count()).toBeGreaterThan(0);
      // Rates need traffic across two refreshes (2 s apart).
      let busy = true;
      const traffic = (async () => {
        while (busy) await c.query('SELECT 1');
      })();
      try {
        await page.waitForFunction(
          () => {
            const text = (globalThis as unknown as { document: { body: { textContent: string } } }).document.body.textContent;
            const m = /reads\/s ([0-9.]+)/.exec(text);
            return m !== null && Number(m[1]) > 0;
          },
          undefined,
          { timeout: 10_000 },
        );
        const perNode = await page.locator('tr[data-node="pg1"] td').last().textContent();
        expect(Number(perNode)).toBeGreaterThan(0);
      } finally {
        busy = false;
        await traffic;
      }
      mkdirSync('test-artifacts', { recursive: true });
      await page.screenshot({ path: 'test-artifacts/stats-page.png', fullPage: true });
    } finally {
      await cluster.resumeReplay('pg2');
      await c.end();
    }
    await waitFor('pg2 eligible again', () => p.app.status().clusters[0]!.nodes.find((n) => n.name === 'pg2')?.eligible === true, 15_000);
  });

  it('shows hostile names as text: a node named <script>alert(1)</script> runs nothing', async () => {
    // The config schema refuses such names, but Patroni's member names or a node's host reach
    // the page from outside: the real /status, with hostile strings put in, served to the page.
    const page = await browser.newPage();
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    const real = (await (await fetch(`http://127.0.0.1:${p.adminPort}/status`)).json()) as { clusters: { name: string; nodes: { name: string; host: string }[] }[] };
    const script = '<script>alert(1)</script>';
    const img = '<img src=x onerror="window.__xss=1;alert(2)">';
    real.clusters[0]!.name = `main${img}`;
    real.clusters[0]!.nodes[1]!.name = script;
    real.clusters[0]!.nodes[2]!.host = img;
    await page.route('**/status', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(real) }));
    await page.goto(`http://127.0.0.1:${p.adminPort}/`);
    await page.waitForFunction(`document.body.innerText.includes(${JSON.stringify(script)})`, undefined, { timeout: 10_000 });
    const text = (await page.evaluate('document.body.innerText')) as string;
    expect(text).toContain(script);
    expect(text).toContain(img);
    await new Promise((r) => setTimeout(r, 500));
    expect(dialogs).toEqual([]);
    expect(await page.evaluate('window.__xss')).toBeUndefined();
    expect(await page.locator('script:not([src])').count()).toBe(1); // the page's own script only
    expect(await page.locator('img').count()).toBe(0);
    await page.close();
  });
});
