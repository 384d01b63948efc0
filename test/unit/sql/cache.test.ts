import { describe, expect, it } from 'vitest';
import { Classifier, classify } from '../../../src/sql/index.js';

describe('Classifier cache', () => {
  it('a hit returns the same frozen object', () => {
    const c = new Classifier({ dialect: 'postgres' });
    const a = c.classify('SET search_path = a; SELECT 1 FOR UPDATE');
    const b = c.classify('SET search_path = a; SELECT 1 FOR UPDATE');
    expect(b).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(a.hints)).toBe(true);
    expect(Object.isFrozen(a.session)).toBe(true);
    expect(Object.isFrozen(a.session?.[0])).toBe(true);
    expect(() => {
      (a as { class: string }).class = 'read';
    }).toThrow(TypeError);
    expect(a).toEqual(classify('SET search_path = a; SELECT 1 FOR UPDATE', { dialect: 'postgres' }));
  });

  it('evicts the least recently used entry and stays bounded', () => {
    const c = new Classifier({ dialect: 'mysql', cacheSize: 3 });
    const first = c.classify('SELECT 1');
    c.classify('SELECT 2');
    c.classify('SELECT 3');
    expect(c.classify('SELECT 1')).toBe(first); // now most recent: SELECT 2 is the oldest
    c.classify('SELECT 4'); // evicts SELECT 2
    expect(c.size).toBe(3);
    expect(c.classify('SELECT 1')).toBe(first);
    const second = c.classify('SELECT 2'); // a miss: a new object, evicts SELECT 3
    expect(c.classify('SELECT 2')).toBe(second);
    for (let i = 0; i < 100; i++) c.classify(`SELECT ${i}`);
    expect(c.size).toBe(3);
  });

  it('cacheSize 0 disables caching but still classifies', () => {
    const c = new Classifier({ dialect: 'postgres', cacheSize: 0 });
    const a = c.classify('DELETE FROM t');
    expect(a.class).toBe('write');
    expect(c.classify('DELETE FROM t')).not.toBe(a);
    expect(Object.isFrozen(a)).toBe(false); // not shared, so not frozen
    expect(c.size).toBe(0);
  });

  it('does not cache very long texts', () => {
    const c = new Classifier({ dialect: 'postgres' });
    const long = `SELECT ${'1 + '.repeat(Classifier.MAX_CACHED_LENGTH)}1`;
    expect(c.classify(long).class).toBe('read');
    expect(c.size).toBe(0);
  });

  it('uses its write-function options', () => {
    const c = new Classifier({ dialect: 'postgres', writeFunctions: ['touch'] });
    expect(c.classify('SELECT touch(1)').class).toBe('write');
    expect(new Classifier({ dialect: 'postgres' }).classify('SELECT touch(1)').class).toBe('read');
  });
});
