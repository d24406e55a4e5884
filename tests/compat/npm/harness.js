// Shared helpers for the real-client scripts: the server address, a hard timeout,
// checks that print what they verified, and a sequential step runner.
//
// Scripts exit 0 when every check passed, 1 on the first failed check or error, and 2
// when the hard timeout (LOCKBOX_NPM_TIMEOUT_MS, default 60000) fires, so they never hang.
'use strict';

const HARD_TIMEOUT_MS = Number(process.env.LOCKBOX_NPM_TIMEOUT_MS || 60000);

/** "host:port" from argv[2] or the environment variable `envName`. */
function address(envName) {
  const arg = process.argv[2] || process.env[envName];
  if (!arg) {
    console.error(`usage: node ${process.argv[1]} HOST:PORT (or set ${envName})`);
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

let checks = 0;

/** Fails the script unless `cond`; prints `what` when it holds. */
function check(cond, what, detail) {
  if (!cond) {
    const extra = detail === undefined ? '' : ` (${typeof detail === 'string' ? detail : JSON.stringify(detail)})`;
    throw new Error(`FAILED: ${what}${extra}`);
  }
  checks += 1;
  console.log(`  ok - ${what}`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves with the promise's value, or rejects after `ms` with `what`. */
function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`FAILED: ${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Runs `steps` ([name, async fn]) in order, then `cleanup`, and exits. */
function run(title, steps, cleanup) {
  const hard = setTimeout(() => {
    console.error(`FAILED: ${title}: hard timeout of ${HARD_TIMEOUT_MS} ms`);
    process.exit(2);
  }, HARD_TIMEOUT_MS);
  hard.unref();
  process.on('unhandledRejection', (e) => {
    console.error(`FAILED: unhandled rejection: ${e && e.stack ? e.stack : e}`);
    process.exit(1);
  });
  process.on('uncaughtException', (e) => {
    console.error(`FAILED: uncaught exception: ${e && e.stack ? e.stack : e}`);
    process.exit(1);
  });
  (async () => {
    console.log(`${title}`);
    for (const [name, fn] of steps) {
      console.log(`- ${name}`);
      await fn();
    }
  })().then(
    () => {
      try { cleanup && cleanup(); } catch (e) { /* closing only */ }
      console.log(`PASS: ${title}: ${checks} checks`);
      process.exit(0);
    },
    (e) => {
      try { cleanup && cleanup(); } catch (e2) { /* closing only */ }
      console.error(e && e.message ? e.message : e);
      process.exit(1);
    },
  );
}

module.exports = { address, check, sleep, within, run };
