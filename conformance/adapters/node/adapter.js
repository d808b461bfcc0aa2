#!/usr/bin/env node
// missive-node-example: an example Missive conformance adapter for Node.js.
//
// The adapter protocol (conformance/adapterpb/adapter.proto): the runner
// writes one JSON request per line on standard input; the adapter writes
// one JSON response per line on standard output, in the proto3 JSON mapping
// (lowerCamelCase field names, bytes as standard base64, 64-bit integers
// as strings or numbers, enums by name). Every response repeats the id of
// its request. Diagnostics go to standard error, which the runner keeps
// for its report.
//
// A request names its method ("xeddsa.sign") and carries its parameters
// in the field named after the method with "." replaced by "_", in
// lowerCamelCase ("xeddsaSign"); the result goes in the response field of
// the same name.
//
// Implemented: hello, xeddsa.sign, xeddsa.verify, and wire.decode for the
// rules "envelope", "device-message" and "address". Everything else is
// answered UNIMPLEMENTED. See README.md.

import { createInterface } from 'node:readline';
import { ProtocolError } from './lib/errors.js';
import { xeddsaSign, xeddsaVerify } from './lib/xeddsa.js';
import { RULES, decodeRule, encodeRule } from './lib/wire.js';

const NAME = 'missive-node-example';
const VERSION = '0.1.0';
const SPEC_VERSIONS = ['1.0.0-draft.1'];
const PROTOCOL_VERSIONS = [1];

/** A method this adapter does not implement for these parameters. */
class Unimplemented extends Error {}

/** A request the adapter cannot read (bad JSON, bad base64, missing params). */
class BadRequest extends Error {}

// ---------------------------------------------------------------------------
// Reading parameters in the proto3 JSON mapping. Parsers must accept the
// proto field name as well as its lowerCamelCase form; an absent field has
// its default value (proto3 JSON omits empty bytes and strings).

function param(params, camelName) {
  if (Object.hasOwn(params, camelName)) return params[camelName];
  const snake = camelName.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  return params[snake];
}

/** A bytes field: standard or URL-safe base64, with or without padding. */
function bytesParam(params, name) {
  const v = param(params, name);
  if (v === undefined || v === null) return new Uint8Array(0);
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(v)) {
    throw new BadRequest(`${name} is not base64`);
  }
  return new Uint8Array(Buffer.from(v, 'base64'));
}

function stringParam(params, name) {
  const v = param(params, name);
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new BadRequest(`${name} is not a string`);
  return v;
}

const base64 = (bytes) => Buffer.from(bytes).toString('base64');

// ---------------------------------------------------------------------------
// Methods. Each takes the params object and returns the result object, or
// throws ProtocolError (answered ERROR with its registered code),
// Unimplemented, or anything else (answered ERROR without a code).

const METHODS = {
  hello: () => ({
    name: NAME,
    version: VERSION,
    specVersions: SPEC_VERSIONS,
    protocolVersions: PROTOCOL_VERSIONS,
    features: IMPLEMENTED_FEATURES,
  }),

  // Section 3.3. The runner supplies the randomness z.
  'xeddsa.sign': (params) => {
    const privateKey = bytesParam(params, 'privateKey');
    const z = bytesParam(params, 'z');
    if (privateKey.length !== 32) throw new BadRequest(`privateKey has ${privateKey.length} bytes, not 32`);
    if (z.length !== 64) throw new BadRequest(`z has ${z.length} bytes, not 64`);
    const { signature, publicKey } = xeddsaSign(privateKey, bytesParam(params, 'message'), z);
    return { signature: base64(signature), publicKey: base64(publicKey) };
  },

  // Section 3.4: OK with no result, or ERROR auth.bad_signature.
  'xeddsa.verify': (params) => {
    const ok = xeddsaVerify(
      bytesParam(params, 'publicKey'),
      bytesParam(params, 'message'),
      bytesParam(params, 'signature'),
    );
    if (!ok) throw new ProtocolError('auth.bad_signature');
    return undefined;
  },

  // Chapter 10 and the rule's checks: OK with the canonical encoding of the
  // decoded value, or ERROR with the decode.* code of the first fault.
  'wire.decode': (params) => {
    const rule = stringParam(params, 'rule');
    if (!Object.hasOwn(RULES, rule)) throw new Unimplemented(`wire.decode of rule ${JSON.stringify(rule)}`);
    const value = decodeRule(rule, bytesParam(params, 'encoding'));
    return { encoding: base64(encodeRule(rule, value)) };
  },
};

// The methods listed in hello's features (hello itself is always required).
const IMPLEMENTED_FEATURES = Object.keys(METHODS).filter((m) => m !== 'hello');

/** "xeddsa.sign" -> "xeddsaSign": the params and result field of a method. */
function fieldName(method) {
  return method.replace(/\./g, '_').replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
}

/**
 * Answers one request line with one response object. Never throws.
 */
function handleLine(line) {
  let id; // absent (0) until the request is read
  try {
    let request;
    try {
      request = JSON.parse(line);
    } catch (err) {
      throw new BadRequest(`not JSON: ${err.message}`);
    }
    if (request === null || typeof request !== 'object' || Array.isArray(request)) {
      throw new BadRequest('a request is a JSON object');
    }
    // uint64: a string or a number; repeat it as given.
    if (typeof request.id === 'string' || typeof request.id === 'number') id = request.id;
    const method = request.method;
    if (typeof method !== 'string') throw new BadRequest('no method');
    if (!Object.hasOwn(METHODS, method)) return { id, status: 'UNIMPLEMENTED', detail: `unknown method ${method}` };

    const name = fieldName(method);
    let params = param(request, name);
    if (params === undefined || params === null) params = {};
    if (typeof params !== 'object' || Array.isArray(params)) throw new BadRequest(`${name} is not an object`);

    const result = METHODS[method](params);
    const response = { id, status: 'OK' };
    if (result !== undefined) response[name] = result;
    return response;
  } catch (err) {
    if (err instanceof ProtocolError) {
      return { id, status: 'ERROR', errorCode: err.errorCode, errorName: err.errorName, detail: err.detail };
    }
    if (err instanceof Unimplemented) return { id, status: 'UNIMPLEMENTED', detail: err.message };
    // A bad request or a bug: ERROR without a registered code. The stack
    // of a bug goes to standard error, which the runner keeps.
    const text = err instanceof BadRequest || !(err && err.stack) ? String(err) : err.stack;
    process.stderr.write(`${NAME}: request ${id ?? '?'}: ${text}\n`);
    return { id, status: 'ERROR', detail: String(err && err.message ? err.message : err) };
  }
}

function respond(response) {
  if (response.id === undefined) delete response.id;
  if (response.detail === '') delete response.detail;
  process.stdout.write(`${JSON.stringify(response)}\n`);
}

// The line loop. Requests are answered in order, one at a time: every
// method is synchronous.
const lines = createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
lines.on('line', (line) => {
  if (line.trim() === '') return; // an empty line is not a request
  respond(handleLine(line));
});

// Last resorts: report and carry on rather than exit in the middle of a run.
process.on('uncaughtException', (err) => {
  process.stderr.write(`${NAME}: uncaught: ${err && err.stack ? err.stack : err}\n`);
});
process.stdout.on('error', (err) => {
  // The runner closed its end: nothing more can be answered.
  if (err.code === 'EPIPE') process.exit(0);
});
