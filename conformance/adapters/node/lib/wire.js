// Stages 2 and 3 of the CBOR profile (spec section 10.2) for the CDDL rules
// this adapter implements: `envelope` and `device-message` (section 11.5)
// and `address` (section 11.2), with the checks that chapter 11 attaches to
// their fields. Stage 1 is in cbor.js.
//
// Each rule is described once, as a schema (below), and four small
// functions walk a schema and a stage-1 tree together: pass 3a (unknown
// keys, wrong types), pass 3b (missing required keys), pass 3c (sizes,
// counts, ranges, list order), and the conversion of the checked tree to a
// plain JavaScript value. A fifth function encodes such a value again,
// canonically (section 10.1).

import { ProtocolError } from './errors.js';
import {
  decodeStage1, encodeUint, encodeBstr, encodeTstr, encodeArray, encodeMap,
} from './cbor.js';

// Limits of section 11.1 that these rules use.
export const MAX_ENVELOPE_SIZE = 1048576;
export const MAX_DEVICE_MESSAGE = 73728;
export const MAX_FANOUT = 16;
export const MAX_TTL = 2592000;

/** The protocol versions this adapter decodes (stage 2). */
export const PROTOCOL_VERSIONS = [1n];

const UINT64_MAX = 0xffffffffffffffffn;
const UINT32_MAX = 0xffffffffn;

// ---------------------------------------------------------------------------
// Schema constructors. A schema says which CBOR type a value has
// (`cbor`), and what pass 3c checks about it.

/** uint .within (min .. max) */
const uint = (min = 0n, max = UINT64_MAX) => ({ kind: 'uint', cbor: 'uint', min, max });
/** &(name: value, ...): an enumeration; decoded to its name. */
const enumeration = (names) => ({ kind: 'enum', cbor: 'uint', names });
/** bstr .size (min .. max) */
const bstr = (min, max) => ({ kind: 'bstr', cbor: 'bstr', min, max });
/** A fixed-length array of different elements: [a, b]. */
const tuple = (items) => ({ kind: 'tuple', cbor: 'array', items });
/** [+ item] with at most `max` elements; `sortKey` (optional) gives a list that must be strictly increasing by it. */
const list = (item, min, max, sortKey) => ({ kind: 'list', cbor: 'array', item, min, max, sortKey });
/** A map with small unsigned integer keys: { key => field, ? key => field }. */
const struct = (fields) => ({ kind: 'map', cbor: 'map', fields: [...fields].sort((a, b) => a.key - b.key) });
const field = (key, name, type) => ({ key, name, type, optional: false });
const optional = (key, name, type) => ({ key, name, type, optional: true });

// account = tstr .regexp "[a-z0-9][a-z0-9._-]{0,31}" (section 11.2). A CDDL
// .regexp matches the whole string (RFC 8610 section 3.8.3, XSD regular
// expressions are anchored), so "alice\n" does not match.
const ACCOUNT = { kind: 'account', cbor: 'tstr' };
// device-id = uint .within (1 .. 4294967295)
const DEVICE_ID = uint(1n, UINT32_MAX);
// message-id = bstr .size 16
const MESSAGE_ID = bstr(16, 16);
// timestamp = uint
const TIMESTAMP = uint();
// address = [account, device-id]
const ADDRESS = tuple([
  { name: 'account', type: ACCOUNT },
  { name: 'deviceId', type: DEVICE_ID },
]);

// device-message (section 11.5)
const DEVICE_MESSAGE = struct([
  field(1, 'deviceId', DEVICE_ID),
  field(2, 'kind', enumeration({ 1: 'ratchet', 2: 'prekey' })),
  field(3, 'ciphertext', bstr(1, MAX_DEVICE_MESSAGE)),
]);

// The device id of a device-message tree (its key 1), for the order of the
// envelope's list: "sorted by device id, without duplicates" (MSG-010).
const deviceIdOf = (node) => node.entries.find((e) => e.key.value === 1n).value.value;

// envelope (section 11.5)
const ENVELOPE = struct([
  field(1, 'version', uint(1n, 1n)), // checked in stage 2
  field(2, 'messageId', MESSAGE_ID),
  field(3, 'sender', ADDRESS),
  field(4, 'recipient', ACCOUNT),
  field(5, 'deviceMessages', list(DEVICE_MESSAGE, 1, MAX_FANOUT, deviceIdOf)),
  field(6, 'type', enumeration({ 1: 'chat', 2: 'receipt', 3: 'sync', 4: 'control' })),
  field(7, 'priority', enumeration({ 0: 'low', 1: 'normal', 2: 'high' })),
  field(8, 'ttl', uint(1n, BigInt(MAX_TTL))),
  field(9, 'sentAt', TIMESTAMP),
]);

/**
 * The rules that wire.decode implements. `versioned`: the rule carries a
 * protocol version under key 1 and goes through stage 2. `maxSize`: a limit
 * on the whole encoding, checked before decoding.
 */
export const RULES = {
  envelope: { schema: ENVELOPE, versioned: true, maxSize: MAX_ENVELOPE_SIZE },
  'device-message': { schema: DEVICE_MESSAGE, versioned: false },
  address: { schema: ADDRESS, versioned: false },
};

// ---------------------------------------------------------------------------
// Decoding.

const fail = (name, detail) => {
  throw new ProtocolError(name, detail);
};

/**
 * Decodes `bytes` as the CDDL rule `ruleName`: every stage of section
 * 10.2 and the checks chapter 11 attaches to the rule. Returns the decoded
 * value, or throws a ProtocolError with the code of the first fault.
 */
export function decodeRule(ruleName, bytes) {
  const rule = RULES[ruleName];
  if (!rule) throw new Error(`no such rule ${ruleName}`);
  // MSG-011: an envelope larger than MAX_ENVELOPE_SIZE is refused before
  // it is decoded.
  if (rule.maxSize !== undefined && bytes.length > rule.maxSize) {
    fail('decode.too_long', `${bytes.length} bytes, more than ${rule.maxSize}`);
  }
  const tree = decodeStage1(bytes); // stage 1, form
  if (rule.versioned) checkVersion(tree); // stage 2, version
  pass3a(tree, rule.schema, ruleName); // stage 3, schema
  pass3b(tree, rule.schema, ruleName);
  pass3c(tree, rule.schema, ruleName);
  return toValue(tree, rule.schema);
}

/** Encodes a value that decodeRule returned (or one of the same shape). */
export function encodeRule(ruleName, value) {
  const rule = RULES[ruleName];
  if (!rule) throw new Error(`no such rule ${ruleName}`);
  return fromValue(value, rule.schema);
}

/**
 * Stage 2: the top-level item is a map with key 1, an unsigned integer
 * naming a version this decoder implements. Nothing else is looked at, so a
 * newer version with new fields is reported as a version (VER-002).
 */
function checkVersion(tree) {
  if (tree.type !== 'map') fail('decode.wrong_type', `the top-level item is a ${tree.type}, not a map`);
  const entry = tree.entries.find((e) => e.key.type === 'uint' && e.key.value === 1n);
  if (!entry) fail('decode.missing_field', 'no version (key 1)');
  if (entry.value.type !== 'uint') fail('decode.wrong_type', `the version is a ${entry.value.type}`);
  if (!PROTOCOL_VERSIONS.includes(entry.value.value)) {
    fail('decode.unsupported_version', `version ${entry.value.value}`);
  }
}

/**
 * Pass 3a, depth first in input order: a key that the structure does not
 * define (decode.unknown_field), a value of another CBOR type than its
 * field requires (decode.wrong_type).
 */
function pass3a(node, schema, path) {
  if (node.type !== schema.cbor) {
    fail('decode.wrong_type', `${path} is a ${node.type}, not a ${schema.cbor}`);
  }
  switch (schema.kind) {
    case 'map':
      for (const { key, value } of node.entries) {
        const f = key.type === 'uint' ? schema.fields.find((x) => BigInt(x.key) === key.value) : undefined;
        if (!f) fail('decode.unknown_field', `${path} has key ${describeKey(key)}, which it does not define`);
        pass3a(value, f.type, `${path}.${f.name}`);
      }
      break;
    case 'tuple':
      // Elements beyond the tuple's length have no type; their count is a
      // pass 3c fault.
      node.items.slice(0, schema.items.length).forEach((item, i) => {
        pass3a(item, schema.items[i].type, `${path}.${schema.items[i].name}`);
      });
      break;
    case 'list':
      node.items.forEach((item, i) => pass3a(item, schema.item, `${path}[${i}]`));
      break;
    default:
      break;
  }
}

/**
 * Pass 3b, depth first in input order: a required key absent from a map
 * (decode.missing_field). A missing key is reported where it would have
 * been: after the smaller keys' values, before the larger keys.
 */
function pass3b(node, schema, path) {
  switch (schema.kind) {
    case 'map':
      for (const f of schema.fields) { // in increasing key order
        const entry = node.entries.find((e) => e.key.value === BigInt(f.key));
        if (entry) pass3b(entry.value, f.type, `${path}.${f.name}`);
        else if (!f.optional) fail('decode.missing_field', `${path} has no ${f.name} (key ${f.key})`);
      }
      break;
    case 'tuple':
      node.items.slice(0, schema.items.length).forEach((item, i) => {
        pass3b(item, schema.items[i].type, `${path}.${schema.items[i].name}`);
      });
      break;
    case 'list':
      node.items.forEach((item, i) => pass3b(item, schema.item, `${path}[${i}]`));
      break;
    default:
      break;
  }
}

/**
 * Pass 3c, depth first in input order: sizes of strings, counts of
 * arrays, ranges of integers and enumerations, the account pattern, and the
 * order of sorted lists. A list is checked for its count first, then
 * element by element, each element's own checks before its order against
 * the element before it (section 11.4).
 */
function pass3c(node, schema, path) {
  switch (schema.kind) {
    case 'uint':
      if (node.value < schema.min || node.value > schema.max) {
        fail('decode.value_out_of_range', `${path} is ${node.value}, not in ${schema.min} .. ${schema.max}`);
      }
      break;
    case 'enum':
      if (!(node.value in schema.names)) fail('decode.value_out_of_range', `${path} is ${node.value}, which is not defined`);
      break;
    case 'bstr':
      if (node.value.length > schema.max) fail('decode.too_long', `${path} has ${node.value.length} bytes, at most ${schema.max}`);
      if (node.value.length < schema.min) fail('decode.too_short', `${path} has ${node.value.length} bytes, at least ${schema.min}`);
      break;
    case 'account':
      // MSG-001: an account that does not match its pattern is out of range.
      if (!isAccount(node.bytes)) fail('decode.value_out_of_range', `${path} ${JSON.stringify(node.value)} is not an account name`);
      break;
    case 'tuple':
      if (node.items.length > schema.items.length) fail('decode.too_many', `${path} has ${node.items.length} elements, not ${schema.items.length}`);
      if (node.items.length < schema.items.length) fail('decode.too_short', `${path} has ${node.items.length} elements, not ${schema.items.length}`);
      node.items.forEach((item, i) => pass3c(item, schema.items[i].type, `${path}.${schema.items[i].name}`));
      break;
    case 'list':
      if (node.items.length > schema.max) fail('decode.too_many', `${path} has ${node.items.length} elements, at most ${schema.max}`);
      if (node.items.length < schema.min) fail('decode.too_short', `${path} has ${node.items.length} elements, at least ${schema.min}`);
      node.items.forEach((item, i) => {
        pass3c(item, schema.item, `${path}[${i}]`);
        // MSG-010: strictly increasing, so without duplicates.
        if (schema.sortKey && i > 0 && !(schema.sortKey(node.items[i - 1]) < schema.sortKey(item))) {
          fail('decode.value_out_of_range', `${path}[${i}] is not after ${path}[${i - 1}]`);
        }
      });
      break;
    case 'map':
      for (const f of schema.fields) {
        const entry = node.entries.find((e) => e.key.value === BigInt(f.key));
        if (entry) pass3c(entry.value, f.type, `${path}.${f.name}`);
      }
      break;
    default:
      throw new Error(`unknown schema kind ${schema.kind}`);
  }
}

/** account = [a-z0-9][a-z0-9._-]{0,31}, matched against the whole UTF-8 bytes. */
function isAccount(bytes) {
  if (bytes.length < 1 || bytes.length > 32) return false;
  const lowerOrDigit = (b) => (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39);
  if (!lowerOrDigit(bytes[0])) return false;
  for (let i = 1; i < bytes.length; i++) {
    const b = bytes[i];
    if (!(lowerOrDigit(b) || b === 0x2e || b === 0x5f || b === 0x2d)) return false; // . _ -
  }
  return true;
}

function describeKey(key) {
  if (key.type === 'uint') return String(key.value);
  if (key.type === 'tstr') return JSON.stringify(key.value);
  return `(${key.type === 'array' ? 'an' : 'a'} ${key.type})`;
}

/**
 * The value of a tree that passed every check: bigint for integers, the
 * name for an enumerated value, Uint8Array for byte strings, string for
 * text, arrays, and objects with the field names of the schema (an absent
 * optional field is absent from the object).
 */
function toValue(node, schema) {
  switch (schema.kind) {
    case 'uint':
      return node.value;
    case 'enum':
      return schema.names[node.value];
    case 'bstr':
    case 'account':
      return node.value;
    case 'tuple':
      return Object.fromEntries(schema.items.map((it, i) => [it.name, toValue(node.items[i], it.type)]));
    case 'list':
      return node.items.map((item) => toValue(item, schema.item));
    case 'map': {
      const out = {};
      for (const f of schema.fields) {
        const entry = node.entries.find((e) => e.key.value === BigInt(f.key));
        if (entry) out[f.name] = toValue(entry.value, f.type);
      }
      return out;
    }
    default:
      throw new Error(`unknown schema kind ${schema.kind}`);
  }
}

/** The canonical encoding (section 10.1) of a value of the shape toValue returns. */
function fromValue(value, schema) {
  switch (schema.kind) {
    case 'uint':
      return encodeUint(value);
    case 'enum': {
      const entry = Object.entries(schema.names).find(([, name]) => name === value);
      if (!entry) throw new Error(`undefined enumerated value ${value}`);
      return encodeUint(BigInt(entry[0]));
    }
    case 'bstr':
      return encodeBstr(value);
    case 'account':
      return encodeTstr(value);
    case 'tuple':
      return encodeArray(schema.items.map((it) => fromValue(value[it.name], it.type)));
    case 'list':
      return encodeArray(value.map((v) => fromValue(v, schema.item)));
    case 'map':
      // CBOR-002: an absent optional field is omitted; nothing else is encoded.
      return encodeMap(schema.fields
        .filter((f) => value[f.name] !== undefined)
        .map((f) => [encodeUint(BigInt(f.key)), fromValue(value[f.name], f.type)]));
    default:
      throw new Error(`unknown schema kind ${schema.kind}`);
  }
}
