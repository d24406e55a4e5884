// The real `locker` npm client (node-locker 0.1.0) against lockbox's --locker-listen.
//
//   NODE_PATH=<npm dir>/node_modules node tests/compat/npm/locker.js 127.0.0.1:PORT
//   (or LOCKBOX_LOCKER_ADDR=127.0.0.1:PORT)
//
// Covers lock, unlock, wait, wait timeout, silent hold expiry, FIFO and disconnect.
// Each `new Locker` is one connection. Notes on the client (lib/Locker.js, lib/Lock.js):
// - `locked(name, wait, hold, cb)` calls cb(error, release); `release()` does not wait for
//   the server's answer. A failed unlock `(seq,0,0)` makes the Lock object `emit(error)`
//   with the Error itself as the event name, i.e. the event "Error: Failed to release
//   lock"; the script listens to it on each Lock to see unlock results.
// - The client runs its own wait and hold timers and emits "error" when they fire, so
//   every Locker gets an "error" listener (an unhandled "error" event would throw).
'use strict';

const Locker = require('locker');
const { address, check, sleep, within, run } = require('./harness');

const { host, port } = address('LOCKBOX_LOCKER_ADDR');
const RELEASE_FAILED = String(new Error('Failed to release lock'));
// Lock names are unique to this run, so runs against one server do not collide.
const N = (name) => `${process.pid}-${name}`;

const lockers = [];

/** A new connection, with its client-side events recorded. */
function connect(name) {
  const l = new Locker(port, host);
  l.label = name;
  l.errors = [];
  l.releaseFailures = 0;
  l.resets = 0;
  l.on('error', (e) => l.errors.push(String(e && e.message ? e.message : e)));
  l.on('reset', () => { l.resets += 1; });
  lockers.push(l);
  return l;
}

/** locked() as a promise: { error, release, ms } with the time it took. */
function lock(l, name, wait, hold) {
  const t0 = Date.now();
  return new Promise((resolve) => {
    l.locked(name, wait, hold, (error, release) => resolve({ error, release, ms: Date.now() - t0 }));
    // locked() created the Lock synchronously under the newest sequence number; a failed
    // unlock is emitted on that Lock.
    const entry = l.registry[l.sequence];
    if (!entry) throw new Error('locker client internals changed: no registry entry');
    entry.lock.on(RELEASE_FAILED, () => { l.releaseFailures += 1; });
  });
}

/** Releases and waits a little for the server's answer to arrive. */
async function release(l, got) {
  got.release();
  await sleep(50);
}

run('locker npm client against lockbox', [
  ['lock and unlock', async () => {
    const a = connect('a');
    const r = await within(5000, lock(a, N('five'), 2000, 3000), 'lock five');
    check(!r.error, 'a free lock is granted', r.error && r.error.message);
    await release(a, r);
    check(a.releaseFailures === 0, 'the unlock succeeded (no "Failed to release lock")');
    const b = connect('b');
    const r2 = await within(5000, lock(b, N('five'), 500, 3000), 'lock five again');
    check(!r2.error && r2.ms < 400, 'after the unlock another connection gets it at once', r2.ms);
    await release(b, r2);
  }],
  ['wait: granted when the holder releases', async () => {
    const a = connect('a2');
    const b = connect('b2');
    const held = await lock(a, N('w'), 2000, 10000);
    check(!held.error, 'a holds w');
    const pending = lock(b, N('w'), 3000, 10000);
    await sleep(250);
    await release(a, held);
    const r = await within(5000, pending, 'b waiting for w');
    check(!r.error, 'b is granted w after a releases it', r.error && r.error.message);
    check(r.ms >= 200, `b waited for the release (${r.ms} ms)`, r.ms);
    await release(b, r);
    check(a.releaseFailures + b.releaseFailures === 0, 'both unlocks succeeded');
  }],
  ['wait timeout', async () => {
    const a = connect('a3');
    const b = connect('b3');
    const c = connect('c3');
    const held = await lock(a, N('t'), 2000, 10000);
    check(!held.error, 'a holds t');
    const r = await within(5000, lock(b, N('t'), 300, 10000), 'b waiting for t');
    // Either side may notice first: the client's own 300 ms timer ("Timeout waiting for
    // lock") or the server's wait deadline, answered (seq,1,0) ("Failed to acquire lock").
    check(r.error && /Timeout waiting|Failed to acquire/.test(r.error.message), `b's wait of 300 ms ran out (${r.ms} ms)`, r.error && r.error.message);
    check(r.ms >= 250, 'not before its wait', r.ms);
    await sleep(100);
    await release(a, held);
    // Had the timed-out request stayed queued (the original's bug) it would now hold t
    // for 10 s and c could not get it.
    const r2 = await within(5000, lock(c, N('t'), 1000, 10000), 'c locking t');
    check(!r2.error, 'the timed-out request left the queue: c gets t', r2.error && r2.error.message);
    await release(c, r2);
  }],
  ['hold expiry is silent and grants the next waiter', async () => {
    const a = connect('a4');
    const b = connect('b4');
    const held = await lock(a, N('h'), 2000, 300);
    check(!held.error, 'a holds h for at most 300 ms');
    const r = await within(5000, lock(b, N('h'), 3000, 10000), 'b waiting for h');
    check(!r.error, `b is granted h when a's hold runs out (${r.ms} ms)`, r.error && r.error.message);
    check(r.ms >= 200, 'not before the hold ran out', r.ms);
    // The client's own hold timer started when the grant arrived, a little after the
    // server's: give it a moment.
    const noticed = () => a.errors.some((e) => /Lock timeout \(300\) exceed/.test(e));
    for (let i = 0; i < 50 && !noticed(); i++) await sleep(20);
    check(noticed(), 'the client noticed its hold ran out too (its own timer)', a.errors);
    const resetsBefore = a.resets;
    await release(a, held);
    await sleep(100);
    check(a.releaseFailures === 1, 'unlocking the expired hold answers (seq,0,0)', a.releaseFailures);
    check(a.resets === resetsBefore, 'the server sent nothing else and kept the connection');
    await release(b, r);
    check(b.releaseFailures === 0, "b's unlock succeeded");
  }],
  ['FIFO with three waiters', async () => {
    const h = connect('holder');
    const ws = [connect('w1'), connect('w2'), connect('w3')];
    const held = await lock(h, N('fifo'), 2000, 10000);
    check(!held.error, 'the holder has fifo');
    const order = [];
    const pending = [];
    for (const [i, w] of ws.entries()) {
      pending.push(lock(w, N('fifo'), 8000, 10000).then((r) => { order.push(i); return r; }));
      await sleep(100);
    }
    await release(h, held);
    const got = [];
    for (const p of pending) {
      const r = await within(8000, p, 'a waiter of fifo');
      check(!r.error, `waiter ${order[got.length] + 1} granted`, r.error && r.error.message);
      got.push(r);
      await sleep(100);
      await release(ws[order[got.length - 1]], r);
    }
    check(JSON.stringify(order) === '[0,1,2]', 'granted in request order', order);
  }],
  ['disconnect releases holds', async () => {
    const a = connect('a5');
    const b = connect('b5');
    const held = await lock(a, N('d'), 2000, 60000);
    check(!held.error, 'a holds d for up to 60 s');
    const pending = lock(b, N('d'), 5000, 10000);
    await sleep(200);
    a.connection.destroy();
    const r = await within(5000, pending, 'b waiting for d');
    check(!r.error, `b gets d once a disconnects (${r.ms} ms)`, r.error && r.error.message);
    check(r.ms < 2000, 'well before the 60 s hold', r.ms);
    await release(b, r);
  }],
], () => {
  for (const l of lockers) {
    if (l.connection) l.connection.destroy();
  }
});
