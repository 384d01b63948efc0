/**
 * The SQL statement classifier: decides whether a text is a read (may go to a
 * replica) or a write (must go to the primary). Unsure always means write.
 * See docs/classifier.md for the rules.
 */
export * from './types.js';
export { Classifier, classify, explain } from './classifier.js';
export { DEFAULT_WRITE_FUNCTIONS } from './write-functions.js';
export { parseDurationMs } from './leading-hints.js';
export { Lexer, Tok, type TokKind } from './tokenizer.js';
