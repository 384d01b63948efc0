/**
 * The lexer reads a text's characters from a Uint8Array, not from the string:
 * on node 20 every charCodeAt() costs ~27 instructions (V8 re-checks the
 * string's representation on each call), a typed-array load ~11
 * (valgrind/cachegrind, loops over 1,000 characters). ASCII texts (nearly all
 * SQL) are copied in one native call, positions unchanged. Otherwise each UTF-16
 * unit becomes one byte, so positions still match the string: ASCII as is,
 * U+00A0 and U+FEFF (spaces to the lexer) 0xa0, everything else 0x80 (a letter:
 * identifier character). Nothing the lexer decides on is lost: quotes,
 * operators and keywords are ASCII, and names are always compared on the text.
 */
export function mapCodes(src: string, out: Uint8Array): Uint8Array {
  for (let i = 0; i < src.length; i++) {
    const c = src.charCodeAt(i);
    out[i] = c < 128 ? c : c === 0xa0 || c === 0xfeff ? 0xa0 : 0x80;
  }
  return out;
}

// One scratch buffer, lent to one reading at a time (readAll() may nest: MySQL
// `PREPARE s FROM '...'`). A UTF-16 unit takes at most 3 bytes in UTF-8, so a text
// of up to SCRATCH_BYTES / 3 units always fits whole: then the text is ASCII
// exactly when it took one byte per unit.
const SCRATCH_BYTES = 3 * 16_384;
type Utf8Writer = Uint8Array & { utf8Write(s: string, offset: number, length: number): number };
const NodeBuffer = (globalThis as unknown as { Buffer?: { allocUnsafeSlow(n: number): Utf8Writer } }).Buffer;
const nodeScratch = NodeBuffer?.allocUnsafeSlow(SCRATCH_BYTES);
// Node's Buffer#utf8Write when there is one (always on node), else TextEncoder#encodeInto.
const scratchWriter: Utf8Writer | undefined = typeof nodeScratch?.utf8Write === 'function' ? nodeScratch : undefined;
// Reads go through a plain Uint8Array view of the same bytes (one element kind for V8 in the lexer).
const scratch = nodeScratch ? new Uint8Array(nodeScratch.buffer, nodeScratch.byteOffset, SCRATCH_BYTES) : new Uint8Array(SCRATCH_BYTES);
const encoder = new TextEncoder();
let scratchLent = false;

/** The bytes of src for the lexer (see mapCodes()); give them back with releaseCodes(). */
export function codesOf(src: string): Uint8Array {
  const n = src.length;
  if (scratchLent || 3 * n > SCRATCH_BYTES) return mapCodes(src, new Uint8Array(n));
  scratchLent = true;
  // Buffer#utf8Write: ~300 instructions per call on node 20; TextEncoder#encodeInto ~900.
  const written = scratchWriter ? scratchWriter.utf8Write(src, 0, SCRATCH_BYTES) : encoder.encodeInto(src, scratch).written;
  return written === n ? scratch : mapCodes(src, scratch);
}

export function releaseCodes(codes: Uint8Array): void {
  if (codes === scratch) scratchLent = false;
}
