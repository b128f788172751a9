// The real `hibp` npm client (v15), pointed at a local breachdex through its `baseUrl`
// option, gets the answers Have I Been Pwned would give for the fixture's dumps
// (tests/clients/fixture). Run by scripts/client-tests.sh, which builds the fixture
// index, starts `breachdex serve` and sets BREACHDEX_URL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as hibp from 'hibp';

const server = process.env.BREACHDEX_URL;
assert.ok(server, 'BREACHDEX_URL must name the running server (scripts/client-tests.sh sets it)');
const userAgent = 'breachdex-client-tests';
const passwords = { baseUrl: server, userAgent };

const sha1 = (text) => createHash('sha1').update(text, 'utf8').digest('hex').toUpperCase();

test('pwnedPassword counts the records holding a password', async () => {
  // hunter2: alice and carol in acme-2023, dave in forum-2021.
  assert.equal(await hibp.pwnedPassword('hunter2', passwords), 3);
  assert.equal(await hibp.pwnedPassword('Password1', passwords), 1);
  // letmein only appears as a SHA-1 hash typed sha1 (once upper, once lower case).
  assert.equal(await hibp.pwnedPassword('letmein', passwords), 2);
  assert.equal(await hibp.pwnedPassword('correct horse battery staple', passwords), 1);
});

test('pwnedPassword is 0 for a password in no dump', async () => {
  assert.equal(await hibp.pwnedPassword('a password nobody has ever leaked 7f3c', passwords), 0);
  assert.equal(await hibp.pwnedPassword('a password nobody has ever leaked 7f3c', { ...passwords, addPadding: true }), 0);
});

test('pwnedPasswordRange with padding: 800 to 1,000 suffixes, real counts intact, padding at 0', async () => {
  const hash = sha1('hunter2');
  const plain = await hibp.pwnedPasswordRange(hash.slice(0, 5), passwords);
  assert.equal(plain[hash.slice(5)], 3);
  const padded = await hibp.pwnedPasswordRange(hash.slice(0, 5), { ...passwords, addPadding: true });
  const suffixes = Object.keys(padded);
  assert.ok(suffixes.length >= 800 && suffixes.length <= 1000, `${suffixes.length} suffixes`);
  assert.equal(padded[hash.slice(5)], 3);
  for (const [suffix, count] of Object.entries(plain)) assert.equal(padded[suffix], count, suffix);
  const padding = suffixes.filter((s) => !(s in plain));
  assert.equal(padding.length, suffixes.length - Object.keys(plain).length);
  for (const s of padding) {
    assert.equal(padded[s], 0, s);
    assert.match(s, /^[0-9A-F]{35}$/);
  }
});

test("pwnedPasswordRange in mode 'ntlm' answers NTLM suffixes", async () => {
  // NTLM("hunter2") = 6608E4BC7B2B7A5F77CE3573570775AF (MD4 of the UTF-16LE password).
  const ntlm = '6608E4BC7B2B7A5F77CE3573570775AF';
  const range = await hibp.pwnedPasswordRange(ntlm.slice(0, 5), { ...passwords, mode: 'ntlm' });
  assert.equal(range[ntlm.slice(5)], 3);
  for (const s of Object.keys(range)) assert.match(s, /^[0-9A-F]{27}$/);
  // letmein was only ever stored as SHA-1: it has no NTLM hash.
  const padded = await hibp.pwnedPasswordRange(ntlm.slice(0, 5), { ...passwords, mode: 'ntlm', addPadding: true });
  assert.ok(Object.keys(padded).length >= 800);
  assert.equal(padded[ntlm.slice(5)], 3);
});

test('pwnedPasswordRange rejects a malformed prefix with the server reason', async () => {
  await assert.rejects(hibp.pwnedPasswordRange('5BAA', passwords), /The hash prefix was not in a valid format/);
  await assert.rejects(hibp.pwnedPasswordRange('XYZ12', passwords), /The hash prefix was not in a valid format/);
});
