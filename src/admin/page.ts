/**
 * The stats page: one static HTML document that polls /status every 2s and
 * renders it with DOM text nodes only (never innerHTML), so any value — a node
 * named `<script>` included — shows as text.
 */
export function renderStatsPage(): string {
  return PAGE;
}

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>switchyard</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em} h2{font-size:1.1em;margin-top:1.5em}
table{border-collapse:collapse;min-width:60em} th,td{padding:.3em .6em;border-bottom:1px solid #ddd;text-align:left}
.up{color:#070}.down{color:#b00}.no{color:#b60}.muted{color:#888}
.bar{display:inline-block;width:8em;height:.7em;background:#eee;vertical-align:middle}
.bar>span{display:block;height:100%;background:#4a8}
.bar>span.over{background:#d44}
small{color:#666}
</style></head><body>
<h1>switchyard</h1><div id="meta"><small>loading…</small></div><div id="clusters"></div>
<script>
"use strict";
const el = (tag, attrs, ...kids) => { const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k))); return e; };
// Previous totals per key, to turn the counters of /status into rates between two refreshes.
const prev = new Map();
function rate(key, total, now) {
  const p = prev.get(key); prev.set(key, { v: total || 0, t: now });
  return p && now > p.t ? (((total || 0) - p.v) * 1000 / (now - p.t)).toFixed(1) : '–'; }
function bar(value, budget, label) {
  const b = el('span', { class: 'bar', title: label }); const s = el('span');
  const pct = budget > 0 && value !== null ? Math.min(100, 100 * value / budget) : 0;
  s.style.width = pct + '%'; if (value !== null && value > budget) s.className = 'over'; b.append(s); return b; }
function fmtBytes(n) { if (n === null || n === undefined) return '–'; if (n < 1024) return n + ' B'; if (n < 1048576) return (n/1024).toFixed(1) + ' kB'; return (n/1048576).toFixed(1) + ' MB'; }
function eligibility(n) {
  if (n.role === 'primary') return el('td', { class: 'muted' }, 'primary');
  return n.eligible ? el('td', { class: 'up' }, 'yes') : el('td', { class: 'no' }, 'no: ' + (n.ineligible_reason || 'unknown'));
}
async function refresh() {
  let s; try { s = await (await fetch('status', { cache: 'no-store' })).json(); } catch (e) { document.getElementById('meta').textContent = 'status unavailable: ' + e; return; }
  const now = Date.now();
  document.getElementById('meta').replaceChildren(el('small', {}, 'config sha256 ' + s.config.sha256.slice(0, 12) + ' loaded ' + s.config.loaded_at + ' · refreshed ' + new Date().toLocaleTimeString()));
  const root = document.getElementById('clusters'); root.replaceChildren();
  for (const c of s.clusters) {
    const section = el('section', { 'data-cluster': c.name });
    section.append(el('h2', {}, c.name + ' (' + c.protocol + ')'),
      el('p', {}, c.client_connections + ' clients · primary: ' + (c.primary || 'NONE') + (c.split_brain ? ' · SPLIT BRAIN' : '') +
        ' · reads/s ' + rate(c.name + '/r', c.reads, now) + ' · writes/s ' + rate(c.name + '/w', c.writes, now) +
        ' · lag budget ' + fmtBytes(c.max_replica_lag_bytes) + ' / ' + c.max_replica_lag_seconds + ' s'));
    const t = el('table', {}, el('tr', {}, ...['node', 'address', 'role', 'state', 'weight', 'eligible', 'lag bytes', 'lag seconds', 'pool active / idle / waiting', 'queries/s'].map(h => el('th', {}, h))));
    for (const n of c.nodes) {
      t.append(el('tr', { 'data-node': n.name, 'data-eligible': n.eligible ? 'yes' : 'no' },
        el('td', {}, n.name), el('td', {}, n.host + ':' + n.port), el('td', {}, n.role),
        el('td', { class: n.up ? 'up' : 'down' }, (n.up ? 'up' : 'down') + (n.drained ? ' (drained)' : '')), el('td', {}, n.weight),
        eligibility(n),
        el('td', {}, bar(n.lag_bytes, c.max_replica_lag_bytes, 'budget ' + fmtBytes(c.max_replica_lag_bytes)), ' ', fmtBytes(n.lag_bytes)),
        el('td', {}, bar(n.lag_seconds, c.max_replica_lag_seconds, 'budget ' + c.max_replica_lag_seconds + ' s'), ' ', n.lag_seconds === null ? '–' : n.lag_seconds.toFixed(3) + ' s'),
        el('td', {}, n.pool.active + ' / ' + n.pool.idle + ' / ' + n.pool.waiting), el('td', {}, rate(key(c, n), n.queries, now))));
    }
    section.append(t); root.append(section);
  }
}
function key(c, n) { return c.name + '/' + n.name; }
refresh(); setInterval(refresh, 2000);
</script></body></html>`;
