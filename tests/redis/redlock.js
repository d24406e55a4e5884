// npm redlock 4.2.0 on npm ioredis 4.31.0 against a Redis-dialect server.
//
//   NODE_PATH=<install dir>/node_modules node tests/redis/redlock.js 127.0.0.1:PORT
//   (or LOCKBOX_REDIS_ADDR=127.0.0.1:PORT)
//
// Covers acquire, retry (refused after retryCount, granted once released), extend,
// release, ttl expiry and a lock over several resources. redlock sends `EVALSHA` of its
// lock, unlock and extend scripts and falls back to `EVAL <text>` on NOSCRIPT; a failed
// attempt is followed by the unlock script for the same value.
'use strict';

const Redis = require('ioredis');
const Redlock = require('redlock');
const { address, check, sleep, within, run } = require('./harness');

const { host, port } = address();
// Resource names are unique to this run, so runs against one server do not collide.
const N = (name) => `${process.pid}-rl-${name}`;

const clients = [];

/** A new connection (ioredis) with its own Redlock over it. */
function connect(options) {
  const client = new Redis({ host, port, lazyConnect: false, maxRetriesPerRequest: 1, retryStrategy: () => null });
  client.on('error', () => { /* reported by the failing command */ });
  clients.push(client);
  const redlock = new Redlock([client], Object.assign({ driftFactor: 0.01, retryJitter: 10 }, options));
  redlock.clientErrors = [];
  redlock.on('clientError', (e) => redlock.clientErrors.push(String(e && e.message ? e.message : e)));
  return { client, redlock };
}

/** The promise's rejection, or null when it resolved. */
async function rejection(promise) {
  try { await promise; return null; } catch (e) { return e; }
}

run('redlock 4.2.0 (ioredis 4.31.0) against a Redis-dialect server', [
  ['acquire, extend and release', async () => {
    const { client, redlock } = connect({ retryCount: 0 });
    const lock = await within(5000, redlock.lock(N('a'), 1000), 'lock a');
    check(typeof lock.value === 'string' && lock.value.length === 32, 'a free resource is locked with a random value', lock.value);
    check(lock.attempts === 1, 'on the first attempt', lock.attempts);
    check((await client.get(N('a'))) === lock.value, 'the key holds the lock value');
    const pttl = await client.pttl(N('a'));
    check(pttl > 800 && pttl <= 1000, 'the key ends at the ttl', pttl);
    const extended = await lock.extend(3000);
    check(extended === lock && lock.expiration > Date.now() + 2500, 'extend(3000) resolves with the same lock, later expiration');
    const pttl2 = await client.pttl(N('a'));
    check(pttl2 > 2500 && pttl2 <= 3000, 'the key ends 3000 ms after the extend', pttl2);
    await lock.unlock();
    check((await client.exists(N('a'))) === 0, 'unlock deletes the key');
    const again = await rejection(lock.unlock());
    check(again instanceof Redlock.LockError, 'a second unlock is rejected with a LockError', again && again.message);
    const late = await rejection(lock.extend(1000));
    check(late instanceof Redlock.LockError, 'extending a released lock is rejected with a LockError', late && late.message);
    check(redlock.clientErrors.length === 0, 'no client errors', redlock.clientErrors);
  }],
  ['retry: refused after retryCount attempts while held', async () => {
    const holder = connect({ retryCount: 0 });
    const lock = await holder.redlock.lock(N('b'), 5000);
    const other = connect({ retryCount: 2, retryDelay: 100 });
    const t0 = Date.now();
    const e = await within(5000, rejection(other.redlock.lock(N('b'), 5000)), 'lock b while held');
    const ms = Date.now() - t0;
    check(e instanceof Redlock.LockError, 'the lock is refused with a LockError', e && e.message);
    check(e.attempts === 3, 'after 1 + retryCount attempts', e.attempts);
    check(ms >= 150, `spread over the retry delays (${ms} ms)`, ms);
    check((await holder.client.get(N('b'))) === lock.value, 'the holder\'s value is untouched by the failed attempts');
    check(other.redlock.clientErrors.length === 0, 'no client errors', other.redlock.clientErrors);
    await lock.unlock();
  }],
  ['retry: granted once the holder releases', async () => {
    const holder = connect({ retryCount: 0 });
    const lock = await holder.redlock.lock(N('c'), 5000);
    const waiter = connect({ retryCount: 50, retryDelay: 50 });
    const t0 = Date.now();
    const pending = waiter.redlock.lock(N('c'), 5000);
    await sleep(300);
    await lock.unlock();
    const got = await within(5000, pending, 'waiter on c');
    const ms = Date.now() - t0;
    check(got.attempts > 1 && ms >= 250, `the waiter gets c after retrying (attempt ${got.attempts}, ${ms} ms)`, { attempts: got.attempts, ms });
    check((await waiter.client.get(N('c'))) === got.value, 'the key holds the waiter\'s value');
    await got.unlock();
  }],
  ['ttl expiry', async () => {
    const holder = connect({ retryCount: 0 });
    const lock = await holder.redlock.lock(N('d'), 300);
    const other = connect({ retryCount: 0 });
    const busy = await rejection(other.redlock.lock(N('d'), 1000));
    check(busy instanceof Redlock.LockError, 'd is held before its ttl runs out');
    await sleep(450);
    check((await holder.client.exists(N('d'))) === 0, 'the key is gone after its ttl');
    const late = await rejection(lock.extend(1000));
    check(late instanceof Redlock.LockError, 'the expired lock cannot be extended');
    const got = await other.redlock.lock(N('d'), 1000);
    check(got.value !== lock.value, 'another client locks d after the expiry');
    const stale = await rejection(holder.redlock.unlock(lock));
    check(stale instanceof Redlock.LockError, 'the expired lock\'s unlock is refused');
    check((await other.client.get(N('d'))) === got.value, 'and does not remove the new holder\'s key');
    await got.unlock();
  }],
  ['extend and unlock are refused by the server when the key is someone else\'s', async () => {
    const holder = connect({ retryCount: 0 });
    const lock = await holder.redlock.lock(N('e'), 5000);
    const other = connect({ retryCount: 0 });
    check((await other.client.del(N('e'))) === 1, 'another connection deletes the key with DEL');
    const theirs = await other.redlock.lock(N('e'), 5000);
    const ext = await rejection(lock.extend(5000));
    check(ext instanceof Redlock.LockError, 'the first holder\'s extend is refused', ext && ext.message);
    const un = await rejection(lock.unlock());
    check(un instanceof Redlock.LockError, 'the first holder\'s unlock is refused', un && un.message);
    check((await other.client.get(N('e'))) === theirs.value, 'the key still holds the new holder\'s value');
    await theirs.unlock();
  }],
  ['several resources in one lock', async () => {
    const { client, redlock } = connect({ retryCount: 0 });
    const lock = await redlock.lock([N('m1'), N('m2')], 2000);
    check((await client.get(N('m1'))) === lock.value && (await client.get(N('m2'))) === lock.value, 'both keys hold the lock value');
    const other = connect({ retryCount: 0 });
    const overlap = await rejection(other.redlock.lock([N('m2'), N('m3')], 2000));
    check(overlap instanceof Redlock.LockError, 'an overlapping lock is refused');
    check((await client.exists(N('m3'))) === 0, 'and sets none of its keys');
    await lock.extend(4000);
    const pttl = await client.pttl(N('m1'));
    const pttl2 = await client.pttl(N('m2'));
    check(pttl > 3500 && pttl2 > 3500, 'extend moves every key\'s deadline', [pttl, pttl2]);
    await lock.unlock();
    check((await client.exists(N('m1'), N('m2'))) === 0, 'unlock deletes every key');
  }],
], async () => {
  for (const c of clients) c.disconnect();
});
