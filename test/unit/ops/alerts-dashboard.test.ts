import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { exportedMetricNames, metricsInExpr } from './metric-names.js';

const ALERTS = 'config/prometheus/alerts.yml';
const DASHBOARD = 'config/grafana/dashboard.json';

interface Rule {
  alert: string;
  expr: string;
  for?: string;
}

describe('config/prometheus/alerts.yml', () => {
  it('passes promtool check rules (Debian package prometheus)', () => {
    expect(existsSync('/usr/bin/promtool'), 'promtool missing: run scripts/install-deps.sh').toBe(true);
    const out = execFileSync('/usr/bin/promtool', ['check', 'rules', ALERTS], { encoding: 'utf8' });
    expect(out).toMatch(/SUCCESS: 7 rules found/);
  });

  it('has the seven alerts, each on metrics switchyard exports', async () => {
    const doc = parse(readFileSync(ALERTS, 'utf8')) as { groups: { rules: Rule[] }[] };
    const rules = doc.groups.flatMap((g) => g.rules);
    const byName = new Map(rules.map((r) => [r.alert, r]));
    expect([...byName.keys()].sort()).toEqual(
      [
        'SwitchyardClientConnectionsNearLimit',
        'SwitchyardConfigReloadFailed',
        'SwitchyardNoPrimary',
        'SwitchyardNodeDown',
        'SwitchyardPoolWaiters',
        'SwitchyardReplicaOverLagBudget',
        'SwitchyardSplitBrain',
      ].sort(),
    );
    expect(byName.get('SwitchyardReplicaOverLagBudget')!.for).toBe('1m');
    expect(byName.get('SwitchyardPoolWaiters')!.for).toBe('1m');
    expect(byName.get('SwitchyardClientConnectionsNearLimit')!.expr).toMatch(/0\.8/);
    const known = await exportedMetricNames();
    for (const r of rules) {
      const used = metricsInExpr(r.expr);
      expect(used.length, r.alert).toBeGreaterThan(0);
      for (const m of used) expect(known, `${r.alert} uses ${m}`).toContain(m);
    }
  });
});

describe('config/grafana/dashboard.json', () => {
  it('parses, and every panel query names a metric switchyard exports', async () => {
    const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
    const known = await exportedMetricNames();
    expect(dash.panels.length).toBeGreaterThanOrEqual(10);
    const all = new Set<string>();
    for (const p of dash.panels) {
      expect(p.targets.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets) {
        const used = metricsInExpr(t.expr);
        expect(used.length, `${p.title}: ${t.expr}`).toBeGreaterThan(0);
        for (const m of used) {
          expect(known, `${p.title} uses ${m}`).toContain(m);
          all.add(m);
        }
      }
    }
    // Panels for what the alerts watch.
    for (const m of ['switchyard_replica_lag_seconds', 'switchyard_primary_count', 'switchyard_backend_up', 'switchyard_client_connections', 'switchyard_pool_waiting', 'switchyard_config_reloads_total']) {
      expect(all, m).toContain(m);
    }
  });
});
