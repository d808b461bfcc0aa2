// The strict CBOR profile of spec chapter 10: stage 1 of decoding (form),
// and the deterministic encoding of section 10.1.
//
// Stage 1 is one left-to-right pass over the input. It rejects everything
// the profile forbids and builds a small tree of the six kinds of data item
// the profile allows: unsigned integers, byte strings, text strings,
// arrays, maps and the booleans. Stages 2 and 3 (version and schema) work
// on that tree; they are in wire.js, because they depend on the structure
// being decoded.
//
// When an input has several faults, the first one in input order is
// reported (CBOR-004, CONV-006). Each fault carries the position of the
// byte that made it certain (section 10.2); the only place where positions
// are compared is the order of map keys (see mapKeyOrderFault).

import { ProtocolError } from './errors.js';

/** Deepest nesting of arrays and maps; the top-level item is at depth 1 (10.3). */
export const CBOR_MAX_DEPTH = 8;
/** Most elements of one array, or pairs of one map (10.3). */
export const CBOR_MAX_ITEMS = 4096;

// Major types (RFC 8949 section 3.1).
const MT_UINT = 0;
const MT_NEGINT = 1;
const MT_BSTR = 2;
const MT_TSTR = 3;
const MT_ARRAY = 4;
const MT_MAP = 5;
const MT_TAG = 6;
const MT_SIMPLE = 7;

/** A stage-1 fault: a registered error and the input position that made it certain. */
export class CborFault extends ProtocolError {
  constructor(name, pos, detail) {
    super(name, detail ? `${detail} (at byte ${pos})` : `at byte ${pos}`);
    this.pos = pos;
  }
}

/**
 * A decoded data item. `type` is one of "uint" (value: bigint), "bstr"
 * (value: Uint8Array), "tstr" (value: string), "bool" (value: boolean),
 * "array" (items: Item[]) or "map" (entries: {key: Item, value: Item}[],
 * in input order, which stage 1 has checked is the canonical order).
 * `start` and `end` delimit the item's encoding in the input (end
 * exclusive). The name of the CBOR type, for messages, is `type`.
 * @typedef {{type: string, start: number, end: number, value?: any, items?: Item[], entries?: {key: Item, value: Item}[]}} Item
 */

/**
 * Stage 1 of section 10.2: decode one top-level data item, or throw the
 * CborFault of the first fault in the input.
 * @param {Uint8Array} input
 * @returns {Item}
 */
export function decodeStage1(input) {
  const reader = new Reader(input);
  const item = reader.item(1);
  if (reader.pos < input.length) {
    throw new CborFault('decode.trailing_bytes', reader.pos, 'bytes after the top-level item');
  }
  return item;
}

class Reader {
  constructor(input) {
    this.input = input;
    this.pos = 0;
  }

  /** Truncation is found at the end of the input (section 10.2). */
  truncated(what) {
    return new CborFault('decode.truncated', this.input.length, `the input ends inside ${what}`);
  }

  /**
   * Reads one data item at this.pos, nested at `depth`.
   * @returns {Item}
   */
  item(depth) {
    const input = this.input;
    const start = this.pos;
    if (start >= input.length) throw this.truncated('a data item');
    const initial = input[start];
    const major = initial >> 5;
    const info = initial & 0x1f;

    // The checks of one initial byte, in the order section 10.2 gives.
    // 1. Additional information 28, 29, 30: reserved.
    if (info >= 28 && info <= 30) {
      throw new CborFault('decode.malformed', start, `reserved additional information ${info}`);
    }
    // 2. Additional information 31: a break code or no item at all for
    //    major types 0, 1, 6, 7; an indefinite length for 2, 3, 4, 5.
    if (info === 31) {
      if (major === MT_UINT || major === MT_NEGINT || major === MT_TAG || major === MT_SIMPLE) {
        throw new CborFault('decode.malformed', start, 'additional information 31 (a break code, or no item)');
      }
      throw new CborFault('decode.indefinite_length', start, 'an indefinite-length item');
    }
    // 3. The major type.
    if (major === MT_NEGINT) throw new CborFault('decode.wrong_type', start, 'a negative integer');
    if (major === MT_TAG) throw new CborFault('decode.tag', start, 'a tag');
    if (major === MT_SIMPLE) {
      if (info >= 25 && info <= 27) throw new CborFault('decode.float', start, 'a floating-point value');
      if (info === 20 || info === 21) {
        this.pos = start + 1;
        return { type: 'bool', value: info === 21, start, end: this.pos };
      }
      throw new CborFault('decode.wrong_type', start, 'a simple value other than false and true');
    }

    // 4. The argument bytes, then 5. its shortest form.
    const arg = this.argument(start, info);

    switch (major) {
      case MT_UINT:
        return { type: 'uint', value: arg, start, end: this.pos };
      case MT_BSTR:
      case MT_TSTR:
        return this.string(major, start, arg);
      case MT_ARRAY:
      case MT_MAP:
        return this.container(major, start, arg, depth);
      default:
        // Unreachable: every major type is handled above.
        throw new Error(`unhandled major type ${major}`);
    }
  }

  /**
   * Reads the argument of the initial byte at `start` (RFC 8949 section
   * 3), leaving this.pos after it, and checks its shortest form.
   * @returns {bigint}
   */
  argument(start, info) {
    const input = this.input;
    if (info < 24) {
      this.pos = start + 1;
      return BigInt(info);
    }
    const size = 1 << (info - 24); // 24 -> 1, 25 -> 2, 26 -> 4, 27 -> 8 bytes
    if (start + 1 + size > input.length) throw this.truncated('the argument of an initial byte');
    let value = 0n;
    for (let i = 1; i <= size; i++) value = (value << 8n) | BigInt(input[start + i]);
    this.pos = start + 1 + size;
    // The smallest value that needs this many argument bytes.
    const smallest = { 1: 24n, 2: 0x100n, 4: 0x10000n, 8: 0x100000000n }[size];
    if (value < smallest) {
      throw new CborFault('decode.non_shortest', this.pos - 1, `the argument ${value} in ${size} bytes`);
    }
    return value;
  }

  /** A byte string or text string of `length` bytes starting at this.pos. */
  string(major, start, length) {
    const input = this.input;
    const from = this.pos;
    const declaredEnd = BigInt(from) + length; // may lie far beyond the input
    const available = declaredEnd > BigInt(input.length) ? input.length : Number(declaredEnd);
    if (major === MT_TSTR) {
      // A UTF-8 fault inside the bytes that are present comes before the
      // truncation, which is only found at the end of the input.
      const bad = utf8FaultPosition(input, from, declaredEnd, available);
      if (bad >= 0) throw new CborFault('decode.invalid_utf8', bad, 'a text string that is not valid UTF-8');
    }
    if (declaredEnd > BigInt(input.length)) {
      throw this.truncated(major === MT_TSTR ? 'a text string' : 'a byte string');
    }
    const bytes = input.subarray(from, available);
    this.pos = available;
    if (major === MT_BSTR) return { type: 'bstr', value: bytes, start, end: this.pos };
    // Valid UTF-8 by the check above, so decoding cannot replace anything.
    return { type: 'tstr', value: Buffer.from(bytes).toString('utf8'), bytes, start, end: this.pos };
  }

  /** An array of `count` elements or a map of `count` pairs at `depth`. */
  container(major, start, count, depth) {
    const isMap = major === MT_MAP;
    // Not in the list of checks of one initial byte (section 10.2); this
    // adapter makes them after the argument has been read and checked.
    if (depth > CBOR_MAX_DEPTH) {
      throw new CborFault('decode.too_deep', this.pos - 1, `${isMap ? 'a map' : 'an array'} at depth ${depth}`);
    }
    if (count > BigInt(CBOR_MAX_ITEMS)) {
      throw new CborFault('decode.too_many', this.pos - 1, `${count} ${isMap ? 'pairs' : 'elements'}`);
    }
    const n = Number(count);
    if (!isMap) {
      const items = [];
      for (let i = 0; i < n; i++) items.push(this.item(depth + 1));
      return { type: 'array', items, start, end: this.pos };
    }
    const entries = [];
    let previousKey = null; // the encoding of the previous key
    for (let i = 0; i < n; i++) {
      const keyStart = this.pos;
      const orderFault = previousKey ? mapKeyOrderFault(this.input, keyStart, previousKey) : null;
      let key;
      try {
        key = this.item(depth + 1);
      } catch (err) {
        // The key itself has a fault. Whichever of the two was certain at
        // an earlier byte wins; on the same byte, the key's own fault
        // (it is checked as a data item before it is compared).
        if (orderFault && err instanceof CborFault && orderFault.pos < err.pos) throw orderFault;
        throw err;
      }
      if (orderFault) throw orderFault;
      previousKey = this.input.subarray(key.start, key.end);
      const value = this.item(depth + 1);
      entries.push({ key, value });
    }
    return { type: 'map', entries, start, end: this.pos };
  }
}

/**
 * The order fault of a map key that starts at `keyStart`, against the
 * encoding of the previous key, or null. Keys must be in strictly
 * increasing bytewise order of their encodings. The fault is certain at the
 * first byte that differs, when it is smaller (decode.unsorted_map), or at
 * the key's last byte, when all of its bytes are equal to the previous key
 * (decode.duplicate_key). Bytes past the end of the input make nothing
 * certain: the key's own truncation is reported then.
 */
function mapKeyOrderFault(input, keyStart, previousKey) {
  for (let i = 0; i < previousKey.length && keyStart + i < input.length; i++) {
    const a = input[keyStart + i];
    const b = previousKey[i];
    if (a > b) return null;
    if (a < b) return new CborFault('decode.unsorted_map', keyStart + i, 'a map key that sorts before the previous key');
    // Equal bytes so far. A key whose bytes equal the whole previous key is
    // the same data item (CBOR items are self-delimiting), so it ends here.
    if (i === previousKey.length - 1) {
      return new CborFault('decode.duplicate_key', keyStart + i, 'a map key equal to the previous key');
    }
  }
  return null;
}

/**
 * Checks the UTF-8 (RFC 3629) of the text string bytes input[from ..
 * declaredEnd), of which input[from .. available) are present. Returns the
 * position of the byte that makes the string certainly invalid, or -1 when
 * the bytes present are valid so far (a sequence that the end of the input
 * cuts is a truncation, not invalid UTF-8). Rejects overlong forms,
 * surrogates (U+D800..U+DFFF) and code points above U+10FFFF.
 */
function utf8FaultPosition(input, from, declaredEnd, available) {
  let i = from;
  while (i < available) {
    const lead = input[i];
    if (lead < 0x80) {
      i++;
      continue;
    }
    let need; // continuation bytes
    let lo = 0x80; // allowed range of the first continuation byte
    let hi = 0xbf;
    if (lead >= 0xc2 && lead <= 0xdf) need = 1;
    else if (lead === 0xe0) { need = 2; lo = 0xa0; } // no overlong 3-byte forms
    else if (lead === 0xed) { need = 2; hi = 0x9f; } // no surrogates
    else if (lead >= 0xe1 && lead <= 0xef) need = 2;
    else if (lead === 0xf0) { need = 3; lo = 0x90; } // no overlong 4-byte forms
    else if (lead === 0xf4) { need = 3; hi = 0x8f; } // nothing above U+10FFFF
    else if (lead >= 0xf1 && lead <= 0xf3) need = 3;
    else return i; // 0x80..0xC1 (continuation, overlong 2-byte lead), 0xF5..0xFF
    for (let k = 1; k <= need; k++) {
      const j = i + k;
      // The string ends inside the sequence: certain at its last byte.
      if (BigInt(j) >= declaredEnd) return j - 1;
      if (j >= available) return -1; // the input ends first
      const c = input[j];
      if (c < lo || c > hi) return j;
      lo = 0x80;
      hi = 0xbf;
    }
    i += need + 1;
  }
  return -1;
}

// ---------------------------------------------------------------------------
// Encoding: the core deterministic encoding of RFC 8949 section 4.2.1
// (CBOR-001): shortest arguments, definite lengths, map keys sorted by the
// bytewise order of their encodings.

/** The initial byte and argument of `major` with argument `n`, shortest form. */
function head(major, n) {
  n = BigInt(n);
  if (n < 0n || n > 0xffffffffffffffffn) throw new RangeError(`CBOR argument out of range: ${n}`);
  const m = major << 5;
  if (n < 24n) return Uint8Array.of(m | Number(n));
  let size;
  let info;
  if (n <= 0xffn) { size = 1; info = 24; }
  else if (n <= 0xffffn) { size = 2; info = 25; }
  else if (n <= 0xffffffffn) { size = 4; info = 26; }
  else { size = 8; info = 27; }
  const out = new Uint8Array(1 + size);
  out[0] = m | info;
  for (let i = size; i >= 1; i--) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

export function concat(parts) {
  return Uint8Array.from(Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength))));
}

export const encodeUint = (n) => head(MT_UINT, n);
export const encodeBstr = (bytes) => concat([head(MT_BSTR, bytes.length), bytes]);
export function encodeTstr(text) {
  const bytes = new Uint8Array(Buffer.from(text, 'utf8'));
  return concat([head(MT_TSTR, bytes.length), bytes]);
}
export const encodeBool = (b) => Uint8Array.of(b ? 0xf5 : 0xf4);
/** An array of already encoded elements. */
export const encodeArray = (encodedItems) => concat([head(MT_ARRAY, encodedItems.length), ...encodedItems]);
/** A map of [encoded key, encoded value] pairs, sorted here by key encoding. */
export function encodeMap(encodedPairs) {
  const sorted = [...encodedPairs].sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return concat([head(MT_MAP, sorted.length), ...sorted.flat()]);
}
