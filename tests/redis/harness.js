// Shared helpers for the Redis-dialect client scripts: the server address, a hard
// timeout, checks printed as JSON lines, and a sequential step runner.
//
// Every line on stdout is one JSON object: {"step": ...}, {"ok": true, "check": ...},
// and at the end {"pass": ..., "checks": n}. A failed check or error prints
// {"ok": false, ...} on stderr and exits 1; the hard timeout (LOCKBOX_REDIS_TIMEOUT_MS,
// default 60000) exits 2, so a script never hangs.
'use strict';

const HARD_TIMEOUT_MS = Number(process.env.LOCKBOX_REDIS_TIMEOUT_MS || 60000);

/** { host, port } from argv[2] or LOCKBOX_REDIS_ADDR ("HOST:PORT"). */
function address() {
  const arg = process.argv[2] || process.env.LOCKBOX_REDIS_ADDR;
  if (!arg) {
    console.error(`usage: node ${process.argv[1]} HOST:PORT (or set LOCKBOX_REDIS_ADDR)`);
    process.exit(64);
  }
  const i = arg.lastIndexOf(':');
  const host = arg.slice(0, i);
  const port = Number(arg.slice(i + 1));
  if (!host || !Number.isInteger(port) || port <= 0 || port > 65535) {
    console.error(`bad address "${arg}": expected HOST:PORT`);
    process.exit(64);
  }
  return { host, port };
}

const emit = (obj) => console.log(JSON.stringify(obj));

let checks = 0;

/** Fails the script unless `cond`; `detail` is shown either way. */
function check(cond, what, detail) {
  if (!cond) {
    const err = new Error(`FAILED: ${what}`);
    err.detail = detail;
    throw err;
  }
  checks += 1;
  emit(detail === undefined ? { ok: true, check: what } : { ok: true, check: what, detail });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves with the promise's value, or rejects after `ms` naming `what`. */
function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`FAILED: ${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Node-style `fn(...args, cb)` as a promise. */
function call(fn, ...args) {
  return new Promise((resolve, reject) => fn(...args, (err, value) => (err ? reject(err) : resolve(value))));
}

function fail(e, code) {
  const out = { ok: false, error: e && e.message ? e.message : String(e) };
  if (e && e.detail !== undefined) out.detail = e.detail;
  if (e && e.stack && !String(e.message).startsWith('FAILED')) out.stack = e.stack;
  console.error(JSON.stringify(out));
  process.exit(code);
}

/** Runs `steps` ([name, async fn]) in order, then `cleanup`, and exits. */
function run(title, steps, cleanup) {
  const hard = setTimeout(() => fail(new Error(`FAILED: ${title}: hard timeout of ${HARD_TIMEOUT_MS} ms`), 2), HARD_TIMEOUT_MS);
  hard.unref();
  process.on('unhandledRejection', (e) => fail(e, 1));
  process.on('uncaughtException', (e) => fail(e, 1));
  (async () => {
    emit({ title });
    for (const [name, fn] of steps) {
      emit({ step: name });
      await fn();
    }
  })().then(
    async () => {
      try { cleanup && (await cleanup()); } catch (e) { /* closing only */ }
      emit({ pass: title, checks });
      process.exit(0);
    },
    async (e) => {
      try { cleanup && (await cleanup()); } catch (e2) { /* closing only */ }
      fail(e, 1);
    },
  );
}

module.exports = { address, check, sleep, within, call, run, emit };
