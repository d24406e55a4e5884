#!/usr/bin/env bash
# benches/perf.sh: reproduces every table of PERF.md, one subcommand per table.
#
#   bash benches/perf.sh throughput     # 1. lockbox vs Redis lock cycles/s and latency
#   bash benches/perf.sh ceiling        # 2. lockbox lock cycles vs lockbox PING
#   bash benches/perf.sh memory         # 3. RSS with 1M held locks, with 10k idle connections
#   bash benches/perf.sh timers         # 4. wait-deadline lateness (>= 100k timeouts)
#   bash benches/perf.sh instructions   # 5. callgrind instructions + mallocs per cycle, CPU us/cycle, syscalls/cycle
#   bash benches/perf.sh micro          # 6. cargo bench --bench core (divan)
#   bash benches/perf.sh redis-dialect  # 7. the same Redis client workload: lockbox --redis-listen vs redis-server
#   bash benches/perf.sh redis-instructions # 7. callgrind instructions + mallocs per cycle of the Redis dialect, and of loadgen's Redis worker
#   bash benches/perf.sh loadgen-instructions # 7. callgrind instructions per cycle of loadgen's native worker (LG_BASE: compare)
#   bash benches/perf.sh all            # all of the above, in that order
#   bash benches/perf.sh sweep          # 8. cycles/s and latency vs clients (1-1000), SVG charts
#   bash benches/perf.sh client         # 9. Rust client (async, N tasks) vs loadgen, per lock cycle
#   bash benches/perf.sh env            # only the machine description
#
# Environment knobs: RUNS (repetitions per configuration, default 7), DUR (seconds per
# load run, default 3), OUT (result directory, default target/perf), SERVER_CORE (0),
# LOADGEN_CORE (1), SKIP_BUILD=1 (use the binaries already in target/release),
# LOCKBOX_BIN (another server binary, e.g. an older build, for a before/after run);
# instructions and redis-instructions only: CG_BASE (an older server binary with symbols:
# its callgrind runs first, in the same session, and the summary compares), CG_ONLY=1
# (callgrind of the server only); instructions only: ID_LEN (1 to 32: loadgen's request
# ids padded to exactly that many bytes, `loadgen --id-len`; e.g. ID_LEN=32 measures ids
# too long for lockbox to store inline, which take a heap buffer per request unless
# recycled; default: loadgen's short decimal ids); loadgen-instructions only: LG_BASE (an
# older loadgen binary: its callgrind runs first, against the same server, and the
# summary compares); N_SMALL, N_BIG (cycles of the two runs per workload, default 10000,
# 50000).
# Callgrind runs on target/profiling/lockbox (`cargo build --profile profiling`).
#
# A quick check that a table still runs (seconds, not minutes; numbers too noisy to quote):
#
#   RUNS=1 DUR=1 bash benches/perf.sh throughput
#   RUNS=1 DUR=1 SKIP_BUILD=1 bash benches/perf.sh ceiling
#
# Method: the server (lockbox or redis-server) is pinned to SERVER_CORE and loadgen to
# LOADGEN_CORE with taskset; everything listens on 127.0.0.1 on free ports; each
# configuration is run RUNS times, lockbox and Redis (or lock and PING) runs interleaved
# (the order alternates every round) so machine noise hits both; tables print medians
# over the runs, and ratios are the median of the per-round ratios (each ratio compares
# two runs made back to back). Raw loadgen JSON is kept under $OUT/<table>/.
# Needs: cargo, python3, taskset, redis-server (7.x), valgrind + callgrind_control
# (instructions), strace (instructions; optional). Every loop is bounded and every
# process this script starts is killed on exit.

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
# LOCKBOX_BIN runs another server binary (e.g. an older build, for a before/after).
LOCKBOX=${LOCKBOX_BIN:-$TARGET_DIR/release/lockbox}
LOADGEN=$TARGET_DIR/release/loadgen
# The same server with debug info (`--profile profiling`), for callgrind's symbols.
LOCKBOX_PROF=$TARGET_DIR/profiling/lockbox
RUNS=${RUNS:-7}
DUR=${DUR:-3}
OUT=${OUT:-$TARGET_DIR/perf}
SERVER_CORE=${SERVER_CORE:-0}
LOADGEN_CORE=${LOADGEN_CORE:-1}
HELP=$ROOT/benches/perf_report.py # JSON, STATS, idle connections, callgrind parsing, tables

STARTED=() # pids of every process this script started (killed on exit)

cleanup() {
    local p
    for p in "${STARTED[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${STARTED[@]}"; do
        wait "$p" 2>/dev/null
    done
    STARTED=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Forget a pid this script already waited for (so cleanup never signals a reused pid).
forget() {
    local pid=$1 p keep=()
    for p in "${STARTED[@]}"; do
        [ "$p" != "$pid" ] && keep+=("$p")
    done
    STARTED=("${keep[@]}")
}

die() {
    echo "perf.sh: $*" >&2
    exit 1
}

# Stop one process this script started (by pid) and forget it.
stop() {
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    forget "$1"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT SECONDS: until something accepts on 127.0.0.1:PORT (bounded).
wait_port() {
    local port=$1 secs=${2:-10} i
    for ((i = 0; i < secs * 20; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    die "nothing listens on 127.0.0.1:$port after ${secs}s"
}

build() {
    if [ "${SKIP_BUILD:-0}" != 1 ]; then
        cargo build --release -p lockbox -p loadgen >&2 || die "cargo build failed"
        if [ "${NEED_PROF:-0}" = 1 ]; then
            cargo build --profile profiling -p lockbox >&2 || die "cargo build --profile profiling failed"
        fi
    fi
    [ -x "$LOCKBOX" ] && [ -x "$LOADGEN" ] || die "missing $LOCKBOX or $LOADGEN"
}

need() {
    command -v "$1" >/dev/null || die "$1 not found${2:+ ($2)}"
}

# start_lockbox [lockbox flags...]: sets LB_PID and LB_PORT.
start_lockbox() {
    LB_PORT=$(free_port)
    RUST_LOG=warn taskset -c "$SERVER_CORE" "$LOCKBOX" --listen "127.0.0.1:$LB_PORT" "$@" \
        2>>"$OUT/lockbox.log" &
    LB_PID=$!
    STARTED+=("$LB_PID")
    wait_port "$LB_PORT" 10
}

# start_redis [redis flags...]: sets RD_PID and RD_PORT.
start_redis() {
    need redis-server "apt-get install -y redis-server"
    RD_PORT=$(free_port)
    taskset -c "$SERVER_CORE" redis-server --port "$RD_PORT" --bind 127.0.0.1 --save '' \
        --appendonly no --daemonize no "$@" >>"$OUT/redis.log" 2>&1 &
    RD_PID=$!
    STARTED+=("$RD_PID")
    wait_port "$RD_PORT" 10
}

# lg OUTFILE [loadgen args...]: one loadgen run pinned to LOADGEN_CORE (LG_CPUS
# overrides the CPU list), JSON to OUTFILE, stderr to OUTFILE.err.
lg() {
    local out=$1 rc
    shift
    # noise check: CPU time of every other process on the machine, before and after
    python3 "$HELP" cpusnap "$$ ${STARTED[*]}" >"$out.snap"
    taskset -c "${LG_CPUS:-$LOADGEN_CORE}" "$LOADGEN" --json --quiet "$@" >"$out" 2>"$out.err"
    rc=$?
    python3 "$HELP" cpusnap "$$ ${STARTED[*]}" >>"$out.snap"
    if [ $rc -ne 0 ]; then
        echo "  loadgen exit $rc: $* (see $out.err)" >&2
    fi
    return 0
}

# loadgen's --id-len flag for the native workloads of `instructions`, when ID_LEN is set.
ID_ARGS=()
if [ -n "${ID_LEN:-}" ]; then
    ID_ARGS=(--id-len "$ID_LEN")
fi

# The machine and the load on it, as Markdown.
machine() {
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
    echo "- $(rustc --version), $(redis-server --version 2>/dev/null | cut -d' ' -f1-3 || echo 'redis-server: not installed')"
    echo "- lockbox commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src loadgen Cargo.toml Cargo.lock 2>/dev/null || echo ' (working tree modified)')"
    if [ -n "${LOCKBOX_BIN:-}" ]; then
        echo "- lockbox server measured: LOCKBOX_BIN=$LOCKBOX_BIN (not the commit above, which built loadgen)"
    fi
    if [ -n "${ID_LEN:-}" ]; then
        echo "- request ids: ${ID_LEN} bytes (ID_LEN=${ID_LEN}, loadgen --id-len) in the native workloads of instructions"
    fi
}

# load NAME: note the machine load (1-minute load average and the busiest processes).
load() {
    local avg
    avg=$(cut -d' ' -f1 /proc/loadavg)
    {
        echo "== $1: $avg"
        top -bn1 -o %CPU 2>/dev/null | sed -n '7,11p'
    } >>"$TABLE_DIR/load.txt"
    echo "  load average (1 min) $1: $avg" >&2
}

begin() {
    TABLE_DIR=$OUT/$1
    rm -rf "$TABLE_DIR"
    mkdir -p "$TABLE_DIR"
    echo "### $1" >&2
    load start
}

finish() {
    load end
    {
        echo
        machine
        echo "- 1-minute load average at start, after each round, at end (2 cores; the benchmark itself adds ~1-2): $(grep '^== ' "$TABLE_DIR/load.txt" | sed 's/^== .*: //' | paste -sd' ' | sed 's/ /, /g')"
    } >>"$TABLE_DIR/summary.md"
    echo
    cat "$TABLE_DIR/summary.md"
    echo
    echo "(raw results: $TABLE_DIR)"
}

# ---------------------------------------------------------------------------------------
# 1. throughput: lockbox vs Redis
# ---------------------------------------------------------------------------------------

# id | loadgen workload flags | CPU list for loadgen (empty: LOADGEN_CORE)
THROUGHPUT_CONFIGS=(
    "c1x1|--clients 1 --pipeline 1 --locks 10000|"
    "c50x1|--clients 50 --pipeline 1 --locks 10000|"
    "c50x32|--clients 50 --pipeline 32 --locks 10000|"
    "contended|--clients 50 --pipeline 1 --locks 1|"
    "uncontended|--clients 50 --pipeline 32 --locks 1000000|"
    "c50x1t2|--clients 50 --pipeline 1 --locks 10000 --threads 2|$SERVER_CORE,$LOADGEN_CORE"
)

cmd_throughput() {
    begin throughput
    build
    start_lockbox
    start_redis
    local r cfg id flags cpus first
    for ((r = 1; r <= RUNS; r++)); do
        for cfg in "${THROUGHPUT_CONFIGS[@]}"; do
            IFS='|' read -r id flags cpus <<<"$cfg"
            # alternate who goes first so drift in the noise hits both equally
            for first in $( ((r % 2)) && echo "lockbox redis" || echo "redis lockbox"); do
                # shellcheck disable=SC2086
                if [ "$first" = lockbox ]; then
                    LG_CPUS=$cpus lg "$TABLE_DIR/$id.lockbox.$r.json" --duration "$DUR" \
                        --server "127.0.0.1:$LB_PORT" --server-pid "$LB_PID" $flags
                else
                    LG_CPUS=$cpus lg "$TABLE_DIR/$id.redis.$r.json" --duration "$DUR" \
                        --target redis --server "127.0.0.1:$RD_PORT" --server-pid "$RD_PID" $flags
                fi
            done
        done
        load "round $r"
    done
    stop "$LB_PID"
    stop "$RD_PID"
    python3 "$HELP" throughput "$TABLE_DIR" "$RUNS" >"$TABLE_DIR/summary.md"
    finish
}

# ---------------------------------------------------------------------------------------
# 7. redis-dialect: one Redis workload (SET NX PX, retry, compare-and-delete EVAL), one
#    loadgen, one wire protocol: lockbox --redis-listen vs redis-server
# ---------------------------------------------------------------------------------------

REDIS_DIALECT_CONFIGS=(
    "c50x1|--clients 50 --pipeline 1 --locks 10000"
    "c50x32|--clients 50 --pipeline 32 --locks 10000"
)

cmd_redis_dialect() {
    begin redis-dialect
    build
    local rd_listen
    rd_listen=$(free_port)
    start_lockbox --redis-listen "127.0.0.1:$rd_listen"
    wait_port "$rd_listen" 10
    start_redis
    local r cfg id flags first
    for ((r = 1; r <= RUNS; r++)); do
        for cfg in "${REDIS_DIALECT_CONFIGS[@]}"; do
            IFS='|' read -r id flags <<<"$cfg"
            for first in $( ((r % 2)) && echo "lockbox redis" || echo "redis lockbox"); do
                # shellcheck disable=SC2086
                if [ "$first" = lockbox ]; then
                    cpu_ticks "$LB_PID" >"$TABLE_DIR/$id.lockbox.$r.json.srv"
                    lg "$TABLE_DIR/$id.lockbox.$r.json" --duration "$DUR" \
                        --target redis --server "127.0.0.1:$rd_listen" --server-pid "$LB_PID" $flags
                    cpu_ticks "$LB_PID" >>"$TABLE_DIR/$id.lockbox.$r.json.srv"
                else
                    cpu_ticks "$RD_PID" >"$TABLE_DIR/$id.redis.$r.json.srv"
                    lg "$TABLE_DIR/$id.redis.$r.json" --duration "$DUR" \
                        --target redis --server "127.0.0.1:$RD_PORT" --server-pid "$RD_PID" $flags
                    cpu_ticks "$RD_PID" >>"$TABLE_DIR/$id.redis.$r.json.srv"
                fi
            done
        done
        load "round $r"
    done
    stop "$LB_PID"
    stop "$RD_PID"
    {
        python3 "$HELP" throughput "$TABLE_DIR" "$RUNS"
        python3 "$HELP" cpusplit "$TABLE_DIR" "$RUNS" "${REDIS_DIALECT_CONFIGS[*]%%|*}"
    } >"$TABLE_DIR/summary.md"
    finish
}

# cpu_ticks PID: the process's user and system CPU time so far, in clock ticks.
cpu_ticks() {
    sed 's/.*) //' "/proc/$1/stat" | awk '{print $12, $13}'
}

# ---------------------------------------------------------------------------------------
# 7b. redis-instructions: callgrind on the Redis dialect (the server, then loadgen)
# ---------------------------------------------------------------------------------------

# id | loadgen flags (the workload of redis-dialect, counted in cycles)
REDIS_COST_CONFIGS=(
    "lock_50x1|--target redis --clients 50 --pipeline 1 --locks 10000"
    "lock_50x32|--target redis --clients 50 --pipeline 32 --locks 10000"
)

# cg_loadgen BIN DIR ADDR CONFIG...: runs BIN (a loadgen) under callgrind against the
# server at ADDR (running natively), every "id|flags" CONFIG twice (N_SMALL, N_BIG
# cycles), one callgrind.out per run, into DIR (read by `perf_report.py`'s cg_tables).
cg_loadgen() {
    local bin=$1 dir=$2 addr=$3 cfg id flags n parts=0
    shift 3
    mkdir -p "$dir"
    : >"$dir/callgrind.parts"
    for cfg in "$@"; do
        IFS='|' read -r id flags <<<"$cfg"
        for n in "$N_SMALL" "$N_BIG"; do
            parts=$((parts + 1))
            # shellcheck disable=SC2086
            timeout 600 taskset -c "$LOADGEN_CORE" valgrind --tool=callgrind --dump-instr=no \
                --callgrind-out-file="$dir/callgrind.out.$parts" "$bin" --json --quiet \
                --cycles "$n" --server "$addr" $flags \
                >"$dir/cg.$id.$n.json" 2>"$dir/cg.$id.$n.err" ||
                echo "  loadgen under callgrind failed (see $dir/cg.$id.$n.err)" >&2
            echo "$id $n $parts" >>"$dir/callgrind.parts"
        done
    done
}

cmd_redis_instructions() {
    begin redis-instructions
    NEED_PROF=1 build
    [ -x "$LOCKBOX_PROF" ] || die "missing $LOCKBOX_PROF (cargo build --profile profiling)"
    need valgrind
    need callgrind_control
    # (a) the server: as `instructions` (a), against --redis-listen
    if [ -n "${CG_BASE:-}" ]; then
        [ -x "$CG_BASE" ] || die "CG_BASE=$CG_BASE is not an executable"
        cg_measure "$CG_BASE" "$TABLE_DIR/base" redis
        load "after callgrind of CG_BASE"
    fi
    cg_measure "$LOCKBOX_PROF" "$TABLE_DIR" redis
    load "after callgrind"
    # (b) loadgen's own user-space instructions per cycle (the same client drives both
    # servers, so its cost caps the ratio): loadgen under callgrind, the release server
    # natively, the same difference of a short and a long run
    if [ "${CG_ONLY:-0}" != 1 ]; then
        local rd_listen
        rd_listen=$(free_port)
        start_lockbox --redis-listen "127.0.0.1:$rd_listen"
        wait_port "$rd_listen" 10
        cg_loadgen "$LOADGEN" "$TABLE_DIR/loadgen" "127.0.0.1:$rd_listen" "${REDIS_COST_CONFIGS[@]}"
        stop "$LB_PID"
        load "after callgrind of loadgen"
    fi
    python3 "$HELP" redis_instructions "$TABLE_DIR" >"$TABLE_DIR/summary.md"
    finish
}

# ---------------------------------------------------------------------------------------
# 7c. loadgen-instructions: callgrind on loadgen's native worker (the client's own cost)
# ---------------------------------------------------------------------------------------

# id | loadgen flags (the ceiling workloads: 1M names, so (almost) no lock is contended)
LG_COST_CONFIGS=(
    "lock_50x32|--mode lock --clients 50 --pipeline 32 --locks 1000000"
    "ping_50x32|--mode ping --clients 50 --pipeline 32 --locks 1000000"
    "lock_50x1|--mode lock --clients 50 --pipeline 1 --locks 1000000"
    "ping_50x1|--mode ping --clients 50 --pipeline 1 --locks 1000000"
)

cmd_loadgen_instructions() {
    begin loadgen-instructions
    build
    need valgrind
    start_lockbox
    # LG_BASE=path/to/older/loadgen: the same workloads with that binary first, into base/.
    if [ -n "${LG_BASE:-}" ]; then
        [ -x "$LG_BASE" ] || die "LG_BASE=$LG_BASE is not an executable"
        cg_loadgen "$LG_BASE" "$TABLE_DIR/base" "127.0.0.1:$LB_PORT" "${LG_COST_CONFIGS[@]}"
        load "after callgrind of LG_BASE"
    fi
    cg_loadgen "$LOADGEN" "$TABLE_DIR" "127.0.0.1:$LB_PORT" "${LG_COST_CONFIGS[@]}"
    stop "$LB_PID"
    load "after callgrind of loadgen"
    python3 "$HELP" loadgen_instructions "$TABLE_DIR" >"$TABLE_DIR/summary.md"
    finish
}

# ---------------------------------------------------------------------------------------
# 2. ceiling: lockbox lock cycles vs lockbox PING cycles
# ---------------------------------------------------------------------------------------

# The last row keeps (50, 32) but spreads the names over 1M, so that (almost) no lock
# request waits: the gap between it and the 10,000-name row is what contention costs
# (each grant after a wait is its own packet, and splits the client's pipeline).
CEILING_CONFIGS=(
    "c1x1|--clients 1 --pipeline 1 --locks 10000"
    "c50x1|--clients 50 --pipeline 1 --locks 10000"
    "c50x32|--clients 50 --pipeline 32 --locks 10000"
    "uncontended|--clients 50 --pipeline 32 --locks 1000000"
)

cmd_ceiling() {
    begin ceiling
    build
    start_lockbox
    local r cfg id flags mode
    for ((r = 1; r <= RUNS; r++)); do
        for cfg in "${CEILING_CONFIGS[@]}"; do
            IFS='|' read -r id flags <<<"$cfg"
            for mode in $( ((r % 2)) && echo "lock ping" || echo "ping lock"); do
                # STATS before and after (waits_total: how many LOCKs queued)
                python3 "$HELP" stats "$LB_PORT" >"$TABLE_DIR/$id.$mode.$r.stats0" 2>/dev/null
                # shellcheck disable=SC2086
                lg "$TABLE_DIR/$id.$mode.$r.json" --duration "$DUR" --mode "$mode" \
                    --server "127.0.0.1:$LB_PORT" --server-pid "$LB_PID" $flags
                python3 "$HELP" stats "$LB_PORT" >"$TABLE_DIR/$id.$mode.$r.stats1" 2>/dev/null
            done
        done
        load "round $r"
    done
    stop "$LB_PID"
    python3 "$HELP" ceiling "$TABLE_DIR" "$RUNS" >"$TABLE_DIR/summary.md"
    finish
}

# ---------------------------------------------------------------------------------------
# 3. memory: 1M held locks, 10k idle connections
# ---------------------------------------------------------------------------------------

HOLD_CLIENTS=100
HOLD_DEPTH=10000 # HOLD_CLIENTS x HOLD_DEPTH = 1,000,000 outstanding holds
HOLD_WORK_MS=20000

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# hold_1m NAME TARGET [extra loadgen flags]: 1M outstanding holds against the running
# server (LB_* or RD_*), sampled at the peak; writes $TABLE_DIR/NAME.mem.json.
hold_1m() {
    local name=$1 target=$2 port pid base i stat now
    shift 2
    if [ "$target" = lockbox ]; then port=$LB_PORT pid=$LB_PID; else port=$RD_PORT pid=$RD_PID; fi
    sleep 0.5
    base=$(rss_kb "$pid")
    # names drawn from 2^32-1 (loadgen's --locks maximum): ~116 of the 1M draws are
    # expected to collide with a held name and wait instead (reported as waiters)
    taskset -c "$LOADGEN_CORE" "$LOADGEN" --json --quiet --target "$target" \
        --server "127.0.0.1:$port" --server-pid "$pid" \
        --clients $HOLD_CLIENTS --pipeline $HOLD_DEPTH --locks 4294967295 \
        --work-ms $HOLD_WORK_MS --duration 1 --drain-s 60 --timeout-s 120 "$@" \
        >"$TABLE_DIR/$name.json" 2>"$TABLE_DIR/$name.json.err" &
    local lgpid=$!
    STARTED+=("$lgpid")
    # wait (at most 30 s) until all 1M requests are in: lockbox counts holds + waiters;
    # Redis only the keys that were set (a colliding SET NX keeps retrying), so there:
    # at least 999,000 keys and no change over 0.5 s
    local prev=-1 cur
    for ((i = 0; i < 60; i++)); do
        sleep 0.5
        cur=$(python3 "$HELP" count "$target" "$port" | python3 -c 'import json,sys; print(json.load(sys.stdin)["outstanding"])') || continue
        if [ "$cur" -ge 1000000 ] || { [ "$cur" -ge 999000 ] && [ "$cur" = "$prev" ]; }; then
            break
        fi
        prev=$cur
    done
    local series
    series=$(rss_kb "$pid")
    sleep 1 # let the server settle, then sample again (this is the reported figure)
    stat=$(python3 "$HELP" count "$target" "$port")
    now=$(rss_kb "$pid")
    sleep 3
    series="$series $now $(rss_kb "$pid")"
    local hwm_at_peak
    hwm_at_peak=$(hwm_kb "$pid")
    wait "$lgpid" || echo "  loadgen exit $? (see $TABLE_DIR/$name.json.err)" >&2
    forget "$lgpid"
    local after after10
    after=$(rss_kb "$pid")
    # memory that comes back: RSS 10 s after everything was released and loadgen left
    sleep 10
    after10=$(rss_kb "$pid")
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(name=sys.argv[2], target=sys.argv[3], base_kb=int(sys.argv[4]), peak_rss_kb=int(sys.argv[5]), hwm_kb=int(sys.argv[6]), after_kb=int(sys.argv[7]), flags=sys.argv[8], series_kb=[int(x) for x in sys.argv[9].split()], after10_kb=int(sys.argv[10])); print(json.dumps(d))' \
        "$stat" "$name" "$target" "$base" "$now" "$hwm_at_peak" "$after" "$*" "$series" "$after10" >"$TABLE_DIR/$name.mem.json"
    echo "  $name: $(cat "$TABLE_DIR/$name.mem.json")" >&2
}

# idle_10k NAME TARGET: 10,000 connections that each did one PING, then RSS.
idle_10k() {
    local name=$1 target=$2 port pid base ready i
    if [ "$target" = lockbox ]; then port=$LB_PORT pid=$LB_PID; else port=$RD_PORT pid=$RD_PID; fi
    sleep 0.5
    base=$(rss_kb "$pid")
    ready=$TABLE_DIR/$name.ready
    rm -f "$ready"
    python3 "$HELP" idle "$target" "$port" 10000 "$ready" 120 &
    local pypid=$!
    STARTED+=("$pypid")
    for ((i = 0; i < 1200; i++)); do # at most 120 s
        [ -s "$ready" ] && break
        sleep 0.1
    done
    [ -s "$ready" ] || die "$name: the 10k connections did not come up"
    sleep 2 # idle for a while (lockbox frees idle input buffers)
    local stat now
    stat=$(python3 "$HELP" count "$target" "$port")
    now=$(rss_kb "$pid")
    stop "$pypid"
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(name=sys.argv[2], target=sys.argv[3], base_kb=int(sys.argv[4]), peak_rss_kb=int(sys.argv[5]), opened=int(open(sys.argv[6]).read()), flags=""); print(json.dumps(d))' \
        "$stat" "$name" "$target" "$base" "$now" "$ready" >"$TABLE_DIR/$name.mem.json"
    echo "  $name: $(cat "$TABLE_DIR/$name.mem.json")" >&2
}

cmd_memory() {
    begin memory
    build
    [ "$(ulimit -n)" -ge 10100 ] || ulimit -n 20000 2>/dev/null || die "need an fd limit >= 10100 (ulimit -n)"
    # lockbox: --wait 10000 so that the ~116 requests whose name collided with a held
    # one give up at 10 s (after the sampling) instead of holding for another 20 s
    local r
    for r in 1 2 3; do
        start_lockbox
        hold_1m "lockbox_1m_holds_r$r" lockbox --wait 10000
        stop "$LB_PID"
    done
    load "after lockbox 1M"
    start_lockbox
    hold_1m lockbox_1m_holds_lease lockbox --wait 10000 --hold 600000
    stop "$LB_PID"
    start_redis
    hold_1m redis_1m_keys redis --hold 600000
    stop "$RD_PID"
    load "after redis 1M"
    start_lockbox --max-connections 20000
    idle_10k lockbox_10k_idle lockbox
    stop "$LB_PID"
    start_redis --maxclients 20000
    idle_10k redis_10k_idle redis
    stop "$RD_PID"
    # where the heap of 1M holds goes: the same lockbox run under valgrind's massif
    if command -v valgrind >/dev/null; then
        massif_1m
    fi
    python3 "$HELP" memory "$TABLE_DIR" >"$TABLE_DIR/summary.md"
    finish
}

# massif_1m: lockbox under `valgrind --tool=massif`, 1M holds as above, then stopped
# (massif writes its snapshots, the peak among them, when the server exits).
massif_1m() {
    local port i cur
    port=$(free_port)
    # --read-inline-info: the slabs grow inside code inlined into the codecs; without it
    # their allocations are charged to the codec frame that inlined them.
    taskset -c "$SERVER_CORE" valgrind --tool=massif --read-inline-info=yes \
        --massif-out-file="$TABLE_DIR/massif.out" \
        "$LOCKBOX" --listen "127.0.0.1:$port" 2>"$TABLE_DIR/massif.log" &
    local vpid=$!
    STARTED+=("$vpid")
    wait_port "$port" 60
    taskset -c "$LOADGEN_CORE" "$LOADGEN" --json --quiet --server "127.0.0.1:$port" \
        --clients $HOLD_CLIENTS --pipeline $HOLD_DEPTH --locks 4294967295 --wait 10000 \
        --work-ms $HOLD_WORK_MS --duration 1 --drain-s 60 --timeout-s 120 \
        >"$TABLE_DIR/massif.loadgen.json" 2>&1 &
    local lgpid=$!
    STARTED+=("$lgpid")
    for ((i = 0; i < 120; i++)); do # at most 60 s
        sleep 0.5
        cur=$(python3 "$HELP" count lockbox "$port" | python3 -c 'import json,sys; print(json.load(sys.stdin)["outstanding"])') || continue
        [ "$cur" -ge 1000000 ] && break
    done
    echo "$cur" >"$TABLE_DIR/massif.outstanding"
    sleep 1
    stop "$vpid" # SIGTERM: massif writes massif.out on the way out
    stop "$lgpid"
}

# ---------------------------------------------------------------------------------------
# 4. timers: lateness of wait deadlines
# ---------------------------------------------------------------------------------------

# id | loadgen flags | duration (s)
# "100k": 100 clients x depth 1,000 wait on one lock held for 30 s: 99,999 wait deadlines
# (wait=2000) pending at once, ~50k firing per second, each retried at once.
TIMER_CONFIGS=(
    "light|--clients 100 --pipeline 1 --locks 1 --wait 10 --work-ms 4000|14"
    "heavy|--clients 50 --pipeline 20 --locks 1 --wait 10 --work-ms 4000|3"
    "100k|--clients 100 --pipeline 1000 --locks 1 --wait 2000 --work-ms 30000|8"
)

cmd_timers() {
    begin timers
    build
    start_lockbox
    local r cfg id flags dur
    # the loopback round trip alone, for reference
    for ((r = 1; r <= 3; r++)); do
        lg "$TABLE_DIR/rtt.$r.json" --mode ping --clients 1 --duration 2 \
            --server "127.0.0.1:$LB_PORT" --server-pid "$LB_PID"
    done
    for ((r = 1; r <= 3; r++)); do
        for cfg in "${TIMER_CONFIGS[@]}"; do
            IFS='|' read -r id flags dur <<<"$cfg"
            # the server's own lateness figures (STATS) before and after: their difference
            # is this run's (servers without them give empty files)
            python3 "$HELP" stats "$LB_PORT" >"$TABLE_DIR/$id.$r.stats0" 2>/dev/null
            # shellcheck disable=SC2086
            lg "$TABLE_DIR/$id.$r.json" --duration "$dur" --drain-s 15 \
                --server "127.0.0.1:$LB_PORT" --server-pid "$LB_PID" $flags
            python3 "$HELP" stats "$LB_PORT" >"$TABLE_DIR/$id.$r.stats1" 2>/dev/null
        done
        load "round $r"
    done
    stop "$LB_PID"
    python3 "$HELP" timers "$TABLE_DIR" >"$TABLE_DIR/summary.md"
    finish
}

# ---------------------------------------------------------------------------------------
# 5. instructions: callgrind, CPU time and syscalls per cycle
# ---------------------------------------------------------------------------------------

N_SMALL=${N_SMALL:-10000}
N_BIG=${N_BIG:-50000}
# id | loadgen flags (all cycles against 10000 names)
COST_CONFIGS=(
    "lock_50x1|--mode lock --clients 50 --pipeline 1 --locks 10000"
    "ping_50x1|--mode ping --clients 50 --pipeline 1 --locks 10000"
    "lock_50x32|--mode lock --clients 50 --pipeline 32 --locks 10000"
    "ping_50x32|--mode ping --clients 50 --pipeline 32 --locks 10000"
)

# Dump callgrind's counters of the server: every dump holds the cost since the last one.
cg_dump() {
    CG_PARTS=$((CG_PARTS + 1))
    callgrind_control -d "$CG_PID" >/dev/null 2>&1 || die "callgrind_control -d failed"
    local i
    for ((i = 0; i < 100; i++)); do
        [ -s "$CG_DIR/callgrind.out.$CG_PARTS" ] && break
        sleep 0.1
    done
    [ -s "$CG_DIR/callgrind.out.$CG_PARTS" ] || die "callgrind dump $CG_PARTS missing"
    sleep 0.2
}

# cg_measure BIN DIR [redis]: runs every COST_CONFIGS workload (with `redis`: every
# REDIS_COST_CONFIGS workload, loadgen --target redis against BIN's --redis-listen)
# twice (N_SMALL, N_BIG cycles) against BIN under callgrind, one dump per run, into DIR
# (callgrind.out.N and callgrind.parts, read by `perf_report.py instructions`).
cg_measure() {
    local bin=$1 dir=$2 dialect=${3:-native} cfg id flags n port lport cfgs
    mkdir -p "$dir"
    port=$(free_port)
    lport=$port
    local extra=() ids=()
    if [ "$dialect" = redis ]; then
        port=$(free_port)
        extra=(--redis-listen "127.0.0.1:$port")
        cfgs=("${REDIS_COST_CONFIGS[@]}")
    else
        cfgs=("${COST_CONFIGS[@]}")
        ids=("${ID_ARGS[@]}")
    fi
    taskset -c "$SERVER_CORE" valgrind --tool=callgrind --dump-instr=no \
        --callgrind-out-file="$dir/callgrind.out" \
        "$bin" --listen "127.0.0.1:$lport" "${extra[@]}" 2>"$dir/valgrind.log" &
    CG_PID=$!
    STARTED+=("$CG_PID")
    CG_PARTS=0
    CG_DIR=$dir
    wait_port "$port" 60
    cg_dump # part 1: start-up
    : >"$dir/callgrind.parts"
    for cfg in "${cfgs[@]}"; do
        IFS='|' read -r id flags <<<"$cfg"
        for n in "$N_SMALL" "$N_BIG"; do
            # shellcheck disable=SC2086
            lg "$dir/cg.$id.$n.json" --cycles "$n" --server "127.0.0.1:$port" $flags "${ids[@]}"
            sleep 0.5 # the server reaps the closed connections
            cg_dump
            echo "$id $n $CG_PARTS" >>"$dir/callgrind.parts"
        done
    done
    stop "$CG_PID"
}

cmd_instructions() {
    begin instructions
    NEED_PROF=1 build
    [ -x "$LOCKBOX_PROF" ] || die "missing $LOCKBOX_PROF (cargo build --profile profiling)"
    need valgrind
    need callgrind_control
    local cfg id flags r
    # (a) callgrind: instructions and malloc calls, from the difference of two runs, on
    # the profiling build (symbols). With CG_BASE=path/to/older/lockbox the same
    # workloads run against that binary first, in the same session, into base/.
    if [ -n "${CG_BASE:-}" ]; then
        [ -x "$CG_BASE" ] || die "CG_BASE=$CG_BASE is not an executable"
        cg_measure "$CG_BASE" "$TABLE_DIR/base"
        load "after callgrind of CG_BASE"
    fi
    cg_measure "$LOCKBOX_PROF" "$TABLE_DIR"
    load "after callgrind"
    if [ "${CG_ONLY:-0}" = 1 ]; then
        python3 "$HELP" instructions "$TABLE_DIR" >"$TABLE_DIR/summary.md"
        finish
        return
    fi
    # (b) CPU time per cycle at full speed (from /proc, via loadgen --server-pid)
    start_lockbox
    for ((r = 1; r <= 3; r++)); do
        for cfg in "${COST_CONFIGS[@]}"; do
            IFS='|' read -r id flags <<<"$cfg"
            # shellcheck disable=SC2086
            lg "$TABLE_DIR/cpu.$id.$r.json" --duration "$DUR" \
                --server "127.0.0.1:$LB_PORT" --server-pid "$LB_PID" $flags "${ID_ARGS[@]}"
        done
    done
    # (c) syscalls per cycle (strace -c attached to the server: slows it, so fewer
    # requests share one epoll_wait than at full speed; read/write counts per request
    # at depth 1 do not depend on the speed)
    if command -v strace >/dev/null; then
        for cfg in "${COST_CONFIGS[@]}"; do
            IFS='|' read -r id flags <<<"$cfg"
            timeout 120 strace -c -p "$LB_PID" -o "$TABLE_DIR/strace.$id.txt" 2>/dev/null &
            local spid=$!
            STARTED+=("$spid")
            sleep 0.5
            # shellcheck disable=SC2086
            lg "$TABLE_DIR/strace.$id.json" --cycles 20000 --server "127.0.0.1:$LB_PORT" $flags \
                "${ID_ARGS[@]}"
            sleep 0.5
            kill -INT "$spid" 2>/dev/null
            wait "$spid" 2>/dev/null
            forget "$spid"
        done
    fi
    stop "$LB_PID"
    # the same for Redis (lock cycles only: SET NX PX + EVAL), for comparison
    if command -v strace >/dev/null; then
        start_redis
        for cfg in "${COST_CONFIGS[@]}"; do
            IFS='|' read -r id flags <<<"$cfg"
            case $id in lock_*) ;; *) continue ;; esac
            timeout 120 strace -c -p "$RD_PID" -o "$TABLE_DIR/strace.redis_$id.txt" 2>/dev/null &
            local spid=$!
            STARTED+=("$spid")
            sleep 0.5
            # shellcheck disable=SC2086
            lg "$TABLE_DIR/strace.redis_$id.json" --target redis --cycles 20000 \
                --server "127.0.0.1:$RD_PORT" $flags
            sleep 0.5
            kill -INT "$spid" 2>/dev/null
            wait "$spid" 2>/dev/null
            forget "$spid"
        done
        stop "$RD_PID"
    fi
    python3 "$HELP" instructions "$TABLE_DIR" >"$TABLE_DIR/summary.md"
    finish
}

# ---------------------------------------------------------------------------------------
# 6. micro: divan benches
# ---------------------------------------------------------------------------------------

cmd_micro() {
    begin micro
    # 1) exactly what `cargo bench` runs
    taskset -c "$SERVER_CORE" cargo bench --bench core >"$TABLE_DIR/bench.txt" 2>"$TABLE_DIR/cargo.err"
    # 2) the nanosecond-scale benches again with a fixed sample size: on this machine
    #    divan's automatic sizing often settles on 1 iteration per sample for them
    #    (iters == samples in the output), so each sample is a single ~50 ns call
    #    timed with a 20 ns timer.
    #    Three times: on this (virtual) machine the same binary was seen to run these
    #    2x slower for minutes at a time.
    local r
    for r in 1 2 3; do
        taskset -c "$SERVER_CORE" cargo bench --bench core -- parse_lock_request table_ \
            --sample-size 10000 >"$TABLE_DIR/bench-fixed.$r.txt" 2>>"$TABLE_DIR/cargo.err"
        sleep 5
    done
    {
        echo "\`cargo bench --bench core\` (divan defaults; pinned to core $SERVER_CORE):"
        echo
        echo '```text'
        grep -v '^\s*$' "$TABLE_DIR/bench.txt"
        echo '```'
        echo
        echo "\`cargo bench --bench core -- parse_lock_request table_ --sample-size 10000\` (same benches, 10,000 iterations per sample), three runs 5 s apart:"
        echo
        echo '```text'
        for r in 1 2 3; do
            grep -v '^\s*$' "$TABLE_DIR/bench-fixed.$r.txt" | grep -v '^Timer precision' | sed "s/^core  /run $r/"
        done
        echo '```'
    } >"$TABLE_DIR/summary.md"
    finish
}

# ---------------------------------------------------------------------------------------
# 7. sweep: lock cycles/s and acquire latency against the number of clients, lockbox and
#    Redis, depth 1 and 32; perf_report.py draws the charts (SVG) from the raw JSON
# ---------------------------------------------------------------------------------------

SWEEP_CLIENTS=${SWEEP_CLIENTS:-"1 10 50 100 300 1000"}
SWEEP_DEPTHS=${SWEEP_DEPTHS:-"1 32"}

cmd_sweep() {
    begin sweep
    build
    [ "$(ulimit -n)" -ge 2200 ] || ulimit -n 4096 2>/dev/null || die "need an fd limit >= 2200 (ulimit -n)"
    start_lockbox --max-connections 4000
    start_redis --maxclients 4000
    local r c d first
    for ((r = 1; r <= RUNS; r++)); do
        for d in $SWEEP_DEPTHS; do
            for c in $SWEEP_CLIENTS; do
                for first in $( ((r % 2)) && echo "lockbox redis" || echo "redis lockbox"); do
                    if [ "$first" = lockbox ]; then
                        lg "$TABLE_DIR/c${c}x${d}.lockbox.$r.json" --duration "$DUR" \
                            --server "127.0.0.1:$LB_PORT" --server-pid "$LB_PID" \
                            --clients "$c" --pipeline "$d" --locks 10000
                    else
                        lg "$TABLE_DIR/c${c}x${d}.redis.$r.json" --duration "$DUR" --target redis \
                            --server "127.0.0.1:$RD_PORT" --server-pid "$RD_PID" \
                            --clients "$c" --pipeline "$d" --locks 10000
                    fi
                done
            done
        done
        load "round $r"
    done
    stop "$LB_PID"
    stop "$RD_PID"
    python3 "$HELP" sweep "$TABLE_DIR" "$RUNS" "$SWEEP_CLIENTS" "$SWEEP_DEPTHS" >"$TABLE_DIR/summary.md"
    finish
}

# ---------------------------------------------------------------------------------------
# client: the Rust client's cost per lock cycle against loadgen's, same server, same run
# ---------------------------------------------------------------------------------------

# The async client's bench example (client/examples/bench.rs): N tasks over one
# connection on a current-thread runtime. Its loadgen twin is one connection with N
# cycles in flight (--clients 1 --pipeline N). Both draw each cycle's name from the
# same 10,000 names (lg:0..lg:9999) and send `LOCK <name> wait=1000`, then
# `UNLOCK <name> <token>`; both are pinned to LOADGEN_CORE, the server to SERVER_CORE.
# Knobs: CLIENT_TASKS (default "1 10 50"); CLIENT_BASELINE=path of another build of the
# bench (e.g. an older client) to run in every round as a third contender.
CLIENT_BENCH=$TARGET_DIR/release/examples/bench
CLIENT_TASKS=${CLIENT_TASKS:-"1 10 50"}
CLIENT_FLAGS="--locks 10000 --wait 1000"

# cb BENCH OUTFILE [bench args...]: one bench run, like lg (JSON to OUTFILE, noise
# snapshot).
cb() {
    local bin=$1 out=$2 rc
    shift 2
    python3 "$HELP" cpusnap "$$ ${STARTED[*]}" >"$out.snap"
    taskset -c "$LOADGEN_CORE" "$bin" --json "$@" >"$out" 2>"$out.err"
    rc=$?
    python3 "$HELP" cpusnap "$$ ${STARTED[*]}" >>"$out.snap"
    if [ $rc -ne 0 ]; then
        echo "  bench exit $rc: $* (see $out.err)" >&2
    fi
    return 0
}

cmd_client() {
    begin client
    build
    if [ "${SKIP_BUILD:-0}" != 1 ]; then
        cargo build --release -p lockbox-client --example bench >&2 || die "cargo build (bench) failed"
    fi
    [ -x "$CLIENT_BENCH" ] || die "missing $CLIENT_BENCH"
    local order="loadgen client"
    if [ -n "${CLIENT_BASELINE:-}" ]; then
        [ -x "$CLIENT_BASELINE" ] || die "missing $CLIENT_BASELINE"
        order="loadgen client baseline"
    fi
    start_lockbox
    local r n who
    for ((r = 1; r <= RUNS; r++)); do
        for n in $CLIENT_TASKS; do
            # reverse the order every other round so drift in the noise hits all alike
            # shellcheck disable=SC2086
            for who in $( ((r % 2)) && echo $order || echo $order | tr ' ' '\n' | tac); do
                # shellcheck disable=SC2086
                case $who in
                loadgen)
                    lg "$TABLE_DIR/t$n.loadgen.$r.json" --duration "$DUR" --clients 1 \
                        --pipeline "$n" --server "127.0.0.1:$LB_PORT" --server-pid "$LB_PID" $CLIENT_FLAGS
                    ;;
                client | baseline)
                    cb "$([ "$who" = client ] && echo "$CLIENT_BENCH" || echo "$CLIENT_BASELINE")" \
                        "$TABLE_DIR/t$n.$who.$r.json" --duration "$DUR" --tasks "$n" \
                        --server "127.0.0.1:$LB_PORT" --server-pid "$LB_PID" $CLIENT_FLAGS
                    ;;
                esac
            done
        done
        load "round $r"
    done
    stop "$LB_PID"
    python3 "$HELP" client "$TABLE_DIR" "$RUNS" "$CLIENT_TASKS" >"$TABLE_DIR/summary.md"
    finish
}

cmd_env() {
    machine
    echo "- load: $(uptime)"
}

# ---------------------------------------------------------------------------------------

# The whole comment block at the top of this file, without its comment marks.
usage() {
    sed -n '2,/^[^#]/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
    exit 2
}

[ $# -eq 1 ] || usage
need python3
need taskset
mkdir -p "$OUT"
case $1 in
throughput) cmd_throughput ;;
ceiling) cmd_ceiling ;;
memory) cmd_memory ;;
timers) cmd_timers ;;
instructions) cmd_instructions ;;
micro) cmd_micro ;;
redis-dialect) cmd_redis_dialect ;;
redis-instructions) cmd_redis_instructions ;;
loadgen-instructions) cmd_loadgen_instructions ;;
sweep) cmd_sweep ;;
client) cmd_client ;;
env) cmd_env ;;
all)
    cmd_throughput
    cmd_ceiling
    cmd_memory
    cmd_timers
    cmd_instructions
    cmd_micro
    ;;
*) usage ;;
esac
