#!/usr/bin/env bash
# benches/perf.sh: reproduces every table of PERF.md, one subcommand per table.
#
#   bash benches/perf.sh throughput     # 1. lockbox vs Redis lock cycles/s and latency
#   bash benches/perf.sh ceiling        # 2. lockbox lock cycles vs lockbox PING
#   bash benches/perf.sh memory         # 3. RSS with 1M held locks, with 10k idle connections
#   bash benches/perf.sh timers         # 4. wait-deadline lateness (>= 100k timeouts)
#   bash benches/perf.sh instructions   # 5. callgrind instructions + mallocs per cycle, CPU us/cycle, syscalls/cycle
#   bash benches/perf.sh micro          # 6. cargo bench --bench core (divan)
#   bash benches/perf.sh all            # all of the above, in that order
#   bash benches/perf.sh env            # only the machine description
#
# Environment knobs: RUNS (repetitions per configuration, default 7), DUR (seconds per
# load run, default 3), OUT (result directory, default target/perf), SERVER_CORE (0),
# LOADGEN_CORE (1), SKIP_BUILD=1 (use the binaries already in target/release).
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
LOCKBOX=$TARGET_DIR/release/lockbox
LOADGEN=$TARGET_DIR/release/loadgen
RUNS=${RUNS:-7}
DUR=${DUR:-3}
OUT=${OUT:-$TARGET_DIR/perf}
SERVER_CORE=${SERVER_CORE:-0}
LOADGEN_CORE=${LOADGEN_CORE:-1}
HELP=$OUT/perfhelp.py

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

# The machine and the load on it, as Markdown.
machine() {
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
    echo "- $(rustc --version), $(redis-server --version 2>/dev/null | cut -d' ' -f1-3 || echo 'redis-server: not installed')"
    echo "- lockbox commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src loadgen Cargo.toml Cargo.lock 2>/dev/null || echo ' (working tree modified)')"
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
    write_helper
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
# 2. ceiling: lockbox lock cycles vs lockbox PING cycles
# ---------------------------------------------------------------------------------------

CEILING_CONFIGS=(
    "c1x1|--clients 1 --pipeline 1 --locks 10000"
    "c50x1|--clients 50 --pipeline 1 --locks 10000"
    "c50x32|--clients 50 --pipeline 32 --locks 10000"
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
                # shellcheck disable=SC2086
                lg "$TABLE_DIR/$id.$mode.$r.json" --duration "$DUR" --mode "$mode" \
                    --server "127.0.0.1:$LB_PORT" --server-pid "$LB_PID" $flags
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
    local after
    after=$(rss_kb "$pid")
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(name=sys.argv[2], target=sys.argv[3], base_kb=int(sys.argv[4]), peak_rss_kb=int(sys.argv[5]), hwm_kb=int(sys.argv[6]), after_kb=int(sys.argv[7]), flags=sys.argv[8], series_kb=[int(x) for x in sys.argv[9].split()]); print(json.dumps(d))' \
        "$stat" "$name" "$target" "$base" "$now" "$hwm_at_peak" "$after" "$*" "$series" >"$TABLE_DIR/$name.mem.json"
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
    taskset -c "$SERVER_CORE" valgrind --tool=massif --massif-out-file="$TABLE_DIR/massif.out" \
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
TIMER_CONFIGS=(
    "light|--clients 100 --pipeline 1 --locks 1 --wait 10 --work-ms 4000|14"
    "heavy|--clients 50 --pipeline 20 --locks 1 --wait 10 --work-ms 4000|3"
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
            # shellcheck disable=SC2086
            lg "$TABLE_DIR/$id.$r.json" --duration "$dur" --drain-s 15 \
                --server "127.0.0.1:$LB_PORT" --server-pid "$LB_PID" $flags
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
        [ -s "$TABLE_DIR/callgrind.out.$CG_PARTS" ] && break
        sleep 0.1
    done
    [ -s "$TABLE_DIR/callgrind.out.$CG_PARTS" ] || die "callgrind dump $CG_PARTS missing"
    sleep 0.2
}

cmd_instructions() {
    begin instructions
    build
    need valgrind
    need callgrind_control
    local cfg id flags r
    # (a) callgrind: instructions and malloc calls, from the difference of two runs
    local port
    port=$(free_port)
    taskset -c "$SERVER_CORE" valgrind --tool=callgrind --dump-instr=no \
        --callgrind-out-file="$TABLE_DIR/callgrind.out" \
        "$LOCKBOX" --listen "127.0.0.1:$port" 2>"$TABLE_DIR/valgrind.log" &
    CG_PID=$!
    STARTED+=("$CG_PID")
    CG_PARTS=0
    wait_port "$port" 60
    cg_dump # part 1: start-up
    : >"$TABLE_DIR/callgrind.parts"
    for cfg in "${COST_CONFIGS[@]}"; do
        IFS='|' read -r id flags <<<"$cfg"
        for n in "$N_SMALL" "$N_BIG"; do
            # shellcheck disable=SC2086
            lg "$TABLE_DIR/cg.$id.$n.json" --cycles "$n" --server "127.0.0.1:$port" $flags
            sleep 0.5 # the server reaps the closed connections
            cg_dump
            echo "$id $n $CG_PARTS" >>"$TABLE_DIR/callgrind.parts"
        done
    done
    stop "$CG_PID"
    load "after callgrind"
    # (b) CPU time per cycle at full speed (from /proc, via loadgen --server-pid)
    start_lockbox
    for ((r = 1; r <= 3; r++)); do
        for cfg in "${COST_CONFIGS[@]}"; do
            IFS='|' read -r id flags <<<"$cfg"
            # shellcheck disable=SC2086
            lg "$TABLE_DIR/cpu.$id.$r.json" --duration "$DUR" \
                --server "127.0.0.1:$LB_PORT" --server-pid "$LB_PID" $flags
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
            lg "$TABLE_DIR/strace.$id.json" --cycles 20000 --server "127.0.0.1:$LB_PORT" $flags
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

cmd_env() {
    machine
    echo "- load: $(uptime)"
}

# ---------------------------------------------------------------------------------------
# Python helper (JSON handling, STATS, idle connections, callgrind parsing, tables)
# ---------------------------------------------------------------------------------------

write_helper() {
    mkdir -p "$OUT"
    cat >"$HELP" <<'PY'
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
    return j["acquire_us"][k] if j else None

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
    print(json.dumps({"t": time.time(), "steal": steal, "procs": procs}))

def other_pct(path):
    """CPU used during a run by every process other than the server and loadgen (and
    this script), in % of one core, plus the host's steal: a run with company shows it."""
    try:
        with open(path + ".snap") as f:
            a, b = [json.loads(l) for l in f.read().splitlines()[:2]]
    except (OSError, ValueError):
        return None
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
          "**requests/s ratio** | server CPU % lock / PING | server CPU us per lock cycle / per PING | loadgen CPU % lock / PING | other CPU % lock / PING |")
    print("|---|---|---|---|---|---|---|---|---|")
    for c in ("c1x1", "c50x1", "c50x32"):
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
              f"{fmt(med(others(d, c, 'lock', n)))} / {fmt(med(others(d, c, 'ping', n)))} |")

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
        if len(p) == 4 and p[1] == "STAT":
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
    print("| what | server | items at the peak (checked on the server) | RSS before | RSS at peak | VmHWM | RSS after release | bytes per item | RSS series (MiB) |")
    print("|---|---|---|---|---|---|---|---|---|")
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
        print(f"| {what} | {srv} | {itemtxt} | {mib(j['base_kb'])} | **{mib(j['peak_rss_kb'])}** ({j['peak_rss_kb'] * 1024 / 1e6:,.1f} MB) | {hwm} | {after} | {fmt(per)} | {series} |")
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

def timers(d):
    rtt = [load(os.path.join(d, f"rtt.{r}.json")) for r in (1, 2, 3)]
    print("Lateness of `wait=10` deadlines = (TIMEOUT received - LOCK sent) - 10 ms, measured "
          "client-side by loadgen (`timeout_lateness_us`): it includes one loopback round trip "
          "and loadgen's own scheduling, and the server's rounding up to the next millisecond "
          "boundary. One lock held for 4 s at a time by one loadgen slot; every other slot "
          "waits on it with wait=10 and retries at once after its TIMEOUT.\n")
    print("| workload | run | timeouts | timeouts/s | lateness p50 us | p90 | p99 | p99.9 | max | server CPU % | loadgen CPU % |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    names = {"light": "light: 99 waiters (100 clients x depth 1), 14 s",
             "heavy": "heavy: 999 waiters (50 clients x depth 20), 3 s"}
    for c in ("light", "heavy"):
        for r in (1, 2, 3):
            j = load(os.path.join(d, f"{c}.{r}.json"))
            if not j:
                print(f"| {names[c]} | {r} | failed | | | | | | | | |")
                continue
            t = j["timeout_lateness_us"]
            print(f"| {names[c]} | {r} | {t['count']:,} | {fmt(j['timeouts'] / j['total_s'])} | {t['p50']} | {t['p90']} | "
                  f"{t['p99']} | {t['p999']} | {t['max']} | {fmt(srv_pct(j))} | {fmt(lgcpu(j))} |")
    rt = [j["acquire_us"] for j in rtt if j]
    if rt:
        print(f"\nFor reference, an unloaded loopback PING round trip (1 client, depth 1, 3 runs of 2 s): "
              f"p50 {fmt(med(x['p50'] for x in rt))} us, p99 {fmt(med(x['p99'] for x in rt))} us, "
              f"p99.9 {fmt(med(x['p999'] for x in rt))} us.")

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

def instructions(d):
    parts = {}
    with open(os.path.join(d, "callgrind.parts")) as f:
        for line in f:
            cid, n, p = line.split()
            parts[(cid, int(n))] = int(p)
    cfgs = []
    for (cid, n) in parts:
        if cid not in cfgs:
            cfgs.append(cid)
    label = {"lock_50x1": "lock cycle (50, 1)", "ping_50x1": "PING (50, 1)",
             "lock_50x32": "lock cycle (50, 32)", "ping_50x32": "PING (50, 32)",
             "redis_lock_50x1": "Redis lock cycle (50, 1)",
             "redis_lock_50x32": "Redis lock cycle (50, 32)"}
    reqs = {"lock": 2, "ping": 1}
    print("**(a) callgrind** (`valgrind --tool=callgrind` on the server, user-space instructions "
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
        if cid not in ("lock_50x1", "lock_50x32"):
            continue
        print(f"\nTop functions by self instructions per {label[cid]} (difference of the two runs; "
              f"inlined code is attributed to the function it was inlined into):\n")
        print("| Ir per cycle | share | function |")
        print("|---|---|---|")
        for v, k in top:
            print(f"| {v:,.0f} | {100 * v / per:.1f}% | `{k[:110]}` |")
    # (b) CPU per cycle at full speed
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
    # (c) syscalls
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

if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"throughput": throughput, "ceiling": ceiling, "cpusnap": cpusnap, "count": count, "idle": idle,
     "memory": memory, "timers": timers, "instructions": instructions}[cmd](*args)
PY
}

# ---------------------------------------------------------------------------------------

usage() {
    sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
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
