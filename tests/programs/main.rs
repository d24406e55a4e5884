//! The shipped programs: the `lockbox` binary's command line (`cli`) and the bundled
//! load generator's `--verify` against a real server (`loadgen_verify`).

#[path = "../common/mod.rs"]
mod common;

mod cli;
mod loadgen_verify;
