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

// Breaches and accounts: the client's base URL for them is the server's /api/v3.
const api = { baseUrl: `${server}/api/v3`, userAgent };
const keyed = { ...api, apiKey: process.env.HIBP_KEY };
const names = (breaches) => breaches.map((b) => b.Name).sort();

test('breachedAccount is truncated to names by default and includes unverified sources', async () => {
  const found = await hibp.breachedAccount('alice@example.com', keyed);
  assert.deepEqual(names(found), ['acme-2023', 'forum-2021', 'gadgets-2022']);
  for (const b of found) assert.deepEqual(Object.keys(b), ['Name']);
  // A username finds its breaches too.
  assert.deepEqual(names(await hibp.breachedAccount('dave_d', keyed)), ['forum-2021']);
});

test('breachedAccount with truncate: false gives full breach objects', async () => {
  const found = await hibp.breachedAccount('bob@example.com', { ...keyed, truncate: false });
  assert.equal(found.length, 1);
  const [acme] = found;
  assert.equal(acme.Name, 'acme-2023');
  assert.equal(acme.Title, 'Acme Customer Database 2023');
  assert.equal(acme.Domain, 'acme.example');
  assert.equal(acme.BreachDate, '2023-05-10');
  assert.equal(acme.PwnCount, 3);
  assert.equal(acme.IsVerified, true);
  for (const c of ['Email addresses', 'Passwords', 'Names']) assert.ok(acme.DataClasses.includes(c), c);
});

test('breachedAccount filters by domain and can exclude unverified sources', async () => {
  const acme = await hibp.breachedAccount('alice@example.com', { ...keyed, domain: 'acme.example' });
  assert.deepEqual(names(acme), ['acme-2023']);
  const verified = await hibp.breachedAccount('alice@example.com', { ...keyed, includeUnverified: false });
  assert.deepEqual(names(verified), ['acme-2023', 'gadgets-2022']);
  // dave is only in the unverified forum: nothing left, so null.
  assert.equal(await hibp.breachedAccount('dave@example.org', { ...keyed, includeUnverified: false }), null);
});

test('breachedAccount of an account in no breach is null', async () => {
  assert.equal(await hibp.breachedAccount('nobody@nowhere.example', keyed), null);
});

test('breaches lists every source, and one domain on request', async () => {
  const all = await hibp.breaches(api);
  assert.deepEqual(names(all), ['acme-2023', 'forum-2021', 'gadgets-2022']);
  const forum = all.find((b) => b.Name === 'forum-2021');
  assert.equal(forum.IsVerified, false);
  assert.ok(forum.DataClasses.includes('Usernames'));
  assert.deepEqual(names(await hibp.breaches({ ...api, domain: 'acme.example' })), ['acme-2023']);
});

test('breach answers one source, null for an unknown name', async () => {
  const gadgets = await hibp.breach('gadgets-2022', api);
  assert.equal(gadgets.Title, 'Gadget Store 2022');
  assert.equal(gadgets.PwnCount, 2);
  assert.equal(await hibp.breach('no-such-breach', api), null);
});

test('dataClasses lists the classes of the index', async () => {
  const classes = await hibp.dataClasses(api);
  for (const c of ['Email addresses', 'Names', 'Passwords', 'Usernames']) assert.ok(classes.includes(c), c);
});

test("subscriptionStatus describes the key's plan", async () => {
  const status = await hibp.subscriptionStatus(keyed);
  assert.equal(status.SubscriptionName, 'Enterprise');
  assert.equal(status.Rpm, 300);
});

test('a bad key is an error naming the key', async () => {
  await assert.rejects(hibp.breachedAccount('alice@example.com', { ...api, apiKey: 'bdx_not_a_key' }), /key/i);
  await assert.rejects(hibp.subscriptionStatus({ ...api, apiKey: 'bdx_not_a_key' }), /key/i);
});

test('a starter key past its 10 requests a minute gets RateLimitError with retryAfterSeconds', async () => {
  const starter = { ...api, apiKey: process.env.STARTER_KEY };
  assert.equal((await hibp.subscriptionStatus(starter)).SubscriptionName, 'Starter');
  // At most 10 a minute: within 22 calls one is refused, whichever minute they start in.
  let refused = null;
  for (let i = 0; i < 22 && !refused; i += 1) {
    try {
      await hibp.breachedAccount('alice@example.com', starter);
    } catch (e) {
      refused = e;
    }
  }
  assert.ok(refused instanceof hibp.RateLimitError, `expected RateLimitError, got ${refused}`);
  assert.ok(refused.retryAfterSeconds >= 1 && refused.retryAfterSeconds <= 60, `${refused.retryAfterSeconds}`);
  assert.match(refused.message, /Rate limit is exceeded\. Try again in \d+ seconds\./);
});
