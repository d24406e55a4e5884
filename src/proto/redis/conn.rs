//! The connection commands of the Redis dialect: `INFO`, `CLIENT`, `HELLO`, `AUTH`
//! (the password compared in constant time).

use super::*;

/// The one user name `AUTH` and `HELLO ... AUTH` accept (Redis's user without ACLs).
const DEFAULT_USER: &[u8] = b"default";
/// `HELLO` before `AUTH` on a server with a secret, as Redis words it.
const HELLO_NOAUTH: &[u8] = b"NOAUTH HELLO must be called with the client already authenticated, \
    otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and \
    select the RESP protocol version at the same time";

impl State {
    /// `INFO [section]`: enough for clients' ready checks.
    pub(super) fn info(&mut self, cx: &mut Ctx) {
        let (connections, ..) = cx.engine.gauges();
        let text = format!(
            "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_mode:standalone\r\n\
             lockbox_version:{VERSION}\r\nuptime_in_seconds:{}\r\n\r\n# Clients\r\n\
             connected_clients:{connections}\r\n\r\n# Persistence\r\nloading:0\r\n",
            cx.engine.uptime(cx.now) / 1000
        );
        resp::bulk(cx.out, text.as_bytes());
    }

    /// `CLIENT ID|SETNAME|GETNAME|SETINFO`.
    pub(super) fn client(&mut self, req: &Request, cx: &mut Ctx) {
        let sub = req.get(1).unwrap_or(&[]);
        let argc = req.len();
        if is(sub, "id") && argc == 2 {
            resp::integer(cx.out, i64::from(cx.client) + 1);
        } else if is(sub, "setname") && argc == 3 {
            let name = req.get(2).unwrap_or(&[]);
            if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
                return err(
                    cx,
                    b"ERR Client names cannot contain spaces, newlines or special characters.",
                );
            }
            match client_name(name) {
                Some(n) => cx.engine.set_name(cx.client, Some(n.as_bytes())),
                None if name.is_empty() => cx.engine.set_name(cx.client, None),
                None => return err(cx, b"ERR client name is too long (most 64 bytes)"),
            }
            resp::simple(cx.out, b"OK");
        } else if is(sub, "getname") && argc == 2 {
            let name = cx
                .engine
                .client(cx.client)
                .and_then(|c| c.name())
                .and_then(wire_name);
            match name {
                Some(n) => resp::bulk(cx.out, &n),
                None => resp::null(cx.out, self.version),
            }
        } else if is(sub, "setinfo") && argc == 4 {
            resp::simple(cx.out, b"OK");
        } else if ["id", "setname", "getname", "setinfo"]
            .iter()
            .any(|s| is(sub, s))
        {
            let mut full = b"client|".to_vec();
            full.extend(sub.iter().map(u8::to_ascii_lowercase));
            wrong_args(cx, &full);
        } else {
            unknown_subcommand(cx, sub, "CLIENT");
        }
    }

    /// `HELLO [protover [AUTH user pass] [SETNAME name]]`.
    pub(super) fn hello(&mut self, req: &Request, cx: &mut Ctx) -> Flow {
        let mut version = self.version;
        let mut i = 1;
        if let Some(v) = req.get(1) {
            match int(v) {
                Some(2) => version = Version::Resp2,
                Some(3) => version = Version::Resp3,
                Some(_) => {
                    err(cx, b"NOPROTO unsupported protocol version");
                    return Flow::Continue;
                }
                None => {
                    err(
                        cx,
                        b"ERR Protocol version is not an integer or out of range",
                    );
                    return Flow::Continue;
                }
            }
            i = 2;
        }
        let mut setname = None;
        while let Some(opt) = req.get(i) {
            if is(opt, "auth") && req.len() > i + 2 {
                let (user, pass) = (req.get(i + 1), req.get(i + 2).unwrap_or(&[]));
                if !self.check_secret(user, pass, cx) {
                    return Flow::Continue;
                }
                i += 3;
            } else if is(opt, "setname") && req.len() > i + 1 {
                setname = req.get(i + 1);
                i += 2;
            } else {
                cx.stats.errors_total += 1;
                cx.out
                    .extend_from_slice(b"-ERR Syntax error in HELLO option '");
                cx.out.extend(opt.iter().take(QUOTE_MAX).map(|&b| safe(b)));
                cx.out.extend_from_slice(b"'\r\n");
                return Flow::Continue;
            }
        }
        if !self.authed {
            err(cx, HELLO_NOAUTH);
            return Flow::Continue;
        }
        if let Some(n) = setname.and_then(client_name) {
            cx.engine.set_name(cx.client, Some(n.as_bytes()));
        }
        self.version = version;
        resp::map(cx.out, 7, version);
        resp::bulk(cx.out, b"server");
        resp::bulk(cx.out, b"redis");
        resp::bulk(cx.out, b"version");
        resp::bulk(cx.out, REDIS_VERSION.as_bytes());
        resp::bulk(cx.out, b"proto");
        resp::integer(cx.out, if version == Version::Resp3 { 3 } else { 2 });
        resp::bulk(cx.out, b"id");
        resp::integer(cx.out, i64::from(cx.client) + 1);
        resp::bulk(cx.out, b"mode");
        resp::bulk(cx.out, b"standalone");
        resp::bulk(cx.out, b"role");
        resp::bulk(cx.out, b"master");
        resp::bulk(cx.out, b"modules");
        resp::array(cx.out, 0);
        Flow::Continue
    }

    /// `AUTH [user] password`: the user, when given, must be `default` (the one user,
    /// as in Redis without ACLs); without a secret configured the one-argument form is
    /// refused and `default` takes any password, as Redis answers.
    pub(super) fn auth(&mut self, user: Option<&[u8]>, pass: &[u8], cx: &mut Ctx) {
        if user.is_none() && cx.secret.is_none() {
            return err(
                cx,
                b"ERR AUTH <password> called without any password configured for the default user. \
                  Are you sure your configuration is correct?",
            );
        }
        if self.check_secret(user, pass, cx) {
            resp::simple(cx.out, b"OK");
        }
    }

    /// Checks an AUTH user and password; writes `WRONGPASS` when either is wrong.
    fn check_secret(&mut self, user: Option<&[u8]>, pass: &[u8], cx: &mut Ctx) -> bool {
        let user_ok = user.is_none_or(|u| u == DEFAULT_USER);
        match cx.secret {
            None if user_ok => true,
            Some(s) if constant_time_eq(pass, s) && user_ok => {
                self.authed = true;
                true
            }
            _ => {
                err(cx, WRONGPASS);
                false
            }
        }
    }
}

/// Compares in time that depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u64;
    for i in 0..a.len().max(b.len()) {
        diff |= u64::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}
