//! The `lockbox` binary: options -> config -> run.

use lockbox::config::{parse_args, Command};
use std::process::exit;

fn main() {
    let cfg = match parse_args(std::env::args_os().skip(1)) {
        Ok(Command::Run(cfg)) => *cfg,
        Ok(Command::Help(text)) => {
            print!("{text}");
            return;
        }
        Ok(Command::Version) => {
            println!("lockbox {}", lockbox::config::VERSION);
            return;
        }
        Err(e) => {
            eprintln!("lockbox: {e} (try --help)");
            exit(2);
        }
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let server = match lockbox::server::Server::bind(cfg.clone()) {
        Ok(s) => s,
        Err(e) => {
            // Errors carry their context: which listener, the state file, the auth file.
            eprintln!("lockbox: {e}");
            exit(2);
        }
    };
    log::info!("listening on {}", server.local_addr());
    if let Err(e) = server.run() {
        log::error!("poll loop failed: {e}");
        exit(1);
    }
}
