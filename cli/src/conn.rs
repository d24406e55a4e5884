//! Servers and connections: the address list, the secret, the client name, routing a
//! lock name to its server, connecting to one server or to all of them.
//!
//! # Invariants
//! - A lock name is routed with the client library's rendezvous function over the list
//!   as given, so `run` and `inspect` (and every other lockbox client with the same
//!   list) agree on the server. Only that server is contacted: a lock does not depend
//!   on the other servers being up.

use lockbox_client::shard::rendezvous_route;
use lockbox_client::{Client, ConnectOptions};
use std::path::Path;
use std::time::Duration;

use crate::args::{check_server, Cli};
use crate::exit::{self, Fail};

/// Longest client name the server accepts (`NAME`).
const MAX_CLIENT_NAME: usize = lockbox_client::proto::MAX_CLIENT_NAME;

/// What every command needs to reach the servers.
pub struct Ctx {
    /// The servers, as given (the routing depends on the exact spelling).
    pub servers: Vec<String>,
    /// `--json`.
    pub json: bool,
    opts: ConnectOptions,
}

impl Ctx {
    /// Checks the global flags and reads the auth file.
    pub fn new(cli: &Cli) -> Result<Ctx, Fail> {
        let mut servers: Vec<String> = Vec::new();
        for s in &cli.servers {
            let s = s.trim();
            check_server(s).map_err(|e| Fail::new(exit::USAGE, e))?;
            if servers.iter().any(|x| x == s) {
                return Err(Fail::new(exit::USAGE, format!("server {s} is given twice")));
            }
            servers.push(s.to_string());
        }
        if servers.is_empty() {
            return Err(Fail::new(exit::USAGE, "no server given (--server ADDR)"));
        }
        let name = match &cli.client_name {
            Some(n) => {
                if !lockbox_client::proto::valid_name(n.as_bytes(), MAX_CLIENT_NAME) {
                    return Err(Fail::new(
                        exit::USAGE,
                        format!("client name {n:?} must be 1 to {MAX_CLIENT_NAME} bytes with no spaces or control characters"),
                    ));
                }
                n.clone()
            }
            None => default_client_name(),
        };
        let mut opts = ConnectOptions::new()
            .name(name)
            .connect_timeout(cli.connect_timeout.max(Duration::from_millis(1)));
        if let Some(path) = &cli.auth_file {
            opts = opts.auth(read_secret(path)?);
        }
        Ok(Ctx {
            servers,
            json: cli.json,
            opts,
        })
    }

    /// The server that owns lock `name`.
    pub fn route(&self, name: &str) -> &str {
        let i = rendezvous_route(&self.servers, name.as_bytes()).unwrap_or(0);
        &self.servers[i]
    }

    /// The connect timeout, also the bound on a release at the end of `run`.
    pub fn timeout(&self) -> Duration {
        self.opts.get_connect_timeout()
    }

    /// Connects to `server`.
    pub async fn connect(&self, server: &str) -> Result<Client, Fail> {
        Client::connect_with(server, self.opts.clone())
            .await
            .map_err(|e| Fail::server(server, &e))
    }

    /// Connects to every server at once; one result per server, in order.
    pub async fn connect_all(&self) -> Vec<Result<Client, Fail>> {
        let tasks: Vec<_> = self
            .servers
            .iter()
            .map(|s| tokio::spawn(Client::connect_with(s.clone(), self.opts.clone())))
            .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for (t, s) in tasks.into_iter().zip(&self.servers) {
            out.push(match t.await {
                Ok(r) => r.map_err(|e| Fail::server(s, &e)),
                Err(e) => Err(Fail::new(exit::UNAVAILABLE, format!("{s}: {e}"))),
            });
        }
        out
    }
}

/// The secret: the first line of the file, without its line end (what the server reads
/// from its own `--auth-file`).
fn read_secret(path: &Path) -> Result<String, Fail> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Fail::new(
            exit::NOINPUT,
            format!("cannot read the auth file {}: {e}", path.display()),
        )
    })?;
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if line.is_empty() {
        return Err(Fail::new(
            exit::NOINPUT,
            format!("the auth file {} has an empty first line", path.display()),
        ));
    }
    Ok(line.to_string())
}

/// `lockbox-cli@HOST:PID`, made to fit the server's client-name rules.
fn default_client_name() -> String {
    let uname = rustix::system::uname();
    let host = uname.nodename().to_string_lossy();
    let host = if host.is_empty() {
        "localhost".into()
    } else {
        host
    };
    client_name_for(&host, std::process::id())
}

fn client_name_for(host: &str, pid: u32) -> String {
    let tail = format!(":{pid}");
    let mut name = String::from("lockbox-cli@");
    for c in host.chars() {
        let c = if c.is_control() || c == ' ' { '_' } else { c };
        if name.len() + c.len_utf8() + tail.len() > MAX_CLIENT_NAME {
            break;
        }
        name.push(c);
    }
    name.push_str(&tail);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_names_fit_the_rules() {
        assert_eq!(client_name_for("db1", 42), "lockbox-cli@db1:42");
        let odd = client_name_for("a b\tc", 1);
        assert_eq!(odd, "lockbox-cli@a_b_c:1");
        let long = client_name_for(&"h".repeat(300), u32::MAX);
        assert!(lockbox_client::proto::valid_name(
            long.as_bytes(),
            MAX_CLIENT_NAME
        ));
        assert!(long.ends_with(":4294967295"));
        let utf8 = client_name_for(&"é".repeat(100), 7);
        assert!(lockbox_client::proto::valid_name(
            utf8.as_bytes(),
            MAX_CLIENT_NAME
        ));
        assert!(lockbox_client::proto::valid_name(
            default_client_name().as_bytes(),
            MAX_CLIENT_NAME
        ));
    }
}
