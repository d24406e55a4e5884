#!/usr/bin/env python3
"""Helper of benches/perf.sh: talks to the servers under test and turns loadgen's JSON
into the tables of PERF.md. perf.sh calls it as `python3 benches/perf_report.py CMD ARGS`:

    cpusnap "PIDS"                CPU seconds of every other process, and steal ticks (JSON)
    count lockbox|redis PORT      outstanding holds, waiters and connections (JSON)
    idle lockbox|redis PORT N READY SECS
                                  opens N idle connections, writes READY, keeps them SECS
    throughput DIR RUNS           table 1 from the runs in DIR (markdown on stdout)
    ceiling DIR RUNS              table 2
    memory DIR                    table 3
    timers DIR                    table 4
    instructions DIR              table 5
    redis_instructions DIR        table 7, callgrind of the Redis dialect
    loadgen_instructions DIR      table 7, callgrind of loadgen's native worker
    cpusplit DIR RUNS "CFGS"      table 7, server and loadgen CPU per cycle, user / system
    sweep DIR RUNS "CLIENTS" "DEPTHS"
                                  table 7 and its charts (DIR/*.svg)
    client DIR RUNS "TASKS"       Rust client overhead table

Only the standard library; nothing here is run by the test suite.
"""
import json, os, re, socket, statistics, sys, time
from collections import defaultdict

def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

def fmt(x, nd=0):
    if x is None:
        return "n/a"
    if nd == 0:
        return f"{x:,.0f}"
    return f"{x:,.{nd}f}"

def rng(xs):
    xs = [x for x in xs if x is not None]
    return f"{min(xs):,.0f}-{max(xs):,.0f}" if xs else "n/a"

def runs(d, cfg, tag, n):
    return [load(os.path.join(d, f"{cfg}.{tag}.{r}.json")) for r in range(1, n + 1)]

def cps(j):
    return j["cycles_per_sec"] if j else None

def lat(j, k):
    return j["acquire_us"].get(k) if j else None

def lgcpu(j):
    return j["loadgen_cpu"]["percent"] if j and j.get("loadgen_cpu") else None

def srv_cpu_us(j):
    return j["server"]["cpu_us_per_cycle"] if j and j.get("server") else None

def srv_pct(j):
    if not j or not j.get("server"):
        return None
    return 100.0 * j["server"]["cpu_s"] / j["total_s"]

def cpusnap(exclude):
    """One line of JSON: CPU seconds (utime+stime+cutime+cstime, exact on Linux) of every
    process except `exclude` (this script, the servers) and this helper, and the
    machine's steal ticks."""
    skip = set(exclude.split()) | {str(os.getpid())}
    procs = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or pid in skip:
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                st = f.read()
        except OSError:
            continue
        fs = st[st.rindex(")") + 2:].split()
        # (start time: tells a reused pid apart, CPU seconds)
        procs[pid] = (int(fs[19]), sum(int(x) for x in fs[11:15]) / 100.0)
    with open("/proc/stat") as f:
        steal = int(f.readline().split()[8])
    print(json.dumps({"t": time.time(), "steal": steal, "procs": procs,
                      "tcp_out_segs": tcp_out_segs()}))

def tcp_out_segs():
    """TCP segments this network namespace has sent (/proc/net/snmp `Tcp: OutSegs`):
    on loopback, both ends' sends, so a run's difference counts its packets."""
    try:
        with open("/proc/net/snmp") as f:
            rows = [l.split() for l in f if l.startswith("Tcp:")]
        return int(rows[1][rows[0].index("OutSegs")])
    except (OSError, ValueError, IndexError):
        return None

def segs_per_request(path, requests_per_cycle):
    """TCP segments sent during a run (by the server and loadgen both) per request."""
    j, pair = load(path), snaps(path)
    try:
        segs = pair[1]["tcp_out_segs"] - pair[0]["tcp_out_segs"]
    except (KeyError, TypeError):
        return None
    if not j or not j.get("cycles"):
        return None
    return segs / (j["cycles"] * requests_per_cycle)

def waited_pct(d, c, r):
    """Percent of this lock run's LOCKs that queued (STATS waits_total after minus
    before, over the cycles), or None without the rows."""
    j = load(os.path.join(d, f"{c}.lock.{r}.json"))
    try:
        a = json.load(open(os.path.join(d, f"{c}.lock.{r}.stats0")))
        b = json.load(open(os.path.join(d, f"{c}.lock.{r}.stats1")))
        waits = b["waits_total"] - a["waits_total"]
    except (OSError, ValueError, KeyError):
        return None
    return 100.0 * waits / j["cycles"] if j and j.get("cycles") else None

def snaps(path):
    """The `cpusnap` lines taken before and after the run of `path`, or None."""
    try:
        with open(path + ".snap") as f:
            a, b = [json.loads(l) for l in f.read().splitlines()[:2]]
        return a, b
    except (OSError, ValueError):
        return None

def other_pct(path):
    """CPU used during a run by every process other than the server and loadgen (and
    this script), in % of one core, plus the host's steal: a run with company shows it."""
    pair = snaps(path)
    if not pair:
        return None
    a, b = pair
    cpu = 0.0
    for pid, (start, t) in b["procs"].items():
        prev = a["procs"].get(pid)
        cpu += t - prev[1] if prev and prev[0] == start else t
    cpu += (b["steal"] - a["steal"]) / 100.0
    return 100.0 * cpu / max(b["t"] - a["t"], 1e-3)

def others(d, cfg, tag, n):
    return [other_pct(os.path.join(d, f"{cfg}.{tag}.{r}.json")) for r in range(1, n + 1)]

def problems(js):
    t = sum((j["timeouts"] + j["errors"] + j["lost_clients"] + j["unanswered"]) for j in js if j)
    missing = sum(1 for j in js if not j)
    s = f"{t}" if t else "0"
    return s + (f" ({missing} runs failed)" if missing else "")

def ratio_med(a, b):
    rs = [x["cycles_per_sec"] / y["cycles_per_sec"] for x, y in zip(a, b)
          if x and y and y["cycles_per_sec"] > 0]
    return (statistics.median(rs), min(rs), max(rs)) if rs else (None, None, None)

LABELS = {
    "c1x1": "(1, 1)",
    "c50x1": "(50, 1)",
    "c50x32": "(50, 32)",
    "contended": "contended: (50, 1), 1 lock",
    "uncontended": "uncontended: (50, 32), 1M locks",
    "c50x1t2": "(50, 1), loadgen --threads 2 on both cores",
}

def throughput(d, n):
    n = int(n)
    cfgs = [c for c in LABELS if os.path.exists(os.path.join(d, f"{c}.lockbox.1.json"))]
    print(f"Lock cycles/s, median of {n} runs of interleaved lockbox / Redis runs "
          "(range in brackets); ratio = median of the per-round lockbox/Redis ratios "
          "(min-max). (clients, depth); 10,000 lock names unless noted.\n")
    print("| workload (clients, depth) | lockbox cycles/s | Redis cycles/s | lockbox / Redis | "
          "loadgen CPU % lockbox / Redis | server CPU % lockbox / Redis | server CPU us/cycle lockbox / Redis | other CPU % lockbox / Redis | timeouts+errors lockbox / Redis |")
    print("|---|---|---|---|---|---|---|---|---|")
    for c in cfgs:
        a, b = runs(d, c, "lockbox", n), runs(d, c, "redis", n)
        r, lo, hi = ratio_med(a, b)
        print(f"| {LABELS[c]} | {fmt(med(map(cps, a)))} [{rng(map(cps, a))}] | "
              f"{fmt(med(map(cps, b)))} [{rng(map(cps, b))}] | "
              f"**{fmt(r, 2)}x** ({fmt(lo, 2)}-{fmt(hi, 2)}) | "
              f"{fmt(med(map(lgcpu, a)))} / {fmt(med(map(lgcpu, b)))} | "
              f"{fmt(med(map(srv_pct, a)))} / {fmt(med(map(srv_pct, b)))} | "
              f"{fmt(med(map(srv_cpu_us, a)), 2)} / {fmt(med(map(srv_cpu_us, b)), 2)} | "
              f"{fmt(med(others(d, c, 'lockbox', n)))} / {fmt(med(others(d, c, 'redis', n)))} | "
              f"{problems(a)} / {problems(b)} |")
    print("\nother CPU % = CPU time used during the run by every other process on the machine "
          "(kernel threads included, from /proc/PID/stat) plus the hypervisor's steal "
          "(/proc/stat), in % of one core: the noise check. Per round "
          "(lockbox / Redis cycles/s, other CPU % in brackets):\n")
    for c in cfgs:
        cells = []
        for r in range(1, n + 1):
            a = load(os.path.join(d, f"{c}.lockbox.{r}.json"))
            b = load(os.path.join(d, f"{c}.redis.{r}.json"))
            oa = other_pct(os.path.join(d, f"{c}.lockbox.{r}.json"))
            ob = other_pct(os.path.join(d, f"{c}.redis.{r}.json"))
            cells.append(f"{fmt(cps(a))} ({fmt(oa)}) / {fmt(cps(b))} ({fmt(ob)})")
        print(f"- {LABELS[c]}: " + "; ".join(cells))
    print("\nAcquire latency in microseconds (request sent -> grant received; for Redis "
          "including the SET NX retries), median over the runs of each percentile:\n")
    print("| workload | lockbox p50 | p99 | p99.9 | max | Redis p50 | p99 | p99.9 | max |")
    print("|---|---|---|---|---|---|---|---|---|")
    for c in cfgs:
        a, b = runs(d, c, "lockbox", n), runs(d, c, "redis", n)
        row = [LABELS[c]]
        for js in (a, b):
            for k in ("p50", "p99", "p999", "max"):
                row.append(fmt(med(lat(j, k) for j in js)))
        print("| " + " | ".join(row) + " |")

def ceiling(d, n):
    n = int(n)
    print(f"lockbox lock cycles vs lockbox PING cycles at the same (clients, depth), "
          f"median of {n} interleaved runs. A lock cycle is 2 requests (LOCK, UNLOCK), "
          "a PING cycle 1; requests/s ratio = 2 x lock cycles / PING cycles.\n")
    print("| (clients, depth) | lock cycles/s | PING cycles/s | cycles ratio lock/PING | "
          "**requests/s ratio** | server CPU % lock / PING | server CPU us per lock cycle / per PING | loadgen CPU % lock / PING | "
          "LOCKs that waited | TCP segments per request lock / PING | other CPU % lock / PING |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for c in ("c1x1", "c50x1", "c50x32", "uncontended"):
        a, b = runs(d, c, "lock", n), runs(d, c, "ping", n)
        if not any(a):
            continue
        r, lo, hi = ratio_med(a, b)
        print(f"| {LABELS[c]} | {fmt(med(map(cps, a)))} [{rng(map(cps, a))}] | "
              f"{fmt(med(map(cps, b)))} [{rng(map(cps, b))}] | {fmt(r, 2)} ({fmt(lo, 2)}-{fmt(hi, 2)}) | "
              f"**{fmt(2 * r if r else None, 2)}** ({fmt(2 * lo if lo else None, 2)}-{fmt(2 * hi if hi else None, 2)}) | "
              f"{fmt(med(map(srv_pct, a)))} / {fmt(med(map(srv_pct, b)))} | "
              f"{fmt(med(map(srv_cpu_us, a)), 2)} / {fmt(med(map(srv_cpu_us, b)), 2)} | "
              f"{fmt(med(map(lgcpu, a)))} / {fmt(med(map(lgcpu, b)))} | "
              f"{fmt(med(waited_pct(d, c, r) for r in range(1, n + 1)), 2)}% | "
              f"{fmt(med(segs_per_request(os.path.join(d, f'{c}.lock.{r}.json'), 2) for r in range(1, n + 1)), 3)} / "
              f"{fmt(med(segs_per_request(os.path.join(d, f'{c}.ping.{r}.json'), 1) for r in range(1, n + 1)), 3)} | "
              f"{fmt(med(others(d, c, 'lock', n)))} / {fmt(med(others(d, c, 'ping', n)))} |")
    print("\nLOCKs that waited = STATS `waits_total` during the run over its lock cycles. TCP "
          "segments per request = `Tcp: OutSegs` of /proc/net/snmp during the run (the server's "
          "and loadgen's sends both, loopback) over the requests: a batch of replies or requests "
          "is one segment, so fewer segments per request means bigger batches per system call.")

# --- live servers -----------------------------------------------------------------------

def recv_until(s, pred, limit=10.0):
    buf = b""
    end = time.time() + limit
    while not pred(buf):
        if time.time() > end:
            raise TimeoutError(buf[-200:])
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf

def native_stats(port):
    s = socket.create_connection(("127.0.0.1", int(port)), 5)
    s.settimeout(10)
    s.sendall(b"st STATS\n")
    buf = recv_until(s, lambda b: re.search(rb"^st END \d+\n", b, re.M) is not None)
    s.close()
    out = {}
    for line in buf.decode().splitlines():
        p = line.split()
        if len(p) == 4 and p[1] == "STAT" and p[3].isdigit():  # not `version`
            out[p[2]] = int(p[3])
    return out

def resp(s, *args):
    cmd = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
    s.sendall(cmd)
    buf = recv_until(s, lambda b: b.endswith(b"\r\n") and (not b.startswith(b"$") or b.count(b"\r\n") >= 2))
    return buf

def redis_count(port):
    s = socket.create_connection(("127.0.0.1", int(port)), 5)
    s.settimeout(10)
    keys = int(resp(s, b"DBSIZE")[1:].split(b"\r\n")[0])
    info = resp(s, b"INFO", b"clients").decode()
    s.close()
    conns = int(re.search(r"connected_clients:(\d+)", info).group(1)) - 1
    return {"holds": keys, "waiters": 0, "connections": conns, "locks": keys}

def count(target, port):
    if target == "lockbox":
        st = native_stats(port)
        st["connections"] = st.get("connections", 1) - 1  # not this STATS connection
        d = {k: st.get(k) for k in ("holds", "waiters", "locks", "connections")}
    else:
        d = redis_count(port)
    d["outstanding"] = d["holds"] + d["waiters"]
    print(json.dumps(d))

def idle(target, port, n, ready, secs):
    n, secs = int(n), float(secs)
    conns = []
    req, rep = (b"i PING\n", b"i PONG\n") if target == "lockbox" else (b"PING\r\n", b"+PONG\r\n")
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", int(port)), 10)
        s.settimeout(10)
        s.sendall(req)
        got = recv_until(s, lambda b: b.endswith(b"\n"))
        if got != rep:
            sys.exit(f"connection {i}: unexpected reply {got!r}")
        conns.append(s)
    with open(ready + ".tmp", "w") as f:
        f.write(str(len(conns)))
    os.rename(ready + ".tmp", ready)
    time.sleep(secs)  # killed by perf.sh long before

def memory(d):
    rows = {}
    for f in sorted(os.listdir(d)):
        if f.endswith(".mem.json"):
            j = load(os.path.join(d, f))
            if j:
                rows[j["name"]] = j
    print("Server resident memory (VmRSS from /proc/PID/status) before the load, at the peak "
          "(1 s after all requests were in, when the item count was read from the server), "
          "the peak RSS (VmHWM) and RSS after loadgen released everything and left; "
          "per-item cost = (RSS at peak - RSS before) / items (holds + waiters; connections). "
          "RSS series: when all requests were in, +1 s, +4 s. A fresh server for every row. "
          "MiB = 2^20 bytes, MB = 10^6 bytes.\n")
    print("| what | server | items at the peak (checked on the server) | RSS before | RSS at peak | VmHWM | RSS after release | RSS 10 s later (limit: 2x before + 16 MB) | bytes per item | RSS series (MiB) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    desc = {
        "lockbox_1m_holds": ("1M held locks (100 conns x 10,000 pipelined LOCKs, no hold deadline)", "lockbox"),
        "lockbox_1m_holds_lease": ("1M held locks with hold=600000 (one lease timer each)", "lockbox"),
        "redis_1m_keys": ("1M held locks (SET NX PX 600000 keys), same loadgen", "Redis"),
        "lockbox_10k_idle": ("10k idle connections (one PING each)", "lockbox"),
        "redis_10k_idle": ("10k idle connections (one PING each)", "Redis"),
    }
    names = []
    for key in desc:
        names += [(n, key) for n in rows if n == key or re.fullmatch(re.escape(key) + r"_r\d+", n)]
    for name, key in names:
        what, srv = desc[key]
        if name != key:
            what += f", run {name.rsplit('_r', 1)[1]}"
        j = rows[name]
        mib = lambda kb: f"{kb / 1024:,.1f} MiB"
        if "10k" in name:
            items = j["connections"]
            itemtxt = f"{items:,} connections"
        else:
            items = j["holds"] + j["waiters"]
            itemtxt = f"{j['holds']:,} holds, {j['waiters']:,} waiters" if srv == "lockbox" else f"{j['holds']:,} keys"
        per = (j["peak_rss_kb"] - j["base_kb"]) * 1024 / items if items else None
        hwm = mib(j["hwm_kb"]) if "hwm_kb" in j else "-"
        after = mib(j["after_kb"]) if "after_kb" in j else "-"
        series = " / ".join(f"{kb / 1024:.1f}" for kb in j.get("series_kb", [])) or "-"
        if "after10_kb" in j:
            limit_kb = 2 * j["base_kb"] + 16e6 / 1024
            ok = "met" if j["after10_kb"] <= limit_kb else "missed"
            after10 = f"{mib(j['after10_kb'])} ({ok}: {mib(limit_kb)})"
        else:
            after10 = "-"
        print(f"| {what} | {srv} | {itemtxt} | {mib(j['base_kb'])} | **{mib(j['peak_rss_kb'])}** ({j['peak_rss_kb'] * 1024 / 1e6:,.1f} MB) | {hwm} | {after} | {after10} | {fmt(per)} | {series} |")
    mp = os.path.join(d, "massif.out")
    if os.path.exists(mp):
        total, kinds = massif_peak(mp)
        try:
            with open(os.path.join(d, "massif.outstanding")) as f:
                outstanding = f.read().strip()
        except OSError:
            outstanding = "?"
        if total:
            print(f"\nWhere lockbox's heap goes with 1M holds (`valgrind --tool=massif`, same "
                  f"workload, {outstanding} holds + waiters when stopped; massif's peak "
                  f"snapshot, heap bytes requested, so no allocator overhead):\n")
            print("| heap at massif's peak | bytes | MB (10^6 B) = bytes per hold for 1M |")
            print("|---|---|---|")
            for kind, b in sorted(kinds.items(), key=lambda kv: -kv[1]):
                print(f"| {kind} | {b:,} | {b / 1e6:,.1f} |")
            print(f"| **total** | {total:,} | {total / 1e6:,.1f} |")
            print("\n(The I/O buffer figures depend on timing: under valgrind the server is slower, "
                  "so more input and output can be waiting than in a native run.)")

MASSIF_KINDS = [
    (r"slab::Entry<lockbox::table::Claim", "claims: Slab<Claim<Pending>> (one per hold or wait)"),
    (r"slab::Entry<lockbox::table::Lock>", "locks: Slab<Lock> (one per lock name in use)"),
    # Symbols of release builds name no type parameters, and the table's acquire is
    # inlined into the engine's: a slab growing there is the claims' or the locks'
    # (or, with deadlines, the wheel's entries).
    (r"slab::Slab<T>::insert", "slabs: claims and locks (and wheel entries with deadlines)"),
    (r"hashbrown", "name index: hashbrown::HashTable"),
    (r"lockbox::wheel", "timer wheel"),
    (r"lockbox::proto::|Server::flush", "reply (output) buffers"),
    (r"Server::read|partial", "input buffers"),
]

def massif_peak(path):
    """Bytes of massif's peak snapshot by kind: each allocation path is attributed to
    the first frame (from the allocation function outwards) that names a kind."""
    lines, on = [], False
    with open(path) as f:
        for line in f:
            if line.startswith("heap_tree=peak"):
                on = True
                continue
            if on and line.startswith("snapshot="):
                break
            if on:
                lines.append(line.rstrip("\n"))
    if not lines:
        return None, {}
    nodes = []  # (depth, bytes, desc, nchildren)
    for l in lines:
        depth = len(l) - len(l.lstrip(" "))
        m = re.match(r"\s*n(\d+): (\d+) (.*)$", l)
        if m:
            nodes.append((depth, int(m.group(2)), m.group(3), int(m.group(1))))
    out = defaultdict(int)
    total = nodes[0][1]
    def walk(i):
        """Attribute node i and its subtree; returns the index after the subtree."""
        depth, b, desc, n = nodes[i]
        for rx, kind in MASSIF_KINDS:
            if re.search(rx, desc):
                j = i + 1
                while j < len(nodes) and nodes[j][0] > depth:
                    j += 1
                out[kind] += b
                return j
        j = i + 1
        covered = 0
        for _ in range(n):
            covered += nodes[j][1]
            j = walk(j)
        if b - covered > 0:
            out["other (below massif's threshold or unclassified)"] += b - covered
        return j
    i = 1
    for _ in range(nodes[0][3]):
        i = walk(i)
    return total, out

def stats(port):
    print(json.dumps(native_stats(port)))

def server_lateness(d, c, r):
    """This run's server-side lateness (STATS after minus before): (fired, p50, p99,
    p99.9 as bucket bounds in us, max since start), or None without the rows."""
    try:
        a = json.load(open(os.path.join(d, f"{c}.{r}.stats0")))
        b = json.load(open(os.path.join(d, f"{c}.{r}.stats1")))
    except (OSError, ValueError):
        return None
    if "timers_fired_total" not in b:
        return None
    n = b["timers_fired_total"] - a["timers_fired_total"]
    bounds = sorted(int(k[len("timer_lateness_le_"):-2]) for k in b if k.startswith("timer_lateness_le_"))
    cum = [(x, b[f"timer_lateness_le_{x}us"] - a[f"timer_lateness_le_{x}us"]) for x in bounds]
    def q(f):
        for x, k in cum:
            if n and k >= f * n:
                return f"<= {x:,}"
        return f"> {bounds[-1]:,}"
    within_1ms = dict(cum).get(1000, 0)
    return n, q(0.5), q(0.99), q(0.999), b["timer_lateness_max_us"], within_1ms, cum

TIMER_RUNS = ("light", "heavy", "100k")

def timers(d):
    rtt = [load(os.path.join(d, f"rtt.{r}.json")) for r in (1, 2, 3)]
    print("Lateness of wait deadlines = (TIMEOUT received - LOCK sent) - wait (10 ms; 2,000 ms in the 100k rows), measured "
          "client-side by loadgen (`timeout_lateness_us`): it includes one loopback round trip "
          "and loadgen's own scheduling, and the server's rounding up to the next millisecond "
          "boundary. One lock held for 4 s at a time by one loadgen slot; every other slot "
          "waits on it with wait=10 and retries at once after its TIMEOUT.\n")
    print("| workload | run | timeouts | timeouts/s | lateness p50 us | p90 | p99 | p99.9 | max | server CPU % | loadgen CPU % |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    names = {"light": "light: 99 waiters (100 clients x depth 1), 14 s",
             "heavy": "heavy: 999 waiters (50 clients x depth 20), 3 s",
             "100k": "100k: 99,999 waiters (100 clients x depth 1,000, wait=2000), 8 s"}
    for c in TIMER_RUNS:
        for r in (1, 2, 3):
            j = load(os.path.join(d, f"{c}.{r}.json"))
            if not j:
                print(f"| {names[c]} | {r} | failed | | | | | | | | |")
                continue
            t = j["timeout_lateness_us"]
            print(f"| {names[c]} | {r} | {t['count']:,} | {fmt(j['timeouts'] / j['total_s'])} | {t['p50']} | {t['p90']} | "
                  f"{t['p99']} | {t['p999']} | {t['max']} | {fmt(srv_pct(j))} | {fmt(lgcpu(j))} |")
    timer_chart(d)
    print("\nServer-side lateness (fire time - deadline, from the `STATS` rows "
          "`timer_lateness_le_<bound>us` before and after each run; percentiles are bucket "
          "upper bounds; max is the largest since the server started):\n")
    print("| workload | run | deadlines fired | p50 us | p99 us | p99.9 us | max us (since start) | fired <= 1 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for c in TIMER_RUNS:
        for r in (1, 2, 3):
            s = server_lateness(d, c, r)
            if s is None:
                print(f"| {names[c]} | {r} | (no lateness rows: an older server) | | | | | |")
                continue
            n, p50, p99, p999, mx, ok, _ = s
            share = f"{100.0 * ok / n:.3f}%" if n else "-"
            print(f"| {names[c]} | {r} | {n:,} | {p50} | {p99} | {p999} | {mx:,} | {share} |")
    server_lateness_chart(d, names)
    rt = [j["acquire_us"] for j in rtt if j]
    if rt:
        print(f"\nFor reference, an unloaded loopback PING round trip (1 client, depth 1, 3 runs of 2 s): "
              f"p50 {fmt(med(x['p50'] for x in rt))} us, p99 {fmt(med(x['p99'] for x in rt))} us, "
              f"p99.9 {fmt(med(x['p999'] for x in rt))} us.")


# --- charts (hand-written SVG, standard library only) ------------------------------------

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]

def _esc(t):
    return str(t).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

def _ticks(lo, hi, log):
    import math
    if log:
        return [10 ** e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]
    step = 10 ** math.floor(math.log10(max(hi - lo, 1e-9)))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (step * m) <= 6:
            step *= m
            break
    t, out = math.floor(lo / step) * step, []
    while t <= hi + step / 2:
        out.append(t)
        t += step
    return out

def svg_chart(path, title, xlabel, ylabel, series, logx=False, logy=False, xcats=None):
    """A line chart of series {name: [(x, y), ...]} (x numeric, or an index into
    xcats for categorical axes), written to path."""
    import math
    W, H, L, R, T, B = 720, 420, 80, 170, 40, 60
    pts = [(x, y) for v in series.values() for x, y in v if y is not None and y > 0]
    if not pts:
        return
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0, x1 = (min(xs), max(xs)) if not xcats else (0, len(xcats) - 1)
    y0, y1 = (min(ys), max(ys)) if logy else (0, max(ys) * 1.08)
    xt = list(range(len(xcats))) if xcats else _ticks(x0, x1, logx)
    yt = _ticks(y0, y1, logy)
    if logy:
        y0, y1 = yt[0], yt[-1]
    if logx and not xcats:
        x0, x1 = min(x0, xt[0]), max(x1, xt[-1])
    fx = (lambda v: math.log10(v)) if logx and not xcats else (lambda v: v)
    fy = (lambda v: math.log10(v)) if logy else (lambda v: v)
    sx = lambda v: L + (fx(v) - fx(x0)) / ((fx(x1) - fx(x0)) or 1) * (W - L - R)
    sy = lambda v: H - B - (fy(v) - fy(y0)) / ((fy(y1) - fy(y0)) or 1) * (H - T - B)
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">{_esc(title)}</text>']
    for t in yt:
        if y0 <= t <= y1:
            y = sy(t)
            o.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W - R}" y2="{y:.1f}" stroke="#ddd"/>')
            o.append(f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end">{fmt(t) if t >= 1 else t}</text>')
    for i, t in enumerate(xt):
        x = sx(t)
        lab = xcats[t] if xcats else fmt(t)
        o.append(f'<line x1="{x:.1f}" y1="{T}" x2="{x:.1f}" y2="{H - B}" stroke="#eee"/>')
        o.append(f'<text x="{x:.1f}" y="{H - B + 16}" text-anchor="middle">{_esc(lab)}</text>')
    o.append(f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" fill="none" stroke="#444"/>')
    o.append(f'<text x="{(L + W - R) / 2}" y="{H - 18}" text-anchor="middle">{_esc(xlabel)}</text>')
    o.append(f'<text x="18" y="{(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 18 {(T + H - B) / 2})">{_esc(ylabel)}</text>')
    for i, (name, v) in enumerate(series.items()):
        c = COLORS[i % len(COLORS)]
        v = [(x, y) for x, y in v if y is not None and y > 0]
        if v:
            d = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in v)
            o.append(f'<polyline points="{d}" fill="none" stroke="{c}" stroke-width="2"/>')
            o += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{c}"/>' for x, y in v]
        ly = T + 14 + 18 * i
        o.append(f'<line x1="{W - R + 12}" y1="{ly - 4}" x2="{W - R + 32}" y2="{ly - 4}" stroke="{c}" stroke-width="2"/>')
        o.append(f'<text x="{W - R + 38}" y="{ly}">{_esc(name)}</text>')
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")

PCTS = [("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p999", "p99.9"), ("p9999", "p99.99"),
        ("max", "max")]

def sweep(d, n, clients, depths):
    n, clients, depths = int(n), [int(c) for c in clients.split()], [int(x) for x in depths.split()]
    get = lambda c, dep, tag: runs(d, f"c{c}x{dep}", tag, n)
    print(f"Lock cycles/s against clients, 10,000 names, median of {n} interleaved "
          "lockbox / Redis runs; acquire latency in us (median over the runs of each "
          "percentile).\n")
    print("| depth | clients | lockbox cycles/s | Redis cycles/s | lockbox / Redis | lockbox acquire p50 / p99 / p99.9 / p99.99 | Redis acquire p50 / p99 / p99.9 / p99.99 | other CPU % |")
    print("|---|---|---|---|---|---|---|---|")
    thr = {}
    for dep in depths:
        for c in clients:
            a, b = get(c, dep, "lockbox"), get(c, dep, "redis")
            r, _, _ = ratio_med(a, b)
            ma, mb = med(map(cps, a)), med(map(cps, b))
            thr.setdefault(f"lockbox, depth {dep}", []).append((c, ma))
            thr.setdefault(f"Redis, depth {dep}", []).append((c, mb))
            la = " / ".join(fmt(med(lat(j, k) for j in a)) for k in ("p50", "p99", "p999", "p9999"))
            lb = " / ".join(fmt(med(lat(j, k) for j in b)) for k in ("p50", "p99", "p999", "p9999"))
            oth = med(others(d, f"c{c}x{dep}", "lockbox", n) + others(d, f"c{c}x{dep}", "redis", n))
            print(f"| {dep} | {c:,} | {fmt(ma)} | {fmt(mb)} | **{fmt(r, 2)}x** | {la} | {lb} | {fmt(oth)} |")
    svg_chart(os.path.join(d, "sweep_cycles.svg"), "Lock cycles/s against clients (10,000 names)",
              "clients (log scale)", "lock cycles/s", thr, logx=True)
    for dep in depths:
        c = 50 if 50 in clients else clients[len(clients) // 2]
        series = {}
        for tag, name in (("lockbox", "lockbox"), ("redis", "Redis")):
            js = get(c, dep, tag)
            series[name] = [(i, med(lat(j, k) for j in js)) for i, (k, _) in enumerate(PCTS)]
        svg_chart(os.path.join(d, f"sweep_latency_{c}x{dep}.svg"),
                  f"Acquire latency percentiles, {c} clients, depth {dep}", "percentile",
                  "acquire latency, us (log scale)", series, logy=True,
                  xcats=[lab for _, lab in PCTS])
    print("\nCharts: " + ", ".join(sorted(f for f in os.listdir(d) if f.endswith(".svg"))))

def timer_chart(d):
    """The lateness percentiles of every timers run, one line per run."""
    series = {}
    for c in TIMER_RUNS:
        for r in (1, 2, 3):
            j = load(os.path.join(d, f"{c}.{r}.json"))
            if j and j["timeout_lateness_us"]["count"]:
                t = j["timeout_lateness_us"]
                series[f"{c} run {r}"] = [(i, t[k]) for i, (k, _) in enumerate(PCTS) if k in t]
    svg_chart(os.path.join(d, "timer_lateness.svg"), "Wait-deadline lateness, client-side (request sent to TIMEOUT received, minus wait)",
              "percentile", "lateness, us (log scale)", series, logy=True,
              xcats=[lab for _, lab in PCTS])

def server_lateness_chart(d, names):
    """The server-side lateness distribution: for each workload (its runs summed), the
    share of fired deadlines within each bucket bound."""
    series = {}
    for c in TIMER_RUNS:
        total, cum = 0, {}
        for r in (1, 2, 3):
            s = server_lateness(d, c, r)
            if s is None:
                continue
            total += s[0]
            for x, k in s[6]:
                cum[x] = cum.get(x, 0) + k
        if total:
            series[names[c].split(" (")[0]] = [(x, 100.0 * k / total) for x, k in sorted(cum.items())]
    svg_chart(os.path.join(d, "timer_lateness_server.svg"),
              "Deadlines fired within a lateness (server-side, all runs)",
              "lateness (fire time - deadline), us (log scale)", "% of deadlines fired", series,
              logx=True)

# --- callgrind ---------------------------------------------------------------------------

ALLOC_FNS = ("malloc", "calloc", "realloc", "free", "posix_memalign", "aligned_alloc", "memalign")

def callgrind(path):
    """(total Ir, self Ir per function, calls per called function)."""
    names = {}
    def name(v):
        m = re.match(r"\((\d+)\)(?: (.*))?$", v)
        if not m:
            return v
        if m.group(2) is not None:
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), v)
    self_ir = defaultdict(int)
    calls = defaultdict(int)
    total = None
    fn = None
    after_calls = False
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            if line.startswith("fn="):
                fn = name(line[3:])
                continue
            if line.startswith("cfn="):
                cfn = name(line[4:])
                continue
            if line.startswith("calls="):
                calls[cfn] += int(line[6:].split()[0])
                after_calls = True
                continue
            if line.startswith(("totals:", "summary:")):
                total = int(line.split()[1])
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                if len(parts) >= 2 and fn is not None:
                    if after_calls:
                        after_calls = False  # inclusive cost of the call: not self
                    else:
                        self_ir[fn] += int(parts[1])
    return total, self_ir, calls

def ir_per_cycle(d):
    """{workload: (user-space instructions per cycle, malloc+realloc calls per cycle)}
    from the callgrind runs in d."""
    parts = {}
    with open(os.path.join(d, "callgrind.parts")) as f:
        for line in f:
            cid, n, p = line.split()
            parts[(cid, int(n))] = int(p)
    out = {}
    for cid in dict.fromkeys(c for c, _ in parts):
        ns = sorted(n for (c, n) in parts if c == cid)[:2]
        if len(ns) < 2:
            continue
        cg = [callgrind(os.path.join(d, f"callgrind.out.{parts[(cid, n)]}")) for n in ns]
        tot = [c[0] for c in cg]
        allocs = [c[2].get("malloc", 0) + c[2].get("realloc", 0) + c[2].get("calloc", 0) for c in cg]
        cyc = [(load(os.path.join(d, f"cg.{cid}.{n}.json")) or {}).get("cycles", n) for n in ns]
        out[cid] = ((tot[1] - tot[0]) / (cyc[1] - cyc[0]),
                    (allocs[1] - allocs[0]) / (cyc[1] - cyc[0]))
    return out

CG_LABELS = {"lock_50x1": "lock cycle (50, 1)", "ping_50x1": "PING (50, 1)",
             "lock_50x32": "lock cycle (50, 32)", "ping_50x32": "PING (50, 32)",
             "redis_lock_50x1": "Redis lock cycle (50, 1)",
             "redis_lock_50x32": "Redis lock cycle (50, 32)"}

def instructions(d):
    cfgs = cg_tables(d, CG_LABELS)
    label = CG_LABELS
    reqs = {"lock": 2, "ping": 1}
    # (b) CPU per cycle at full speed (not run with CG_ONLY=1)
    if not any(os.path.exists(os.path.join(d, f"cpu.{cid}.1.json")) for cid in cfgs):
        syscalls(d, cfgs, label)
        return
    print("\n**(b) server CPU time per cycle at full speed** (`loadgen --server-pid`: utime+stime "
          "of the server from /proc, user and kernel, over the run / cycles; server pinned to "
          "one core, loadgen to the other; median of 3 runs):\n")
    print("| workload | cycles/s | server CPU % | **server CPU us per cycle** | per request | loadgen CPU % |")
    print("|---|---|---|---|---|---|")
    for cid in cfgs:
        js = [load(os.path.join(d, f"cpu.{cid}.{r}.json")) for r in (1, 2, 3)]
        if not any(js):
            continue
        us = med(map(srv_cpu_us, js))
        print(f"| {label.get(cid, cid)} | {fmt(med(map(cps, js)))} | {fmt(med(map(srv_pct, js)))} | "
              f"**{fmt(us, 2)}** | {fmt(us / reqs[cid.split('_')[0]] if us else None, 2)} | {fmt(med(map(lgcpu, js)))} |")
    syscalls(d, cfgs, label)

def cg_tables(d, label, what="the server", base_what="CG_BASE"):
    """Prints the callgrind tables of d (and d/base, when there): before/after, per cycle,
    top functions; returns the workload ids in run order."""
    base = os.path.join(d, "base")
    if os.path.exists(os.path.join(base, "callgrind.parts")):
        before, after = ir_per_cycle(base), ir_per_cycle(d)
        print(f"**Before / after** (same session, same workloads: the {base_what} binary's "
              "callgrind runs first, then this build's). User-space instructions and "
              "malloc+realloc calls per cycle:\n")
        print("| workload | Ir before | Ir after | change | mallocs before | mallocs after |")
        print("|---|---|---|---|---|---|")
        for cid, (a, ma) in after.items():
            b, mb = before.get(cid, (None, None))
            ch = f"{100 * (a - b) / b:+.1f}%" if b else "n/a"
            mb = f"{mb:.4f}" if mb is not None else "n/a"
            print(f"| {cid} | {fmt(b)} | **{fmt(a)}** | {ch} | {mb} | **{ma:.4f}** |")
        print()
    parts = {}
    with open(os.path.join(d, "callgrind.parts")) as f:
        for line in f:
            cid, n, p = line.split()
            parts[(cid, int(n))] = int(p)
    cfgs = []
    for (cid, n) in parts:
        if cid not in cfgs:
            cfgs.append(cid)
    reqs = {"lock": 2, "ping": 1}
    print(f"**(a) callgrind** (`valgrind --tool=callgrind` on {what}, user-space instructions "
          "only: the kernel's share of every syscall is not counted). Each workload runs twice "
          "against the same server, N1 and N2 cycles (`loadgen --cycles`, 50 connections set up "
          "and torn down each time); a `callgrind_control -d` after each run isolates it. "
          "Per cycle = (Ir(N2) - Ir(N1)) / (cycles(N2) - cycles(N1)), which cancels the "
          "connection set-up/teardown; the same difference for the malloc-family call counts.\n")
    print("| workload | cycles N1 / N2 | Ir N1 / N2 | **Ir per cycle** | Ir per request | malloc / realloc / free calls N1 / N2 | **malloc+realloc calls per cycle** |")
    print("|---|---|---|---|---|---|---|")
    profiles = {}
    for cid in cfgs:
        ns = sorted(n for (c, n) in parts if c == cid)
        if len(ns) < 2:
            continue
        res = []
        for n in ns[:2]:
            j = load(os.path.join(d, f"cg.{cid}.{n}.json"))
            tot, selfir, calls = callgrind(os.path.join(d, f"callgrind.out.{parts[(cid, n)]}"))
            res.append((j["cycles"] if j else n, tot, selfir, calls))
        (c1, t1, s1, k1), (c2, t2, s2, k2) = res
        per = (t2 - t1) / (c2 - c1)
        al = lambda k: (k.get("malloc", 0), k.get("realloc", 0) + k.get("calloc", 0), k.get("free", 0))
        a1, a2 = al(k1), al(k2)
        mal_per = ((a2[0] + a2[1]) - (a1[0] + a1[1])) / (c2 - c1)
        print(f"| {label.get(cid, cid)} | {c1:,} / {c2:,} | {t1:,} / {t2:,} | **{per:,.0f}** | "
              f"{per / reqs[cid.split('_')[0]]:,.0f} | {a1[0]}/{a1[1]}/{a1[2]} / {a2[0]}/{a2[1]}/{a2[2]} | **{mal_per:.4f}** |")
        # self cost of the difference, per cycle
        diff = defaultdict(int)
        for k, v in s2.items():
            diff[k] += v
        for k, v in s1.items():
            diff[k] -= v
        profiles[cid] = (per, sorted(((v / (c2 - c1), k) for k, v in diff.items()), reverse=True)[:15])
    for cid, (per, top) in profiles.items():
        if not cid.startswith("lock_"):
            continue
        print(f"\nTop functions by self instructions per {label[cid]} (difference of the two runs; "
              f"inlined code is attributed to the function it was inlined into):\n")
        print("| Ir per cycle | share | function |")
        print("|---|---|---|")
        for v, k in top:
            print(f"| {v:,.0f} | {100 * v / per:.1f}% | `{k[:110]}` |")
    return cfgs

def syscalls(d, cfgs, label):
    rows = []
    for cid in cfgs + ["redis_" + c for c in cfgs if c.startswith("lock_")]:
        p = os.path.join(d, f"strace.{cid}.txt")
        j = load(os.path.join(d, f"strace.{cid}.json"))
        if not (os.path.exists(p) and j):
            continue
        sc = {}
        with open(p) as f:
            for line in f:
                m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:(\d+)\s+)?(\w+)\s*$", line)
                if m and m.group(3) != "total":
                    sc[m.group(3)] = (int(m.group(1)), int(m.group(2) or 0))
        rows.append((cid, j["cycles"], sc))
    if rows:
        print("\n**(c) syscalls per cycle** (`strace -c -p` attached to the server during a "
              "`--cycles 20000` run; strace slows the server, so more requests are ready per "
              "`epoll_wait` than at full speed: the epoll_wait figure is a lower bound; read "
              "and write counts per request at depth 1 do not depend on speed):\n")
        print("| workload | cycles | reads per cycle (of which EAGAIN) | writes per cycle | epoll_wait per cycle | all syscalls per cycle |")
        print("|---|---|---|---|---|---|")
        for cid, cyc, sc in rows:
            g = lambda k: sc.get(k, (0, 0))
            allc = sum(v[0] for v in sc.values())
            rd = (g("recvfrom")[0] + g("read")[0], g("recvfrom")[1] + g("read")[1])
            wr = g("sendto")[0] + g("write")[0] + g("writev")[0]
            print(f"| {label.get(cid, cid)} | {cyc:,} | {rd[0] / cyc:.2f} ({rd[1] / cyc:.2f}) | {wr / cyc:.2f} | "
                  f"{g('epoll_wait')[0] / cyc:.3f} | {allc / cyc:.2f} |")
        print("\n(recvfrom/read and sendto/write/writev are counted together; all syscalls: " +
              "; ".join(f"{label.get(c, c)}: " + ", ".join(f"{k} {v[0]:,}" for k, v in sorted(sc.items(), key=lambda kv: -kv[1][0])) for c, _, sc in rows) + ")")

# --- the Redis dialect: CPU split and callgrind -----------------------------------------

def ticks_us(path, cycles):
    """(user, system) us per cycle from a `cpu_ticks` before/after file (clock ticks)."""
    try:
        with open(path) as f:
            (u0, s0), (u1, s1) = [map(int, l.split()) for l in f.read().splitlines()[:2]]
    except (OSError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    return ((u1 - u0) * 1e6 / hz / cycles, (s1 - s0) * 1e6 / hz / cycles) if cycles else None

def cpusplit(d, n, cfgs):
    """Server and loadgen CPU per cycle, user / system, for each side of redis-dialect."""
    n = int(n)
    print("\nCPU per cycle split into user / system time, in us (medians over the rounds; the "
          "server's from /proc/<pid>/stat ticks read before and after each run, loadgen's from "
          "its own report):\n")
    print("| workload | server lockbox user / sys | server Redis user / sys | loadgen vs lockbox user / sys | loadgen vs Redis user / sys |")
    print("|---|---|---|---|---|")
    for cfg in cfgs.split():
        row = []
        for tag in ("lockbox", "redis"):
            sp = [ticks_us(os.path.join(d, f"{cfg}.{tag}.{r}.json.srv"), (j or {}).get("cycles"))
                  for r, j in enumerate(runs(d, cfg, tag, n), 1)]
            sp = [x for x in sp if x]
            row.append(f"{fmt(med(x[0] for x in sp), 2)} / {fmt(med(x[1] for x in sp), 2)}")
        for tag in ("lockbox", "redis"):
            js = [j for j in runs(d, cfg, tag, n) if j and j.get("loadgen_cpu") and j.get("cycles")]
            u = med(j["loadgen_cpu"]["user_s"] * 1e6 / j["cycles"] for j in js)
            sy = med(j["loadgen_cpu"]["sys_s"] * 1e6 / j["cycles"] for j in js)
            row.append(f"{fmt(u, 2)} / {fmt(sy, 2)}")
        print(f"| {LABELS.get(cfg, cfg)} | " + " | ".join(row) + " |")

REDIS_CG_LABELS = {"lock_50x1": "Redis-dialect lock cycle (50, 1)",
                   "lock_50x32": "Redis-dialect lock cycle (50, 32)"}

def redis_instructions(d):
    print("The Redis dialect (`loadgen --target redis`: `SET name token NX PX hold`, then the "
          "compare-and-delete `EVAL`) against lockbox `--redis-listen`.\n")
    cg_tables(d, REDIS_CG_LABELS)
    lgd = os.path.join(d, "loadgen")
    if os.path.exists(os.path.join(lgd, "callgrind.parts")):
        print("\n**(b) loadgen's Redis worker** (loadgen itself under callgrind, the release "
              "server natively; loadgen's whole process, its reporting included, so the "
              "difference of the two runs is what a cycle costs the client):\n")
        cg_tables(lgd, REDIS_CG_LABELS, "loadgen")

LG_CG_LABELS = {"lock_50x32": "lock cycle (50, 32)", "ping_50x32": "PING (50, 32)",
                "lock_50x1": "lock cycle (50, 1)", "ping_50x1": "PING (50, 1)"}

def loadgen_instructions(d):
    print("loadgen's native worker (loadgen itself under callgrind, the release server "
          "natively, 1M names; loadgen's whole process, its reporting included, so the "
          "difference of the two runs is what a cycle costs the client):\n")
    cg_tables(d, LG_CG_LABELS, "loadgen", "LG_BASE")

# --- client: the Rust client against loadgen ------------------------------------------

def lg_cpu_us(j):
    """loadgen's own CPU time (user + system) per completed cycle, in us."""
    if not j or not j.get("loadgen_cpu") or not j.get("cycles"):
        return None
    c = j["loadgen_cpu"]
    return (c["user_s"] + c["sys_s"]) * 1e6 / j["cycles"]

def cb_cpu_us(j):
    """The client bench's own CPU time per completed cycle, in us."""
    return j["client_cpu"]["cpu_us_per_cycle"] if j and j.get("client_cpu") and j.get("cycles") else None

def per_round(a, b, fa, fb):
    """Median (min, max) over the rounds r of fa(a[r]) / fb(b[r])."""
    rs = [fa(x) / fb(y) for x, y in zip(a, b) if x and y and fa(x) and fb(y)]
    return (statistics.median(rs), min(rs), max(rs)) if rs else (None, None, None)

def pct(r):
    return "n/a" if r is None else f"{(r - 1) * 100:+.0f}%"

def client(d, n, tasks):
    n = int(n)
    print(f"Lock cycles through the Rust async client (`client/examples/bench.rs`: N tasks over "
          f"one connection, current-thread runtime) against loadgen with one connection and N "
          f"cycles in flight (`--clients 1 --pipeline N`), same server, {n} interleaved rounds "
          "(the order reverses every round). Both: `LOCK lg:<random of 10,000> wait=1000`, "
          "then `UNLOCK <name> <token>`; client process on one core, server on the other. "
          "Medians over the rounds, [range]; the comparisons are medians of the per-round "
          "client/loadgen ratios (min to max). Time per cycle = 1 / cycles/s; CPU = user + "
          "system time of the client process (bench or loadgen) per completed cycle.\n")
    print("| tasks = cycles in flight | client | loadgen cycles/s | client cycles/s | **time per cycle, client vs loadgen** | "
          "loadgen CPU us/cycle | client CPU us/cycle (user / system) | **client CPU per cycle vs loadgen** | "
          "server CPU us/cycle loadgen / client | other CPU % loadgen / client | errors loadgen / client |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for t in tasks.split():
        b = runs(d, f"t{t}", "loadgen", n)
        for tag, label in (("client", "this build"), ("baseline", "baseline")):
            a = runs(d, f"t{t}", tag, n)
            if not any(a):
                continue
            tr, tlo, thi = per_round(b, a, cps, cps)  # loadgen cps / client cps = client time / loadgen time
            cr, clo, chi = per_round(a, b, cb_cpu_us, lg_cpu_us)
            lerr = sum(j["timeouts"] + j["errors"] + j["lost_clients"] + j["unanswered"] for j in b if j)
            cerr = sum(j["errors"] for j in a if j)
            miss = sum(1 for j in a + b if not j)
            split = lambda k: (lambda j: j["client_cpu"][k] * 1e6 / j["cycles"] if j and j.get("cycles") else None)
            print(f"| {t} | {label} | {fmt(med(map(cps, b)))} [{rng(map(cps, b))}] | "
                  f"{fmt(med(map(cps, a)))} [{rng(map(cps, a))}] | "
                  f"**{pct(tr)}** ({pct(tlo)} to {pct(thi)}) | "
                  f"{fmt(med(map(lg_cpu_us, b)), 2)} | {fmt(med(map(cb_cpu_us, a)), 2)} "
                  f"({fmt(med(map(split('user_s'), a)), 2)} / {fmt(med(map(split('sys_s'), a)), 2)}) | "
                  f"**{pct(cr)}** ({pct(clo)} to {pct(chi)}) | "
                  f"{fmt(med(map(srv_cpu_us, b)), 2)} / {fmt(med(map(srv_cpu_us, a)), 2)} | "
                  f"{fmt(med(others(d, f't{t}', 'loadgen', n)))} / {fmt(med(others(d, f't{t}', tag, n)))} | "
                  f"{lerr} / {cerr}{f' ({miss} runs failed)' if miss else ''} |")
    print("\n(loadgen CPU us/cycle as user / system: " + "; ".join(
        f"{t} tasks {fmt(med(map(lambda j: j['loadgen_cpu']['user_s'] * 1e6 / j['cycles'] if j and j.get('cycles') else None, runs(d, f't{t}', 'loadgen', n))), 2)}"
        f" / {fmt(med(map(lambda j: j['loadgen_cpu']['sys_s'] * 1e6 / j['cycles'] if j and j.get('cycles') else None, runs(d, f't{t}', 'loadgen', n))), 2)}"
        for t in tasks.split()) + ")")

if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"throughput": throughput, "ceiling": ceiling, "cpusnap": cpusnap, "count": count, "idle": idle,
     "memory": memory, "timers": timers, "stats": stats, "instructions": instructions,
     "sweep": sweep, "client": client, "cpusplit": cpusplit,
     "redis_instructions": redis_instructions, "loadgen_instructions": loadgen_instructions}[cmd](*args)
