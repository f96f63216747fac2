//! End-to-end test support: runs the real `postern` binary (`postern serve`
//! and the CLI) against the fake Exchange Online and fake identity platform
//! from `postern-testkit`, with secrets in the real OS keychain.
//!
//! The keychain needs a Secret Service on the session bus: run the tests
//! through `scripts/test.sh`, which starts gnome-keyring in a private
//! D-Bus session.
//!
//! Nothing here sleeps to synchronise: `serve` is ready when it logs the
//! address it listens on, upstream arrivals are awaited on the fake's
//! notification, and queue states are polled against a deadline (the
//! assertion is the state, never the time it took).

#![allow(dead_code)]

pub mod graph;
pub mod mail;
pub mod smtp;
pub mod tenant;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use postern_testkit::{
    ClientRegistration, FakeExchange, FakeExchangeOptions, FakeIdentity, IdentityOptions,
};
use serde_json::Value;

pub const MAILBOX: &str = "scanner@contoso.com";
pub const CLIENT_SECRET: &str = "test-client-secret-Zq8v";
/// Generous: a deadline for things that normally take milliseconds, so a
/// slow CI machine does not fail a correct build.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub fn postern_bin() -> &'static str {
    env!("CARGO_BIN_EXE_postern")
}

/// The fake Microsoft side: one Exchange Online and one identity platform
/// whose tokens it accepts, with an app registration unique to this test
/// (so tests running at once do not share keychain entries).
pub struct Upstream {
    pub exchange: FakeExchange,
    pub identity: FakeIdentity,
    pub client_id: String,
    pub dir: tempfile::TempDir,
    pub ca_file: PathBuf,
}

impl Upstream {
    pub async fn start() -> Upstream {
        Upstream::start_with(FakeExchangeOptions::default(), IdentityOptions::default()).await
    }

    pub async fn start_with(opts: FakeExchangeOptions, id_opts: IdentityOptions) -> Upstream {
        Upstream::start_client(opts, id_opts, Some(CLIENT_SECRET)).await
    }

    /// With a public client (no secret): the interactive and device-code flows.
    pub async fn start_public(id_opts: IdentityOptions) -> Upstream {
        Upstream::start_client(FakeExchangeOptions::default(), id_opts, None).await
    }

    pub async fn start_client(
        mut opts: FakeExchangeOptions,
        mut id_opts: IdentityOptions,
        secret: Option<&str>,
    ) -> Upstream {
        let client_id = format!("postern-test-{:016x}", rand_u64());
        id_opts.clients.push(ClientRegistration {
            client_id: client_id.clone(),
            client_secret: secret.map(str::to_string),
            user: MAILBOX.to_string(),
        });
        let identity = FakeIdentity::start(id_opts).await;
        if opts.token_validator.is_none() {
            opts.token_validator = Some(identity.validator());
        }
        let exchange = FakeExchange::start(opts).await;
        let dir = tempfile::tempdir().unwrap();
        let ca_file = exchange.write_ca_file(dir.path());
        Upstream {
            exchange,
            identity,
            client_id,
            dir,
            ca_file,
        }
    }

    /// Waits for `n` messages upstream and returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<postern_testkit::Received> {
        self.exchange.wait_for_messages(n, PATIENCE).await
    }
}

fn rand_u64() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.write_u32(std::process::id());
    h.finish()
}

/// A config for `postern serve` pointed at `up`, as a TOML table the test
/// may change before starting.
pub fn base_config(up: &Upstream, spool: &Path) -> toml::Table {
    let text = format!(
        r#"
[listener]
listen = ["127.0.0.1:0"]

[upstream]
host = "localhost"
port = {port}
mailbox = "{MAILBOX}"
ca_file = "{ca}"

[oauth]
authority = "{authority}"
tenant = "contoso.com"
client_id = "{client_id}"
flow = "client-credentials"

[delivery]
retry_first = "1s"
retry_max = "2s"
hold_recheck = "1h"

[spool]
dir = "{spool}"
"#,
        port = up.exchange.port(),
        ca = up.ca_file.display(),
        authority = up.identity.authority(),
        client_id = up.client_id,
        spool = spool.display(),
    );
    text.parse().unwrap()
}

/// Sets `section.key` in a config table.
pub fn set(config: &mut toml::Table, path: &str, value: impl Into<toml::Value>) {
    let (section, key) = path.split_once('.').expect("section.key");
    let table = config
        .entry(section)
        .or_insert_with(|| toml::Value::Table(Default::default()))
        .as_table_mut()
        .unwrap();
    table.insert(key.to_string(), value.into());
}

/// A running `postern serve`.
pub struct Postern {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    /// Where devices connect (plain SMTP; STARTTLS offered).
    pub smtp: SocketAddr,
    /// Implicit-TLS address, when configured.
    pub smtps: Option<SocketAddr>,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
}

impl Postern {
    /// Starts `postern serve` with the base config for `up`; the client
    /// secret is stored in the keychain first with `postern account set-secret`.
    pub async fn start(up: &Upstream) -> Postern {
        Postern::start_with(up, |_| {}).await
    }

    pub async fn start_with(up: &Upstream, change: impl FnOnce(&mut toml::Table)) -> Postern {
        let mut p = Postern::prepare(up, change);
        if p.config_text().contains("flow = \"client-credentials\"") {
            let out = p.cli_stdin(&["account", "set-secret"], CLIENT_SECRET);
            assert!(
                out.status.success(),
                "set-secret failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        p.spawn();
        p
    }

    /// A config and spool for `change`d settings, without starting `serve`
    /// (for `postern account login` before the first start).
    pub fn prepare(up: &Upstream, change: impl FnOnce(&mut toml::Table)) -> Postern {
        let dir = tempfile::tempdir().unwrap();
        let mut config = base_config(up, &dir.path().join("spool"));
        change(&mut config);
        let config_path = dir.path().join("postern.toml");
        std::fs::write(&config_path, toml::to_string(&config).unwrap()).unwrap();
        Postern {
            dir,
            config_path,
            smtp: "0.0.0.0:0".parse().unwrap(),
            smtps: None,
            child: None,
            log: Arc::new(Mutex::new(String::new())),
        }
    }

    /// Runs `postern serve` and waits until it listens.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut child = Command::new(postern_bin())
            .args(["--config", self.config_path.to_str().unwrap(), "serve"])
            .env("POSTERN_LOG", "info,postern_engine=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start postern serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log.lock().unwrap().push_str(&line);
                log.lock().unwrap().push('\n');
                let _ = tx.send(line);
            }
        });
        self.child = Some(child);
        self.smtps = None;
        let deadline = Instant::now() + PATIENCE;
        let mut plain = None;
        let want_tls = self.config_text().contains("tls_listen = [\"");
        while plain.is_none() || (want_tls && self.smtps.is_none()) {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(l) => l,
                Err(_) => panic!("postern serve did not start listening:\n{}", self.log()),
            };
            if let Some(rest) = line.split("listening for devices addr=").nth(1) {
                let addr: SocketAddr = rest.split_whitespace().next().unwrap().parse().unwrap();
                if line.contains("implicit_tls=true") {
                    self.smtps = Some(addr);
                } else {
                    plain = Some(addr);
                }
            }
        }
        self.smtp = plain.unwrap();
    }

    pub fn config_text(&self) -> String {
        std::fs::read_to_string(&self.config_path).unwrap()
    }

    /// Everything `serve` logged so far (all runs).
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The running `serve` process's id (for /proc measurements).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("not running").id()
    }

    pub fn spool_dir(&self) -> PathBuf {
        self.dir.path().join("spool")
    }

    /// SIGTERM, and wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("not running");
        // SAFETY: sending a signal to our own child process.
        unsafe { libc_kill(child.id() as i32, 15) };
        child.wait().unwrap()
    }

    /// kill -9: no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_stdin(args, "")
    }

    pub fn cli_stdin(&self, args: &[&str], stdin: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new(postern_bin())
            .args(["--config", self.config_path.to_str().unwrap()])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// `postern <args> --json`, parsed.
    pub fn cli_json(&self, args: &[&str]) -> Value {
        let mut all: Vec<&str> = args.to_vec();
        all.push("--json");
        let out = self.cli(&all);
        assert!(
            out.status.success(),
            "postern {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn queue(&self) -> Vec<Value> {
        self.cli_json(&["queue"]).as_array().unwrap().clone()
    }

    /// Polls the queue until `pred` holds for it (or panics with the queue
    /// and the log at the deadline). Returns the queue.
    pub fn wait_queue(&self, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let q = self.queue();
            if pred(&q) {
                return q;
            }
            if Instant::now() > deadline {
                panic!(
                    "queue never reached: {what}\nqueue: {}\nlog:\n{}",
                    serde_json::to_string_pretty(&q).unwrap(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every message in the queue is in `state`, and there are `n`.
    pub fn wait_all(&self, n: usize, state: &str) -> Vec<Value> {
        self.wait_queue(&format!("{n} messages {state}"), |q| {
            q.len() == n && q.iter().all(|m| m["state"] == state)
        })
    }
}

impl Drop for Postern {
    fn drop(&mut self) {
        self.kill9();
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// Runs a command (swaks, python3, curl) and returns its output.
pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e} (scripts/deps.sh test installs it)"))
}

/// Runs a Python 3 script (smtplib is in the standard library).
pub fn python(script: &str, args: &[&str]) -> Output {
    Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3")
}

pub fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The password test devices log in to Postern with.
pub const DEVICE_PW: &str = "device-pw-4Kq";

/// A config where 127.0.0.1 is not allowed: the device must log in as `user`.
pub fn devices_must_login(user: &str) -> impl FnOnce(&mut toml::Table) + '_ {
    move |cfg| {
        set(cfg, "listener.allow", vec!["10.0.0.0/8"]);
        set(cfg, "listener.users", vec![user]);
    }
}

/// Stores [`DEVICE_PW`] as device `user`'s password in the keychain.
pub fn store_device_password(p: &Postern, user: &str) {
    let out = p.cli_stdin(&["account", "set-secret", "--device", user], DEVICE_PW);
    assert!(out.status.success(), "{}", text(&out));
}
