//! The `lockbox` binary: options -> config -> run until SIGINT or SIGTERM (exit 0).

use lockbox::config::{parse_args, Command};
use lockbox::proto::Protocol;
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
    let mut server = match lockbox::server::Server::bind(cfg.clone()) {
        Ok(s) => s,
        Err(e) => {
            // Errors carry their context: which listener, the state file, the auth file.
            eprintln!("lockbox: {e}");
            exit(2);
        }
    };
    if let Err(e) = server.stop_on_signals() {
        eprintln!("lockbox: cannot install the SIGINT/SIGTERM handlers: {e}");
        exit(2);
    }
    // One line per listener, native first: `<protocol> listening on <addr>`.
    for (protocol, addr) in server.listeners() {
        match protocol {
            Protocol::Metrics => {
                log::info!("metrics listening on {addr} (GET http://{addr}/metrics)")
            }
            _ => log::info!("{} protocol listening on {addr}", protocol.as_str()),
        }
    }
    match server.run() {
        // SIGINT or SIGTERM: every connection is closed and its holds released.
        Ok(()) => {}
        Err(e) => {
            log::error!("poll loop failed: {e}");
            exit(1);
        }
    }
}
