import { describe, expect, it } from 'vitest';
import { renderStatsPage } from '../../../src/admin/page.js';

describe('stats page', () => {
  it('builds the DOM from text nodes and attributes only: no HTML parsing of values', () => {
    const html = renderStatsPage();
    const script = html.slice(html.indexOf('<script>'), html.indexOf('</script>'));
    expect(script).toMatch(/createTextNode/);
    for (const sink of ['innerHTML', 'outerHTML', 'insertAdjacentHTML', 'document.write', 'eval(', 'new Function']) expect(script).not.toContain(sink);
    // What the issue asks to show per node.
    for (const col of ['role', 'state', 'weight', 'eligible', 'lag bytes', 'lag seconds', 'pool active / idle / waiting', 'queries/s', 'reads/s', 'writes/s']) expect(script).toContain(col);
  });
});
