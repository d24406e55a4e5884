// npm dist-lock 2.0.1 on npm redis 0.12.1 against a Redis-dialect server.
//
//   NODE_PATH=<install dir>/node_modules node tests/redis/distlock.js 127.0.0.1:PORT
//   (or LOCKBOX_REDIS_ADDR=127.0.0.1:PORT)
//
// Covers acquire, owner (getAcquiredLock), wait and retry, maxRetries, ttl expiry,
// release and extend. dist-lock sends `SCRIPT LOAD` of its three scripts on connect and
// then `EVAL <text>` for every operation, and `HMGET key id owner` for the owner.
// Every dist-lock instance here has its own connection; its options (ttl, retryDelay,
// maxRetries) are fixed per instance.
'use strict';

const redis = require('redis');
const distLock = require('dist-lock');
const { address, check, sleep, within, call, run } = require('./harness');

const { host, port } = address();
// Resource names are unique to this run, so runs against one server do not collide.
const N = (name) => `${process.pid}-${name}`;
const KEY = (name) => `lock:${N(name)}`;

const clients = [];

/** A new connection (redis 0.12 client) with its own dist-lock instance. */
function connect(options) {
  const client = redis.createClient(port, host, { max_attempts: 1 });
  client.errors = [];
  client.on('error', (e) => client.errors.push(String(e && e.message ? e.message : e)));
  clients.push(client);
  return { client, dl: distLock(client, Object.assign({}, options)) };
}

/** acquire() as a promise: { lock, ms } with the time it took. */
async function acquire(dl, name, owner) {
  const t0 = Date.now();
  const lock = await call(dl.acquire, N(name), owner);
  return { lock, ms: Date.now() - t0 };
}

run('dist-lock 2.0.1 (redis 0.12.1) against a Redis-dialect server', [
  ['acquire a free lock and read its owner', async () => {
    const { client, dl } = connect({ ttl: 5000 });
    const { lock } = await within(5000, acquire(dl, 'a', 'worker-1'), 'acquire a');
    check(lock && typeof lock.id === 'string' && lock.id.length > 0, 'a free lock is acquired with an id', lock && lock.id);
    check(lock.acquiredOnAttempt === 1, 'on the first attempt', lock.acquiredOnAttempt);
    check(lock.key === KEY('a'), 'under the key lock:<resource>', lock.key);
    const seen = await call(dl.getAcquiredLock, N('a'));
    check(seen && seen.id === lock.id && seen.owner === 'worker-1', 'getAcquiredLock shows its id and owner', seen && { id: seen.id, owner: seen.owner });
    const fields = await call(client.hgetall.bind(client), KEY('a'));
    check(fields && fields.id === lock.id && fields.owner === 'worker-1', 'the key is a hash with fields id and owner', fields);
    const pttl = await call(client.pttl.bind(client), KEY('a'));
    check(pttl > 4000 && pttl <= 5000, 'the key ends at its ttl', pttl);
    check((await call(lock.release)) === true, 'release reports true');
    check((await call(dl.getAcquiredLock, N('a'))) === null, 'getAcquiredLock is null once released');
    check((await call(client.exists.bind(client), KEY('a'))) === 0, 'the key is gone');
  }],
  ['maxRetries: a held lock is refused after 1 + maxRetries attempts', async () => {
    const holder = connect({ ttl: 10000 });
    const { lock } = await acquire(holder.dl, 'b', 'holder');
    check(!!lock, 'the holder has b');
    const other = connect({ ttl: 10000, retryDelay: 50, maxRetries: 3 });
    const r = await within(5000, acquire(other.dl, 'b', 'other'), 'acquire b with maxRetries');
    check(r.lock === false, 'acquire gives false when the lock stays held', r.lock);
    check(r.ms >= 140, `it retried for about 3 x 50 ms (${r.ms} ms)`, r.ms);
    const none = connect({ ttl: 10000, maxRetries: 0 });
    const r0 = await acquire(none.dl, 'b', 'other');
    check(r0.lock === false, 'maxRetries 0 tries once and gives false', r0.lock);
    const seen = await call(holder.dl.getAcquiredLock, N('b'));
    check(seen && seen.id === lock.id && seen.owner === 'holder', 'the failed attempts left the holder\'s lock alone', seen && seen.owner);
    check((await call(lock.release)) === true, 'the holder releases b');
  }],
  ['wait and retry: a waiter gets the lock after the holder releases it', async () => {
    const holder = connect({ ttl: 10000 });
    const { lock } = await acquire(holder.dl, 'c', 'holder');
    check(!!lock, 'the holder has c');
    const waiter = connect({ ttl: 10000, retryDelay: 50 });
    const pending = acquire(waiter.dl, 'c', 'waiter');
    await sleep(300);
    check((await call(lock.release)) === true, 'the holder releases c after 300 ms');
    const r = await within(5000, pending, 'the waiter on c');
    check(r.lock && r.lock.owner === 'waiter', 'the waiter acquires c', r.lock && r.lock.owner);
    check(r.lock.acquiredOnAttempt > 1 && r.ms >= 250, `after retrying (attempt ${r.lock.acquiredOnAttempt}, ${r.ms} ms)`, { attempt: r.lock.acquiredOnAttempt, ms: r.ms });
    check((await call(r.lock.release)) === true, 'the waiter releases c');
  }],
  ['ttl expiry: an unreleased lock ends at its ttl', async () => {
    const holder = connect({ ttl: 300 });
    const { lock } = await acquire(holder.dl, 'd', 'holder');
    check(!!lock, 'the holder has d with a 300 ms ttl');
    const waiter = connect({ ttl: 5000, retryDelay: 25 });
    const r = await within(5000, acquire(waiter.dl, 'd', 'waiter'), 'acquire d after expiry');
    check(r.lock && r.lock.owner === 'waiter', 'another client gets d once it expired', r.lock && r.lock.owner);
    check(r.ms >= 200, `not before the ttl ran out (${r.ms} ms)`, r.ms);
    check((await call(lock.release)) === false, 'the expired lock\'s release reports false (not the new holder\'s)');
    check((await call(lock.extend, 5000)) === false, 'the expired lock\'s extend reports false');
    const seen = await call(waiter.dl.getAcquiredLock, N('d'));
    check(seen && seen.id === r.lock.id, 'the new holder still has d', seen && seen.owner);
    check((await call(r.lock.release)) === true, 'the new holder releases d');
  }],
  ['extend: a lock lives on past its first ttl', async () => {
    const { client, dl } = connect({ ttl: 400 });
    const { lock } = await acquire(dl, 'e', 'holder');
    check(!!lock, 'the holder has e with a 400 ms ttl');
    await sleep(200);
    check((await call(lock.extend, 2000)) === true, 'extend(2000) reports true');
    const pttl = await call(client.pttl.bind(client), KEY('e'));
    check(pttl > 1500 && pttl <= 2000, 'the ttl is now about 2000 ms', pttl);
    await sleep(400);
    const other = connect({ ttl: 1000, maxRetries: 0 });
    check((await acquire(other.dl, 'e', 'other')).lock === false, 'past the first ttl the lock is still held');
    check((await call(lock.release)) === true, 'release reports true');
  }],
  ['release: twice, and with a wrong id', async () => {
    const { dl } = connect({ ttl: 5000 });
    const { lock } = await acquire(dl, 'f', 'holder');
    check((await call(dl.releaseLock, N('f'), 'not-the-id')) === false, 'releaseLock with a wrong id reports false');
    check((await call(dl.getAcquiredLock, N('f'))).id === lock.id, 'and leaves the lock held');
    check((await call(lock.release)) === true, 'release reports true');
    check((await call(lock.release)) === false, 'a second release reports false');
    check((await call(lock.extend, 1000)) === false, 'extend after release reports false');
  }],
], async () => {
  for (const c of clients) c.quit();
});
