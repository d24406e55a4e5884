// The real `live-mutex` npm client (0.2.25) against lockbox's --livemutex-listen.
//
//   NODE_PATH=<npm dir>/node_modules node tests/compat/npm/livemutex.js 127.0.0.1:PORT
//   (or LOCKBOX_LIVEMUTEX_ADDR=127.0.0.1:PORT)
//
// Covers lock, unlock, wait (busy then granted), retries with the same uuid, give-up
// timeout, silent ttl expiry, wrong uuid and force unlock, semaphores (max) and
// disconnect.
// Notes on the client (dist/client.js):
// - Its constructor only accepts ports 1025..49151; a test server on 127.0.0.1:0 may get
//   a higher ephemeral port, so the port is set on the instance after construction (the
//   client reads `this.port` when it connects).
// - Any reply with an "error" field is also emitted as "error" on `client.emitter`
//   (fatal without a listener), and notices as "warning"; both are recorded here.
'use strict';

const { Client } = require('live-mutex');
const { address, check, sleep, within, run } = require('./harness');

const { host, port } = address('LOCKBOX_LIVEMUTEX_ADDR');
// Every client adds a process 'exit' listener.
process.setMaxListeners(100);
// Keys are unique to this run, so runs against one server do not collide.
const N = (key) => `${process.pid}-${key}`;
const clients = [];

/** A new connected client with its emitted errors and warnings recorded. */
async function connect(name) {
  const opts = { host, lockRequestTimeout: 2000, unlockRequestTimeout: 2000 };
  if (port > 1024 && port < 49152) opts.port = port;
  const c = new Client(opts);
  c.port = port;
  c.label = name;
  c.errors = [];
  c.warnings = [];
  c.emitter.on('error', (e) => c.errors.push(typeof e === 'string' ? e : JSON.stringify(e)));
  c.emitter.on('warning', (w) => c.warnings.push(String(w)));
  clients.push(c);
  await within(5000, c.connect(), `connect ${name}`);
  return c;
}

/** acquire() as { lock, error, ms }. */
async function acquire(c, key, opts) {
  const t0 = Date.now();
  try {
    const lock = await c.acquire(key, opts || {});
    return { lock, ms: Date.now() - t0 };
  } catch (error) {
    return { error, ms: Date.now() - t0 };
  }
}

/** release() as { result, error }. */
async function release(c, key, opts) {
  try {
    return { result: await c.release(key, opts) };
  } catch (error) {
    return { error };
  }
}

const msg = (e) => (e && e.message ? e.message : JSON.stringify(e));

run('live-mutex npm client against lockbox', [
  ['lock and unlock', async () => {
    const a = await connect('a');
    const r = await within(5000, acquire(a, N('k1')), 'acquire k1');
    check(r.lock && r.lock.acquired === true, 'a free key is acquired', msg(r.error));
    check(typeof r.lock.id === 'string' && r.lock.key === N('k1'), 'the grant carries the request uuid and key');
    const u = await within(5000, release(a, N('k1'), { _uuid: r.lock.id }), 'release k1');
    check(u.result && u.result.unlocked === true, 'unlock with the lock uuid: unlocked', msg(u.error));
    const r2 = await within(5000, acquire(a, N('k1')), 'acquire k1 again');
    check(r2.lock && r2.ms < 1000, 'the key is free again', msg(r2.error));
    await within(5000, r2.lock.release(), 'release via the lock handle');
    check(a.errors.length === 0, 'no error emitted', a.errors);
  }],
  ['wait: busy, then granted when the holder releases', async () => {
    const a = await connect('a2');
    const b = await connect('b2');
    const held = await acquire(a, N('w'));
    check(held.lock, 'a holds w');
    const pending = acquire(b, N('w'), { lockRequestTimeout: 5000 });
    await sleep(300);
    const u = await release(a, N('w'), held.lock.id);
    check(u.result && u.result.unlocked, 'a releases w');
    const r = await within(8000, pending, 'b waiting for w');
    check(r.lock && r.lock.acquired, `b is granted w after the release (${r.ms} ms)`, msg(r.error));
    check(r.ms >= 250, 'b really waited', r.ms);
    await release(b, N('w'), r.lock.id);
    check(a.errors.length + b.errors.length === 0, 'no error emitted', a.errors.concat(b.errors));
  }],
  ['retries reuse the uuid: still one request', async () => {
    const a = await connect('a2r');
    const b = await connect('b2r');
    const c = await connect('c2r');
    const held = await acquire(a, N('r'));
    check(held.lock, 'a holds r');
    // b's request is re-sent with the same uuid every 400 ms while it waits.
    const pending = acquire(b, N('r'), { lockRequestTimeout: 400, maxRetries: 10 });
    await sleep(1000);
    check(b.warnings.some((w) => /retrying lock request/.test(w)), 'b retried its request', b.warnings);
    await release(a, N('r'), held.lock.id);
    const r = await within(6000, pending, 'b waiting for r');
    check(r.lock, `b is granted r after retries (${r.ms} ms)`, msg(r.error));
    const busy = await acquire(c, N('r'), { lockRequestTimeout: 300, maxRetries: 0 });
    check(busy.error, 'b holds r');
    await release(b, N('r'), r.lock.id);
    // Had the retries queued extra requests, one of them would hold r now.
    const free = await within(5000, acquire(c, N('r'), { lockRequestTimeout: 1000, maxRetries: 0 }), 'c acquiring r');
    check(free.lock && free.ms < 500, 'after b releases, r is free at once: the retries made no extra claims', msg(free.error));
    await release(c, N('r'), free.lock.id);
  }],
  ['timeout: the client gives up and leaves the queue', async () => {
    const a = await connect('a3');
    const b = await connect('b3');
    const c = await connect('c3');
    const held = await acquire(a, N('t'));
    check(held.lock, 'a holds t');
    // No server-side wait limit in live-mutex: the client times out and says
    // lock-client-timeout, which must take the request out of the queue.
    const r = await within(5000, acquire(b, N('t'), { lockRequestTimeout: 300, maxRetries: 0, ttl: null }), 'b waiting for t');
    check(r.error && r.error.code === 'request_timeout', `b's request timed out (${r.ms} ms)`, msg(r.error));
    await sleep(100);
    await release(a, N('t'), held.lock.id);
    // Had b's request stayed queued it would now hold t forever (ttl null).
    const r2 = await within(5000, acquire(c, N('t'), { lockRequestTimeout: 1000, maxRetries: 0 }), 'c acquiring t');
    check(r2.lock, 'the abandoned request left the queue: c gets t', msg(r2.error));
    await release(c, N('t'), r2.lock.id);
  }],
  ['ttl expiry is silent and grants the next waiter', async () => {
    const a = await connect('a4');
    const b = await connect('b4');
    const held = await acquire(a, N('e'), { ttl: 300 });
    check(held.lock, 'a holds e with ttl 300 ms');
    const r = await within(5000, acquire(b, N('e'), { lockRequestTimeout: 3000 }), 'b waiting for e');
    check(r.lock, `b is granted e when a's ttl runs out (${r.ms} ms)`, msg(r.error));
    check(r.ms >= 250, 'not before the ttl', r.ms);
    check(a.errors.length === 0, 'nothing was sent to a at expiry', a.errors);
    const late = await release(a, N('e'), held.lock.id);
    check(late.result && late.result.unlocked === true, "a's late unlock succeeds, as with the original", msg(late.error));
    const c = await connect('c4');
    const r3 = await acquire(c, N('e'), { lockRequestTimeout: 300, maxRetries: 0 });
    check(r3.error, "a's late unlock did not free b's hold");
    await release(b, N('e'), r.lock.id);
  }],
  ['wrong uuid fails, force succeeds', async () => {
    const a = await connect('a5');
    const b = await connect('b5');
    const held = await acquire(a, N('f'));
    check(held.lock, 'a holds f');
    const wrong = await release(b, N('f'), { _uuid: 'not-the-lock' });
    check(wrong.error, 'unlock with a wrong uuid is refused');
    check(b.errors.some((e) => /correct uuid/.test(e)), 'with the error text of the original', b.errors);
    const forced = await release(b, N('f'), { force: true });
    check(forced.result && forced.result.unlocked === true, 'force unlock succeeds', msg(forced.error));
    const r = await within(5000, acquire(b, N('f'), { lockRequestTimeout: 1000, maxRetries: 0 }), 'b acquiring f');
    check(r.lock, 'the key is free after the forced unlock', msg(r.error));
    const late = await release(a, N('f'), held.lock.id);
    check(late.result && late.result.unlocked === true, "a's unlock of its force-released lock succeeds", msg(late.error));
    await release(b, N('f'), r.lock.id);
  }],
  ['max: a semaphore', async () => {
    const a = await connect('a6');
    const b = await connect('b6');
    const s1 = await acquire(a, N('s'), { max: 2 });
    const s2 = await acquire(b, N('s'), { max: 2 });
    check(s1.lock && s2.lock, 'two holders with max 2');
    const pending = acquire(a, N('s'), { max: 2, lockRequestTimeout: 5000 });
    await sleep(300);
    await release(b, N('s'), s2.lock.id);
    const s3 = await within(6000, pending, 'third holder of s');
    check(s3.lock, `a third request is granted when one holder leaves (${s3.ms} ms)`, msg(s3.error));
    check(s3.ms >= 250, 'and not before', s3.ms);
    await release(a, N('s'), s1.lock.id);
    await release(a, N('s'), s3.lock.id);
  }],
  ['disconnect releases only that connection', async () => {
    const a = await connect('a7');
    const b = await connect('b7');
    const c = await connect('c7');
    const held = await acquire(a, N('d'), { ttl: null });
    const other = await acquire(b, N('d-other'), { ttl: null });
    check(held.lock && other.lock, 'a holds d, b holds d-other');
    const pending = acquire(c, N('d'), { lockRequestTimeout: 5000 });
    await sleep(200);
    a.close();
    const r = await within(6000, pending, 'c waiting for d');
    check(r.lock, `c gets d once a disconnects (${r.ms} ms)`, msg(r.error));
    const r2 = await acquire(c, N('d-other'), { lockRequestTimeout: 300, maxRetries: 0 });
    check(r2.error, "b keeps d-other (the original released every key on any disconnect)");
    await release(b, N('d-other'), other.lock.id);
    await release(c, N('d'), r.lock.id);
  }],
], () => {
  for (const c of clients) c.close();
});
