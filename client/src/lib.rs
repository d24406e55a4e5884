//! placeholder
#![forbid(unsafe_code)]
pub mod error;
pub mod proto;
pub mod session;
pub mod shard;
pub use error::{Error, Result};
