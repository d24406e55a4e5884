"""redis-py's Lock against a Redis-dialect server.

    python3 tests/redis/redis_py_lock.py 127.0.0.1:PORT [--protocol 2|3|both]
    (or LOCKBOX_REDIS_ADDR=127.0.0.1:PORT)

Needs redis-py from tests/redis/requirements.txt. Covers blocking acquire with a
timeout (refused while held, granted when released), non-blocking acquire, locked(),
owned(), extend (add and replace), reacquire, release, LockNotOwnedError after expiry,
and the context manager. By default runs everything twice: with RESP3 (redis-py 8's
default, which starts with `HELLO 3`) and with `protocol=2` (no HELLO).

Every stdout line is one JSON object; a failed check prints {"ok": false, ...} on stderr
and exits 1; the hard timeout (LOCKBOX_REDIS_TIMEOUT_MS, default 60000) exits 2.
"""

import json
import os
import signal
import sys
import threading
import time

import redis
from redis.exceptions import LockError, LockNotOwnedError

HARD_TIMEOUT_S = int(os.environ.get("LOCKBOX_REDIS_TIMEOUT_MS", "60000")) / 1000.0


class Failed(Exception):
    def __init__(self, what, detail=None):
        super().__init__(what)
        self.detail = detail


checks = 0


def emit(obj):
    print(json.dumps(obj), flush=True)


def check(cond, what, detail=None):
    global checks
    if not cond:
        raise Failed("FAILED: " + what, detail)
    checks += 1
    emit({"ok": True, "check": what} if detail is None else {"ok": True, "check": what, "detail": detail})


def address():
    arg = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else os.environ.get("LOCKBOX_REDIS_ADDR")
    if not arg:
        print("usage: redis_py_lock.py HOST:PORT [--protocol 2|3|both] (or set LOCKBOX_REDIS_ADDR)", file=sys.stderr)
        sys.exit(64)
    host, _, port = arg.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        print(f'bad address "{arg}": expected HOST:PORT', file=sys.stderr)
        sys.exit(64)
    return host, int(port)


def protocols():
    if "--protocol" in sys.argv:
        value = sys.argv[sys.argv.index("--protocol") + 1]
        return {"2": [2], "3": [3], "both": [3, 2]}[value]
    return [3, 2]


def expect_raises(exc, fn, what):
    try:
        fn()
    except exc as e:
        check(True, what, str(e))
        return
    except Exception as e:  # noqa: BLE001 - a different error is a failure too
        raise Failed("FAILED: " + what, f"raised {type(e).__name__}: {e}")
    raise Failed("FAILED: " + what, "nothing was raised")


def suite(host, port, protocol):
    # Names are unique to this run and protocol, so runs against one server do not collide.
    def n(name):
        return f"{os.getpid()}-py{protocol}-{name}"

    def client():
        return redis.Redis(host=host, port=port, protocol=protocol, socket_timeout=10)

    r = client()
    check(r.ping() is True, f"protocol {protocol}: the connection is set up and answers PING")

    emit({"step": "acquire, locked, owned, release"})
    lk = r.lock(n("a"), timeout=5)
    check(lk.acquire(blocking=False) is True, "a free lock is acquired")
    check(lk.locked() is True and lk.owned() is True, "locked() and owned() are true")
    token = r.get(n("a"))
    check(token == lk.local.token, "the key holds the lock's token", token.decode())
    pttl = r.pttl(n("a"))
    check(4000 < pttl <= 5000, "the key ends at the lock's timeout", pttl)
    other = client().lock(n("a"), timeout=5)
    check(other.locked() is True and other.owned() is False, "another Lock sees it locked, not owned")
    check(other.acquire(blocking=False) is False, "a non-blocking acquire of a held lock is False")
    lk.release()
    check(lk.locked() is False, "locked() is false after release")
    check(r.exists(n("a")) == 0, "release deletes the key")
    expect_raises(LockError, lk.release, "releasing an unowned Lock raises LockError")

    emit({"step": "blocking acquire with a timeout"})
    # Released from a timer thread: the token must not be thread-local.
    holder = r.lock(n("b"), timeout=10, thread_local=False)
    check(holder.acquire(), "the holder has b")
    waiter = client().lock(n("b"), timeout=10, sleep=0.05)
    t0 = time.monotonic()
    got = waiter.acquire(blocking=True, blocking_timeout=0.4)
    waited = time.monotonic() - t0
    check(got is False, "a blocking acquire of a held lock gives False at its blocking_timeout")
    check(0.3 <= waited < 3, f"after waiting about 0.4 s ({waited:.3f} s)", round(waited, 3))
    timer = threading.Timer(0.3, holder.release)
    timer.start()
    t0 = time.monotonic()
    got = waiter.acquire(blocking=True, blocking_timeout=5)
    waited = time.monotonic() - t0
    timer.join()
    check(got is True, "a blocking acquire is granted when the holder releases")
    check(0.2 <= waited < 5, f"after the release ({waited:.3f} s)", round(waited, 3))
    check(waiter.owned() is True, "the waiter owns b")
    waiter.release()

    emit({"step": "extend and reacquire"})
    lk = r.lock(n("c"), timeout=1)
    check(lk.acquire(), "c is acquired with a 1 s timeout")
    check(lk.extend(2) is True, "extend(2) adds 2 s")
    pttl = r.pttl(n("c"))
    check(2500 < pttl <= 3000, "the key now ends about 3 s out", pttl)
    check(lk.extend(1.5, replace_ttl=True) is True, "extend(1.5, replace_ttl=True)")
    pttl = r.pttl(n("c"))
    check(1000 < pttl <= 1500, "the key now ends 1.5 s out", pttl)
    time.sleep(0.3)
    check(lk.reacquire() is True, "reacquire() resets the timeout")
    pttl = r.pttl(n("c"))
    check(800 < pttl <= 1000, "the key ends 1 s out again", pttl)
    lk.release()

    emit({"step": "LockNotOwnedError after expiry"})
    lk = r.lock(n("d"), timeout=0.2)
    check(lk.acquire(), "d is acquired with a 0.2 s timeout")
    time.sleep(0.4)
    check(lk.locked() is False, "locked() is false once the timeout ran out")
    expect_raises(LockNotOwnedError, lambda: lk.extend(1), "extend after expiry raises LockNotOwnedError")
    expect_raises(LockNotOwnedError, lk.reacquire, "reacquire after expiry raises LockNotOwnedError")
    taker = client().lock(n("d"), timeout=5)
    check(taker.acquire(blocking=False), "another Lock acquires d")
    expect_raises(LockNotOwnedError, lk.release, "release after expiry raises LockNotOwnedError")
    check(r.get(n("d")) == taker.local.token, "and leaves the new holder's key alone")
    taker.release()

    emit({"step": "no timeout and the context manager"})
    lk = r.lock(n("e"))
    check(lk.acquire(), "a lock without a timeout is acquired")
    check(r.pttl(n("e")) == -1, "its key has no deadline", r.pttl(n("e")))
    expect_raises(LockError, lambda: lk.extend(1), "extending a lock without a timeout raises LockError")
    lk.release()
    with r.lock(n("f"), timeout=5, blocking_timeout=1) as held:
        check(held.owned(), "the context manager holds f")
    check(r.exists(n("f")) == 0, "and releases it on exit")
    r.close()


def main():
    host, port = address()

    def on_alarm(_sig, _frame):
        print(json.dumps({"ok": False, "error": f"FAILED: hard timeout of {HARD_TIMEOUT_S} s"}), file=sys.stderr)
        os._exit(2)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(max(1, int(HARD_TIMEOUT_S)))
    title = f"redis-py {redis.__version__} Lock against a Redis-dialect server"
    emit({"title": title})
    try:
        for protocol in protocols():
            suite(host, port, protocol)
    except Failed as e:
        out = {"ok": False, "error": str(e)}
        if e.detail is not None:
            out["detail"] = e.detail
        print(json.dumps(out), file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 - any error fails the run with its message
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}), file=sys.stderr)
        sys.exit(1)
    emit({"pass": title, "checks": checks})


if __name__ == "__main__":
    main()
