// Self-checks of the adapter: the line protocol and a few decoding orders
// that the vectors do not pin down. Run with `npm test`. The conformance
// runner (see README.md) is the real test.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { decodeRule, encodeRule } from '../lib/wire.js';

const adapterPath = fileURLToPath(new URL('../adapter.js', import.meta.url));

/** Sends lines to a fresh adapter and returns its response lines, parsed. */
async function exchange(lines) {
  const child = spawn(process.execPath, [adapterPath], { stdio: ['pipe', 'pipe', 'ignore'] });
  const out = [];
  const done = new Promise((resolve) => {
    createInterface({ input: child.stdout }).on('line', (l) => out.push(JSON.parse(l))).on('close', resolve);
  });
  child.stdin.end(lines.join('\n') + '\n');
  await done;
  return out;
}

const hex = (h) => new Uint8Array(Buffer.from(h, 'hex'));
function decodeError(rule, h) {
  try {
    decodeRule(rule, hex(h));
  } catch (err) {
    return err.errorName;
  }
  return 'OK';
}

test('hello, an unknown method, and garbage lines', async () => {
  const out = await exchange([
    '{"id":"1","method":"hello","hello":{"runner":"test"}}',
    '{"id":"2","method":"missive.no-such-method"}',
    'not json at all',
    '\u0000\u00ff',
    '[1,2,3]',
    '{"id":"3","method":"wire.decode","wireDecode":{"rule":"frame","encoding":"oA=="}}',
    '{"id":"4","method":"wire.decode","wireDecode":{"rule":"address","encoding":"gmVhbGljZQE="}}',
  ]);
  assert.equal(out.length, 7);
  assert.equal(out[0].id, '1');
  assert.equal(out[0].status, 'OK');
  assert.deepEqual(out[0].hello.features, ['xeddsa.sign', 'xeddsa.verify', 'wire.decode']);
  assert.deepEqual(out[1], { id: '2', status: 'UNIMPLEMENTED', detail: 'unknown method missive.no-such-method' });
  for (const r of out.slice(2, 5)) {
    assert.equal(r.status, 'ERROR');
    assert.equal(r.errorCode, undefined);
  }
  assert.equal(out[5].status, 'UNIMPLEMENTED');
  assert.deepEqual(out[6], { id: '4', status: 'OK', wireDecode: { encoding: 'gmVhbGljZQE=' } });
});

test('methods of chapters 16 to 18 are unimplemented', async () => {
  const methods = ['group.check_state', 'sender_key.create', 'sender_key.decrypt', 'media.decrypt', 'lifecycle.run',
    'group_receipts.fold'];
  const out = await exchange(methods.map((m, i) => JSON.stringify({ id: String(i + 1), method: m })));
  assert.deepEqual(out.map((r) => r.status), methods.map(() => 'UNIMPLEMENTED'));
});

test('envelope types include control (section 11.5)', () => {
  // {1: 1, 2: h'00..00', 3: ["alice", 1], 4: "bob", 5: [{1: 1, 2: 1, 3: h'00'}], 6: 4, 7: 1, 8: 60, 9: 0}
  const envelope = hex('a9010102500000000000000000000000000000000003' + '8265616c69636501' + '0463626f62' +
    '0581a30101020103410006040701' + '08183c' + '0900');
  assert.equal(decodeRule('envelope', envelope).type, 'control');
  assert.deepEqual(encodeRule('envelope', decodeRule('envelope', envelope)), envelope);
});

test('a decoded value re-encodes to the same bytes', () => {
  const address = hex('8265616c69636501'); // ["alice", 1]
  const value = decodeRule('address', address);
  assert.deepEqual(value, { account: 'alice', deviceId: 1n });
  assert.deepEqual(encodeRule('address', value), address);
});

// The orders below follow this adapter's reading of sections 10.2 and
// 11.4; README.md lists them as assumptions.
test('stage 1: a fault is reported at the byte that makes it certain', () => {
  // A text string of 5 bytes whose first byte is a lone continuation byte,
  // cut after it: invalid UTF-8 at byte 1 before the truncation at the end.
  assert.equal(decodeError('address', '6582'), 'decode.invalid_utf8');
  // Keys "aab" and then "a`" followed by 0xFF: that the second sorts
  // before the first is certain at its third byte ("`" < "a"), before its
  // invalid UTF-8 byte.
  assert.equal(decodeError('device-message', 'a2' + '6361616200' + '636160ff00'), 'decode.unsorted_map');
});

test('stage 3: passes 3a, 3b, 3c in input order', () => {
  // A key that is not an unsigned integer, of any type, is unknown (3a).
  assert.equal(decodeError('device-message', 'a140' + '00'), 'decode.unknown_field');
  // 3a comes before 3c: ["alice"] is too short, but [1] has a wrong type.
  assert.equal(decodeError('address', '8165616c696365'), 'decode.too_short');
  assert.equal(decodeError('address', '8101'), 'decode.wrong_type');
  // Within 3a, input order: the wrong type of key 1 before the unknown key 4.
  assert.equal(decodeError('device-message', 'a4' + '0161' + '31' + '0201' + '034101' + '0400'), 'decode.wrong_type');
});
