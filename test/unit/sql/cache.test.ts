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
    // Texts without literals: those with values are cached by shape (shape.test.ts).
    const c = new Classifier({ dialect: 'mysql', cacheSize: 3 });
    const first = c.classify('SELECT a');
    c.classify('SELECT b');
    c.classify('SELECT c');
    expect(c.classify('SELECT a')).toBe(first); // now most recent: SELECT b is the oldest
    c.classify('SELECT d'); // evicts SELECT b
    expect(c.size).toBe(3);
    expect(c.classify('SELECT a')).toBe(first);
    const second = c.classify('SELECT b'); // a miss: a new object, evicts SELECT c
    expect(c.classify('SELECT b')).toBe(second);
    for (let i = 0; i < 100; i++) c.classify(`SELECT c${i}`);
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
