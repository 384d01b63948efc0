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
.up{color:#070}.down{color:#b00}.no{color:#b60}
.bar{display:inline-block;width:8em;height:.7em;background:#eee;vertical-align:middle}
.bar>span{display:block;height:100%;background:#4a8}
.bar>span.over{background:#d44}
small{color:#666}
</style></head><body>
<h1>switchyard</h1><div id="meta"><small>loading…</small></div><div id="clusters"></div>
<script>
"use strict";
const el = (tag, attrs, ...kids) => { const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k))); return e; };
const prev = new Map();
function bar(value, budget) {
  const b = el('span', { class: 'bar' }); const s = el('span');
  const pct = budget > 0 && value !== null ? Math.min(100, 100 * value / budget) : 0;
  s.style.width = pct + '%'; if (value !== null && value > budget) s.className = 'over'; b.append(s); return b; }
function fmtBytes(n) { if (n === null) return '–'; if (n < 1024) return n + ' B'; if (n < 1048576) return (n/1024).toFixed(1) + ' kB'; return (n/1048576).toFixed(1) + ' MB'; }
async function refresh() {
  let s; try { s = await (await fetch('status', { cache: 'no-store' })).json(); } catch (e) { document.getElementById('meta').textContent = 'status unavailable: ' + e; return; }
  const now = Date.now();
  document.getElementById('meta').replaceChildren(el('small', {}, 'config sha256 ' + s.config.sha256.slice(0, 12) + ' loaded ' + s.config.loaded_at + ' · refreshed ' + new Date().toLocaleTimeString()));
  const root = document.getElementById('clusters'); root.replaceChildren();
  for (const c of s.clusters) {
    root.append(el('h2', {}, c.name + ' (' + c.protocol + ') · ' + c.client_connections + ' clients · primary: ' + (c.primary || 'none') + (c.split_brain ? ' · SPLIT BRAIN' : '')));
    const t = el('table', {}, el('tr', {}, ...['node', 'address', 'role', 'state', 'weight', 'eligible', 'lag bytes', 'lag seconds', 'pool active/idle/waiting', 'queries/s'].map(h => el('th', {}, h))));
    for (const n of c.nodes) {
      const key = c.name + '/' + n.name; const p = prev.get(key); const q = n.queries || 0;
      const rate = p ? ((q - p.q) * 1000 / (now - p.t)).toFixed(1) : '–'; prev.set(key, { q, t: now });
      t.append(el('tr', { 'data-node': n.name },
        el('td', {}, n.name), el('td', {}, n.host + ':' + n.port), el('td', {}, n.role),
        el('td', { class: n.up ? 'up' : 'down' }, n.up ? 'up' : 'down'), el('td', {}, n.weight),
        el('td', { class: n.eligible ? 'up' : 'no' }, n.role === 'primary' ? '–' : (n.eligible ? 'yes' : 'no (' + (n.ineligible_reason || '?') + ')')),
        el('td', {}, bar(n.lag_bytes, c.max_replica_lag_bytes || 0), ' ', fmtBytes(n.lag_bytes)),
        el('td', {}, bar(n.lag_seconds, c.max_replica_lag_seconds || 0), ' ', n.lag_seconds === null ? '–' : n.lag_seconds.toFixed(3) + ' s'),
        el('td', {}, n.pool.active + ' / ' + n.pool.idle + ' / ' + n.pool.waiting), el('td', {}, rate)));
    }
    root.append(t);
  }
}
refresh(); setInterval(refresh, 2000);
</script></body></html>`;
