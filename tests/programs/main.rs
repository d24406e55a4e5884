//! The shipped programs: the `lockbox` binary's command line (`cli`), the bundled
//! load generator's `--verify` against a real server (`loadgen_verify`), and what an
//! operator sees: metrics, logs, signals, error texts (`ops`).

#[path = "../common/mod.rs"]
mod common;

mod cli;
mod loadgen_verify;
mod ops;
