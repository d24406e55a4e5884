//! # loadgen: capacity and correctness load generator for lockbox (and Redis locks)
//!
//! One tool measures lockbox and the usual Redis lock recipe under the same workload,
//! and checks lockbox's guarantees while it does (`--verify`).
//!
//! Library layout (the binary in `main.rs` is parse -> run -> print -> exit code):
//! - [`parse_args`] turns command-line arguments into [`Options`] (or a [`UsageError`]);
//! - [`run`] connects, runs the workload on `--threads` `mio` poll loops, drains, and
//!   returns a [`Report`] (or a [`RunError`] when it could not run at all);
//! - [`Report`] prints as a human summary ([`std::fmt::Display`]) or as one JSON object
//!   ([`Report::to_json`]);
//! - [`fnv1a64`], [`fmix64`], [`rendezvous_score`] and [`rendezvous_route`]: the sharding
//!   function, below.
//!
//! # Layout
//!
//! - `options`: the command line: [`Options`], [`parse_args`], [`usage`].
//! - `shard`: rendezvous hashing, which server owns a lock name (its definition below).
//! - `run`: [`run`] plans the run, starts the poll loops, prints progress and adds their
//!   tallies up into a [`Report`].
//! - `worker`: one `mio` poll loop with its connections and pipeline slots (the loop
//!   itself: setup, polling, timers, the drain); `worker::cycle` is the life of one
//!   cycle (start, grant, hold, release, timeout, failure), `worker::slot` a pipeline
//!   slot and its state, `worker::tally` the loop's counts and samples,
//!   `worker::conn` sets connections up, `worker::native` speaks lockbox's line
//!   protocol, `worker::redis` speaks RESP, `worker::chaos` misbehaves on purpose
//!   (`--chaos`).
//! - `verify`: the cross-thread bookkeeping behind `--verify`, and [`Property`], the
//!   names its checks are counted under.
//! - `report`: [`Report`] and its text and JSON forms.
//! - `procfs`: CPU and memory readings from Linux `/proc`.
//! - `ascii`: decimal and hex numbers written into and read from byte buffers.
//!
//! ## Sharding: rendezvous hashing over several servers
//!
//! With several servers (`--server A,B,C`), every lock name lives on exactly one server,
//! chosen by rendezvous (highest random weight) hashing. This is the sharding function
//! every lockbox client uses; it is defined on bytes so any language can reproduce it:
//!
//! ```text
//! fnv1a64(bytes):  h = 0xcbf29ce484222325
//!                  for each byte b: h = (h XOR b) * 0x100000001b3   (mod 2^64)
//! fmix64(k):       k ^= k >> 33; k *= 0xff51afd7ed558ccd;          (mod 2^64)
//!                  k ^= k >> 33; k *= 0xc4ceb9fe1a85ec53;
//!                  k ^= k >> 33
//! score(server, name) = fmix64(fnv1a64(server ++ [0x00] ++ name))
//! route(servers, name) = the index i with the highest score(servers[i], name);
//!                        on equal scores the lowest index wins
//! ```
//!
//! - `server` is the server's address string exactly as configured, as UTF-8 bytes,
//!   e.g. `127.0.0.1:7654` or `[::1]:7654` (clients must agree on the spelling; no
//!   resolution or normalisation happens before hashing).
//! - `name` is the lock name's bytes as sent on the wire.
//! - `fmix64` is MurmurHash3's 64-bit finaliser. It is needed because plain FNV-1a
//!   distributes badly here: for names `lg:0`..`lg:99999` over `127.0.0.1:7654` and
//!   `127.0.0.1:7655` plain FNV-1a splits 43% / 57%, with `fmix64` 49.7% / 50.3%.
//! - Adding or removing a server moves only the names that go to or come from it.
//!
//! Known vectors (pinned in the tests): `fnv1a64("") = 0xcbf29ce484222325`,
//! `fnv1a64("a") = 0xaf63dc4c8601ec8c`,
//! `score("127.0.0.1:7001", "lg:0") = 0x44c20e1aab9887ca`,
//! `score("127.0.0.1:7002", "lg:0") = 0x912161898369f58e`,
//! `score("127.0.0.1:7003", "lg:0") = 0xe9f91e111cddfe73`, so `lg:0` goes to
//! `127.0.0.1:7003` among those three.
//!
//! ## Workload
//!
//! `--clients N` logical clients each hold one TCP connection to every server and keep
//! `--pipeline D` cycles outstanding (so with one server: N connections, D requests in
//! flight on each). Clients are split over `--threads T` poll loops. A cycle picks a lock
//! name `<prefix><i>` with `i` uniform in `0..K` (`--locks K`, seeded PRNG `--seed`),
//! routes it, and runs:
//! - lockbox lock/share: `LOCK name` (or `SHARE name max=M`) with `wait=`/`hold=` when
//!   given -> `OK token` -> hold for `--work` (a timer in the loop) -> `UNLOCK name
//!   token` -> `OK`. `TIMEOUT` ends the cycle as a timeout, `ERR` as an error. An
//!   `EXPIRED` event while holding ends the cycle as expired; if it arrives after the
//!   `UNLOCK` was sent, the `ERR not_held` reply is expected and the cycle counts.
//! - Redis: `SET name token NX PX hold` (hold = `--hold`, default 30000 ms), a nil reply
//!   is retried after `--retry` until `--wait` runs out (then a timeout; no `--wait`:
//!   retry until the run stops); release with the compare-and-delete `EVAL` script
//!   ([`REDIS_UNLOCK_SCRIPT`]); a `0` result means the key had expired (counted as
//!   expired, the cycle still counts). Tokens are random 64-bit values in hex.
//! - ping: one `PING` -> `PONG` per cycle (to the server the random name routes to).
//!
//! Connections are set up at most 96 at a time (over all threads), and each is confirmed
//! by one `lg-hello PING` -> `lg-hello PONG` round trip (Redis: `PING` -> `+PONG`) before
//! the load starts, so the server has really accepted it: a connect burst never overflows
//! a small listen backlog (dropped SYNs would cost 1 s retransmits), and a server that
//! refuses connections (`* ERR limit`) is reported as such.
//!
//! Request ids are decimal: the k-th request of pipeline slot j is `j + D*k`, so a reply
//! maps to its slot without a lookup table, and ids are unique on a connection.
//! `--id-len N` (1 to 32, lockbox's longest id) pads every id with leading `0`s to
//! exactly N bytes, in requests and in `CANCEL`'s argument, to load the server with long
//! ids (a 32-hex-digit id is a common client choice; lockbox stores ids of up to 22
//! bytes inline, longer ones in a heap buffer); a reply must carry the id in exactly that
//! form. An id with more than N digits is sent whole, never cut, so with N below 20 a
//! long enough run also sends longer ids; from N = 20 up every id is N bytes.
//!
//! The run stops issuing new cycles after `--duration` or when `--cycles` cycles have
//! completed, then drains: in-flight cycles finish (holds are released) for at most
//! `--drain`; requests still unanswered then are reported as `unanswered`. `--timeout`
//! bounds the whole run (connect, work and drain). Connections that the server closes
//! end their client (pending requests count as errors).
//!
//! ## Verification (`--verify`)
//!
//! Checked while running, from what this process observes; every check and every
//! violation is counted under its [`Property`] in [`Report::checks`]. With several
//! servers everything is checked per server (names and tokens of different servers are
//! never compared).
//! - **Mutual exclusion** (`exclusion`; lock mode and semaphore names, lockbox and
//!   Redis): when a grant for name X arrives, no conflicting hold on X (exclusive
//!   against anything) may be *live*. A hold is live from the moment its grant is
//!   received until loadgen queues its `UNLOCK` or `RESET`, sees its `EXPIRED`, or
//!   closes its connection. This is conservative: the server releases a hold only after
//!   it has read one of those, which loadgen writes after marking the hold ended (the
//!   server grants after reading the EOF of a closed connection, never before), so a
//!   correct server never produces an overlap here, and any overlap seen is a real one.
//!   With a lease (`--hold H`, or a chaos lease) a hold can also end at the server
//!   without loadgen knowing yet (its `EXPIRED` may still be in flight): such a hold is
//!   only counted live while `now + 2 ms < acquire_sent + H` (the server's grant came
//!   after the request was sent, and deadlines never fire early; an `EXTEND` in flight
//!   can only shorten this, its `OK` sets it to `extend_sent + ms`). A live hold counts
//!   against a new grant only if both were certainly held at one moment: it was
//!   granted first (smaller token; lockbox only, Redis tokens are random), or the new
//!   grant's own lease cannot have run out before the live hold's grant arrived. The
//!   second rule matters under CPU load: a grant read late (its `+OK` waited in the
//!   socket while the poll loop was off the CPU) may have expired at the server before
//!   another client was granted the name and seen first.
//! - **Tokens increase** (`tokens`, lockbox): per server, a grant's token is greater
//!   than every token loadgen had seen from that server before the request was sent
//!   (so a reused or repeated token is caught across connections); every grant token
//!   on a connection is greater than all grant tokens seen before on that connection
//!   (the server appends replies in grant order); and per name, a grant observed after
//!   an exclusive grant of the same name (or an exclusive grant observed after any)
//!   carries a larger token, unless it may have ended before.
//! - **Shared max** (`shared_max`; share mode with `--max M`, semaphore names under
//!   `--chaos`): the grant's `holders` field is at most M, and at most M-1 other live
//!   shared holds on that name exist when it arrives.
//! - **Exactly once** (`exactly_once`): every reply carries the id of a request that is
//!   still pending on that connection (a reply with an unknown id, to the wrong
//!   connection, or a second reply to the same request is a violation); Redis: no reply
//!   without a pending request. Requests left unanswered by the end of the drain are
//!   counted as `unanswered`, not as violations (the run end cut them off), and so are
//!   requests on a connection loadgen closed itself (`--chaos`).
//! - **Cancelled waits** (`cancelled_waits`, `--chaos`): a wait answered `CANCELLED` is
//!   never granted afterwards; `CANCELLED` comes before the `OK 1` of the `CANCEL` and
//!   before the `OK` of a `RESET`; `CANCEL` answers `ERR not_waiting` only once the wait
//!   was answered (a grant or `TIMEOUT` that crossed the `CANCEL` on the wire is not a
//!   violation: the request was granted before the `CANCEL` arrived, and its hold is a
//!   normal one); every request sent before a `RESET` is answered before its `OK`.
//! - **Ended holds** (`ended_holds`, `--chaos`): after loadgen half-closed a connection
//!   and the server closed it, `INSPECT` on a new connection never shows one of its
//!   exclusive holds; an `UNLOCK` or `EXTEND` sent after a `RESET` finds nothing held.
//!   A grant that arrives after a `RESET` was sent for a request sent before it may
//!   already be released by that `RESET`: it is not counted as held.
//! - **Protocol** (`protocol`): every reply has the form its request calls for.
//!
//! Each violation is counted in [`Report::violations`] with evidence in
//! [`Report::violation_samples`]; the binary exits 1 when there is any.
//!
//! ## Chaos (`--chaos RATE`, lockbox)
//!
//! A fraction RATE of the cycles, chosen by the seeded PRNG (`--seed`), misbehave, each
//! in one way picked uniformly: close the connection while the acquire waits (0-3 ms
//! after sending it) or while holding (at the end of `--work`), then reconnect, half
//! of the time abruptly and half by shutting the writing side and reading until the
//! server closes (then `INSPECT` the exclusive holds it had); `CANCEL` the pending
//! wait (0-3 ms after the acquire; 0 puts both in one write); `RESET` the connection
//! while holding; `EXTEND` the hold (to `--hold`, or 30 s without it) and then hold for
//! another `--work`; or take a 3 ms lease and let it expire. In lock mode one name in
//! four (chosen by hash of the name and the seed) is a semaphore name: half of the
//! cycles on it use `SHARE max=M` (M from 1 to 3, the same for every request on that
//! name) instead of `LOCK`, so exclusive and shared holds meet on one name. Closing
//! affects every cycle on that connection (pipelined ones too); `RESET` every hold and
//! wait of the connection. [`Report::chaos`] counts what happened.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod ascii;
mod options;
mod procfs;
mod report;
mod run;
mod shard;
mod verify;
mod worker;

pub use options::{
    parse_args, usage, version, CycleKind, Options, Target, UsageError, DEFAULT_LOCKBOX_ADDR,
    DEFAULT_REDIS_ADDR, DEFAULT_REDIS_HOLD_MS, REDIS_UNLOCK_SCRIPT,
};
pub use report::{ChaosCounts, Check, CpuUsage, Latency, Report, ServerUsage};
pub use run::{run, RunError};
pub use shard::{
    fmix64, fnv1a64, fnv1a64_extend, rendezvous_route, rendezvous_score, FNV1A64_OFFSET,
    FNV1A64_PRIME,
};
pub use verify::Property;
