//! A fake Exchange Online SMTP server, in-process on `127.0.0.1:0`.
//!
//! It speaks the conversation of docs/exchange-online.md §2 (banner, EHLO
//! list, STARTTLS, AUTH XOAUTH2/LOGIN/PLAIN, MAIL/RCPT/DATA, BDAT), records every
//! accepted message, counts connections, and lets a test inject faults at any
//! stage. One task accepts connections; one task per connection runs a
//! session (`session/`). Dropping the last [`FakeExchange`] clone stops
//! all of them.
//!
//! Choices where the guide is silent (all replies are Exchange-style):
//! - AUTH before STARTTLS (when TLS is required for AUTH), AUTH in the
//!   connector or Direct Send role, or an unknown mechanism:
//!   `504 5.7.4 Unrecognized authentication type`.
//! - Connector role, MAIL before STARTTLS:
//!   `530 5.7.0 Must issue a STARTTLS command first`.
//! - Direct Send role, RCPT outside `internal_domains`:
//!   `550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain`
//!   (what the tenant MX answers for a non-accepted domain). An empty
//!   `internal_domains` means every domain is internal.
//! - A [`Fault::Reply`] at [`Stage::Connect`] is sent in place of the
//!   banner; if it is not 2xx the connection is then closed.
//! - [`Fault::DropConnection`] at [`Stage::DataEnd`] closes after the whole
//!   content arrived and before the reply; the message is not recorded.
//! - More than [`MAX_RECIPIENTS`] recipients: `452 4.5.3 Too many recipients`.
//! - The per-minute and per-window submission limits are off by default
//!   (`limits`): when set, overruns of the minute are counted, not refused,
//!   and a spent recipient budget is refused with [`QUOTA_REPLY`] at the end
//!   of the content, after the fault, size and bare-LF checks.

mod auth;
mod data;
mod limits;
mod session;
pub(crate) mod tls;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use crate::identity::TokenValidator;
pub use limits::{max_in_window, MINUTE, QUOTA_REPLY};

/// Recipients accepted per message before `452 4.5.3` (Microsoft's service
/// description, docs/exchange-online.md §2).
pub const MAX_RECIPIENTS: usize = 500;

/// Default per-mailbox limit of concurrent authenticated sessions (§1).
pub const DEFAULT_MAX_CONNECTIONS: usize = 3;

/// A mailbox's default MaxSendSize in bytes (35 MiB, §2).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 36_700_160;

/// Which way into Exchange Online the fake plays (docs/exchange-online.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// smtp.office365.com:587: STARTTLS then AUTH, then mail.
    #[default]
    Submission,
    /// Tenant MX with a certificate/IP connector: STARTTLS required, no AUTH.
    Connector,
    /// Tenant MX, no AUTH, TLS optional, internal recipients only.
    DirectSend,
}

/// How the fake behaves. Build with `..Default::default()`.
#[derive(Clone)]
pub struct FakeExchangeOptions {
    /// Which front door to imitate.
    pub role: Role,
    /// AUTH only advertised and accepted after STARTTLS (the real service).
    pub require_tls_for_auth: bool,
    /// `(user, password)` accepted by AUTH LOGIN/PLAIN. `None`: basic auth
    /// refused with `535 5.7.139 ... basic authentication is disabled.`
    pub accept_password: Option<(String, String)>,
    /// Checks XOAUTH2 bearer tokens. `None`: any non-empty token for any user.
    pub token_validator: Option<TokenValidator>,
    /// Concurrent authenticated sessions per mailbox; the next one gets
    /// `432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded` at MAIL.
    pub max_connections: usize,
    /// Name in the banner and EHLO reply; the certificate is for this name
    /// and for 127.0.0.1.
    pub hostname: String,
    /// Larger messages get `552 5.3.4 Message size exceeds fixed maximum message size`.
    pub max_message_bytes: usize,
    /// Connector role: MAIL is refused with `550 5.7.64 TenantAttribution;
    /// Relay Access Denied` unless the client certificate's CN or a SAN DNS
    /// name equals this (ASCII case-insensitive).
    pub required_client_cert_name: Option<String>,
    /// Direct Send role: recipient domains accepted (empty = all).
    pub internal_domains: Vec<String>,
    /// Messages per rolling minute (Exchange: 30). Like Exchange, overruns
    /// are accepted; each is counted in [`Stats::over_limit_submissions`].
    /// `None`: not counted.
    pub messages_per_minute: Option<u32>,
    /// `(recipients, window)`: the mailbox's recipient budget per rolling
    /// window (Exchange: 10,000 per 24 h). A message whose accepted
    /// recipients would exceed it gets [`QUOTA_REPLY`] at the end of its
    /// content and is not recorded. `None`: no budget.
    pub recipients_per_window: Option<(u32, Duration)>,
}

impl Default for FakeExchangeOptions {
    fn default() -> Self {
        FakeExchangeOptions {
            role: Role::Submission,
            require_tls_for_auth: true,
            accept_password: None,
            token_validator: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            hostname: "localhost".to_string(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            required_client_cert_name: None,
            internal_domains: Vec::new(),
            messages_per_minute: None,
            recipients_per_window: None,
        }
    }
}

impl fmt::Debug for FakeExchangeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeExchangeOptions")
            .field("role", &self.role)
            .field("require_tls_for_auth", &self.require_tls_for_auth)
            .field(
                "accept_password",
                &self
                    .accept_password
                    .as_ref()
                    .map(|(u, _)| (u, "<redacted>")),
            )
            .field("token_validator", &self.token_validator)
            .field("max_connections", &self.max_connections)
            .field("hostname", &self.hostname)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("required_client_cert_name", &self.required_client_cert_name)
            .field("internal_domains", &self.internal_domains)
            .field("messages_per_minute", &self.messages_per_minute)
            .field("recipients_per_window", &self.recipients_per_window)
            .finish()
    }
}

/// One message the fake accepted (after DATA's or the last BDAT's 250).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub mail_from: String,
    /// Only the recipients that were accepted.
    pub rcpt_to: Vec<String>,
    /// Content as received, dot-unstuffed, without the final `.\r\n`.
    pub data: Vec<u8>,
    pub auth_user: Option<String>,
    /// e.g. `"XOAUTH2"`, `"LOGIN"`, `"PLAIN"`.
    pub auth_mechanism: Option<String>,
    pub tls: bool,
    /// e.g. `"TLSv1_3"`.
    pub tls_version: Option<String>,
    /// Which TCP connection carried it (1 for the first connection).
    pub connection_id: u64,
    /// CN and SAN DNS names of the client certificate, if one was presented.
    pub client_cert_names: Vec<String>,
}

/// Counters since start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// TCP connections accepted.
    pub connections: u64,
    /// Most TCP connections open at once.
    pub max_concurrent: usize,
    pub auth_successes: u64,
    pub auth_failures: u64,
    /// `432 4.3.2` replies sent.
    pub throttle_replies: u64,
    /// Messages accepted.
    pub messages: u64,
    /// Accepted messages that made more than `messages_per_minute` accepted
    /// in the rolling minute ending at them.
    pub over_limit_submissions: u64,
    /// [`QUOTA_REPLY`] replies sent (recipient budget spent).
    pub quota_replies: u64,
}

/// Points in the conversation a [`Fault`] can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The banner.
    Connect,
    /// EHLO or HELO.
    Ehlo,
    StartTls,
    /// The AUTH command: a reply fault answers it at once, before any
    /// challenge, and counts as an authentication failure.
    Auth,
    MailFrom,
    RcptTo,
    /// The DATA command (the 354); for [`Fault::DropConnection`], part-way
    /// through the content. Not applied to BDAT.
    Data,
    /// The end of the content (the reply after `.` or after BDAT LAST).
    DataEnd,
}

/// Something to go wrong. Queued faults ([`FakeExchange::push_fault`]) are
/// used once each, the first matching one when its stage is reached; the
/// sticky fault applies every time until cleared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer `stage` with `reply` (a full line without CRLF, e.g.
    /// `"451 4.7.500 Server busy. Please try again later"`).
    Reply { stage: Stage, reply: String },
    /// Answer RCPT TO for this address (case-insensitive) with `reply`.
    RcptReply { rcpt: String, reply: String },
    /// Close the TCP connection abruptly when `stage` is reached.
    DropConnection { stage: Stage },
    /// Present a certificate for `wrong.example` on the next STARTTLS.
    BadTlsCertificate,
    /// Do not advertise STARTTLS, and refuse it with `502 5.5.1`.
    NoStartTls,
}

impl Fault {
    /// Whether this fault applies at `stage` (for RCPT, to `rcpt`).
    fn matches(&self, stage: Stage, rcpt: Option<&str>) -> bool {
        match self {
            Fault::Reply { stage: s, .. } | Fault::DropConnection { stage: s } => *s == stage,
            Fault::RcptReply { rcpt: r, .. } => {
                stage == Stage::RcptTo && rcpt.is_some_and(|a| a.eq_ignore_ascii_case(r))
            }
            Fault::BadTlsCertificate => stage == Stage::StartTls,
            Fault::NoStartTls => matches!(stage, Stage::Ehlo | Stage::StartTls),
        }
    }
}

/// Mutable state shared by the handle and all connection tasks.
#[derive(Default)]
struct State {
    messages: Vec<Received>,
    faults: VecDeque<Fault>,
    sticky: Option<Fault>,
    stats: Stats,
    open_connections: usize,
    /// Authenticated sessions holding a slot, per mailbox (lowercased).
    auth_slots: HashMap<String, usize>,
    /// Transcript per connection, index = connection_id - 1.
    transcripts: Vec<String>,
    /// Accepted submissions, for the rate and recipient limits.
    ledger: limits::Ledger,
}

/// What every task shares. The handle's [`Shutdown`] guard closes
/// `shutdown`; the accept loop and every session wait on it.
struct Shared {
    opts: FakeExchangeOptions,
    tls: tls::TlsMaterial,
    state: Mutex<State>,
    /// Number of accepted messages; `wait_for_messages` waits on it, the
    /// session that records a message sends.
    count: watch::Sender<usize>,
    /// Flipped to `true` when the last handle is dropped.
    shutdown: watch::Sender<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fault to apply at `stage`, if any: a queued one (removed) first,
    /// else the sticky one.
    fn take_fault(&self, stage: Stage, rcpt: Option<&str>) -> Option<Fault> {
        let mut st = self.lock();
        if let Some(i) = st.faults.iter().position(|f| f.matches(stage, rcpt)) {
            return st.faults.remove(i);
        }
        st.sticky.clone().filter(|f| f.matches(stage, rcpt))
    }

    /// Records an accepted message, unless the recipient budget is spent:
    /// then counts a quota reply and returns `false` (the caller answers
    /// [`QUOTA_REPLY`]). Checking and recording happen under one lock, so
    /// sessions at once cannot both take the last of the budget.
    fn record(&self, msg: Received) -> bool {
        let now = Instant::now();
        let recipients = u32::try_from(msg.rcpt_to.len()).unwrap_or(u32::MAX);
        let n = {
            let mut st = self.lock();
            if let Some(budget) = self.opts.recipients_per_window {
                if st.ledger.over_quota(now, recipients, budget) {
                    st.stats.quota_replies += 1;
                    return false;
                }
            }
            if st
                .ledger
                .accept(now, recipients, self.opts.messages_per_minute)
            {
                st.stats.over_limit_submissions += 1;
            }
            st.messages.push(msg);
            st.stats.messages += 1;
            st.messages.len()
        };
        self.count.send_replace(n);
        true
    }

    fn transcript(&self, connection_id: u64, line: &str) {
        let mut st = self.lock();
        if let Some(t) = st.transcripts.get_mut(connection_id as usize - 1) {
            t.push_str(line);
            t.push('\n');
        }
    }

    /// Takes one of the mailbox's concurrent-session slots, if free.
    fn try_slot(self: &Arc<Self>, user: &str) -> Option<SlotGuard> {
        let key = user.to_ascii_lowercase();
        let mut st = self.lock();
        let used = st.auth_slots.entry(key.clone()).or_default();
        if *used >= self.opts.max_connections {
            return None;
        }
        *used += 1;
        Some(SlotGuard {
            shared: self.clone(),
            user: key,
        })
    }
}

/// A held concurrent-session slot; released on drop (end of the session).
struct SlotGuard {
    shared: Arc<Shared>,
    user: String,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if let Some(n) = self.shared.lock().auth_slots.get_mut(&self.user) {
            *n = n.saturating_sub(1);
        }
    }
}

/// Closes the shutdown channel when the last handle goes.
struct Shutdown(Arc<Shared>);

impl Drop for Shutdown {
    fn drop(&mut self) {
        self.0.shutdown.send_replace(true);
    }
}

/// Handle to a running fake. Clones share the server; it stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct FakeExchange {
    shared: Arc<Shared>,
    addr: SocketAddr,
    _shutdown: Arc<Shutdown>,
}

impl fmt::Debug for FakeExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeExchange")
            .field("addr", &self.addr)
            .field("opts", &self.shared.opts)
            .finish()
    }
}

impl FakeExchange {
    /// Binds `127.0.0.1:0`, makes the certificates and starts serving.
    pub async fn start(opts: FakeExchangeOptions) -> FakeExchange {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let tls = tls::TlsMaterial::generate(&opts.hostname, opts.role == Role::Connector);
        let shared = Arc::new(Shared {
            opts,
            tls,
            state: Mutex::new(State::default()),
            count: watch::channel(0).0,
            shutdown: watch::channel(false).0,
        });
        tokio::spawn(accept_loop(shared.clone(), listener));
        FakeExchange {
            _shutdown: Arc::new(Shutdown(shared.clone())),
            shared,
            addr,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// PEM of the CA that signed the server certificate: trust this.
    pub fn ca_pem(&self) -> &str {
        &self.shared.tls.ca_pem
    }

    /// Writes [`ca_pem`](Self::ca_pem) to `dir/ca.pem` and returns the path.
    pub fn write_ca_file(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, self.ca_pem())
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Every message accepted so far, in order.
    pub fn messages(&self) -> Vec<Received> {
        self.shared.lock().messages.clone()
    }

    /// Waits until at least `n` messages were accepted and returns them all.
    /// Panics on timeout, listing what did arrive and the transcripts.
    pub async fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let mut rx = self.shared.count.subscribe();
        let waited = tokio::time::timeout(timeout, rx.wait_for(|&count| count >= n)).await;
        if waited.is_err() {
            let got = self.messages();
            let summary: Vec<String> = got
                .iter()
                .map(|m| {
                    format!(
                        "  from <{}> to {:?}, {} bytes, connection {}",
                        m.mail_from,
                        m.rcpt_to,
                        m.data.len(),
                        m.connection_id
                    )
                })
                .collect();
            panic!(
                "FakeExchange: waited {timeout:?} for {n} message(s), got {}:\n{}\ntranscripts:\n{}",
                got.len(),
                summary.join("\n"),
                self.transcripts().join("\n---\n")
            );
        }
        self.messages()
    }

    /// Queues a one-shot fault.
    pub fn push_fault(&self, fault: Fault) {
        self.shared.lock().faults.push_back(fault);
    }

    /// Sets (or clears with `None`) the fault applied at every matching stage.
    pub fn set_sticky_fault(&self, fault: Option<Fault>) {
        self.shared.lock().sticky = fault;
    }

    pub fn stats(&self) -> Stats {
        self.shared.lock().stats
    }

    /// When each accepted message was accepted (its 250 at the end of the
    /// content), oldest first, one per [`messages`](Self::messages) entry.
    /// [`max_in_window`]`(&times, MINUTE)` is the busiest rolling minute.
    pub fn submission_times(&self) -> Vec<Instant> {
        self.shared.lock().ledger.times()
    }

    /// [`submission_times`](Self::submission_times) on the wall clock (for
    /// reports outside the test process).
    pub fn submission_wall_times(&self) -> Vec<SystemTime> {
        self.shared.lock().ledger.wall_times()
    }

    /// Per connection, `C:`/`S:` lines of what was said (AUTH data redacted).
    pub fn transcripts(&self) -> Vec<String> {
        self.shared.lock().transcripts.clone()
    }
}

/// Accepts connections until shutdown, then waits for every session.
async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|&down| down) => break,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let id = {
                    let mut st = shared.lock();
                    st.stats.connections += 1;
                    st.open_connections += 1;
                    st.stats.max_concurrent = st.stats.max_concurrent.max(st.open_connections);
                    st.transcripts.push(String::new());
                    st.stats.connections
                };
                let shared = shared.clone();
                sessions.spawn(async move {
                    let mut down = shared.shutdown.subscribe();
                    tokio::select! {
                        _ = down.wait_for(|&d| d) => {}
                        () = session::run(shared.clone(), stream, peer, id) => {}
                    }
                    shared.lock().open_connections -= 1;
                });
            }
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
    while sessions.join_next().await.is_some() {}
}
