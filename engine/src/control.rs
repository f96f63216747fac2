//! The local control surface: what `postern queue`, `postern status` and the
//! GUI ask of the engine. One handler (`Controller::handle`) answers every
//! request; while an engine runs it is reached over a channel only the user
//! running Postern can use (a Unix socket in the spool directory, mode 0600;
//! a named pipe on Windows: `transport`), and called directly on the spool
//! when none does.
//!
//! The protocol is one JSON request per line, one JSON response per line,
//! the same over every transport.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::auth::{AccountState, TokenSource};
use crate::config::{Config, UpstreamAuth, UpstreamMode};
use crate::delivery::send_as;
use crate::delivery::worker::{Attention, WorkerState};
use crate::graph::recovery::drafts_of_deleted;
use crate::spool::{MessageId, MessageInfo, Spool, State};
use crate::throttle::{Throttle, ThrottleStatus};
use crate::tracker::{TrackingHandle, TrackingStatus};

mod send_test;
mod transport;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    Status,
    Queue,
    Show {
        id: MessageId,
    },
    Retry {
        id: MessageId,
    },
    RetryAll,
    Delete {
        id: MessageId,
    },
    Pause,
    Resume,
    /// Try a failed message again, sent as the mailbox (sender rewriting).
    ResendRewritten {
        id: MessageId,
    },
    /// Messages and recipients submitted per hour over the recipient window.
    ThrottleHistory,
    /// Credentials changed (signed in, new secret): forget the cached token
    /// and try held messages again now.
    Recheck,
    /// Queue a test message from `from` to `to` (`postern send-test`, the
    /// window's "Send a test"), through the spool like any device's mail;
    /// answers `{id}`. Both addresses are checked first.
    SendTest {
        from: String,
        to: String,
    },
    /// What the access token grants (`roles` / `scp`) and what the mode
    /// still needs (`auth::permissions::Permissions`); never the token. The
    /// engine's cached token, fetched first when it holds none.
    Permissions,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    fn ok(data: Value) -> Response {
        Response {
            ok: true,
            data: Some(data),
            error: None,
        }
    }
    fn err(e: impl ToString) -> Response {
        Response {
            ok: false,
            data: None,
            error: Some(e.to_string()),
        }
    }
}

/// The answer to `Request::Status` (`postern status --json`, the GUI's
/// `get_status` and `status-changed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct Status {
    /// An engine runs (false: the CLI answered from the spool, or the tray
    /// app's engine could not start; `attention` then says why).
    pub running: bool,
    pub paused: bool,
    pub queue: QueueCounts,
    pub attention: Option<Attention>,
    /// Open connections to Microsoft.
    pub connections: usize,
    pub throttle: Option<ThrottleStatus>,
    /// Following sent messages in Microsoft's message trace.
    pub tracking: Option<TrackingStatus>,
    pub account: AccountState,
    pub upstream: UpstreamBrief,
    pub listening: Vec<SocketAddr>,
    pub spool: PathBuf,
}

/// How many messages are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct QueueCounts {
    pub queued: usize,
    pub sending: usize,
    pub deferred: usize,
    pub held: usize,
    pub sent: usize,
    pub failed: usize,
    /// Sent messages the message trace says bounced afterwards for at
    /// least one recipient.
    #[serde(default)]
    pub bounced: usize,
}

/// Where mail goes, with the mode's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct UpstreamBrief {
    pub mode: UpstreamMode,
    pub host: String,
    pub port: u16,
    pub mailbox: String,
    pub auth: UpstreamAuth,
}

impl UpstreamBrief {
    pub fn of(config: &Config) -> UpstreamBrief {
        let u = &config.upstream;
        UpstreamBrief {
            mode: u.mode,
            host: u.effective_host().to_string(),
            port: u.effective_port(),
            mailbox: u.mailbox.clone(),
            auth: u.auth,
        }
    }
}

impl Status {
    /// The status of an engine that is not running, with `reason` (plain
    /// language) as what needs attention.
    pub fn stopped(config: &Config, reason: &str) -> Status {
        Status {
            running: false,
            paused: false,
            queue: QueueCounts::default(),
            attention: Some(Attention {
                summary: reason.to_string(),
                fix: "Check the settings, then save them to start again.".into(),
                cause: String::new(),
                recheck_at: 0,
            }),
            connections: 0,
            throttle: None,
            tracking: None,
            account: AccountState::NotConfigured {
                reason: "Postern's relay is not running.".into(),
            },
            upstream: UpstreamBrief::of(config),
            listening: Vec::new(),
            spool: config.spool_dir(),
        }
    }
}

/// The answer to `Request::Show`: the message and its delivery transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct MessageDetail {
    #[serde(flatten)]
    pub info: MessageInfo,
    /// What was said with Microsoft, secrets redacted; empty before the
    /// first attempt.
    pub transcript: String,
}

/// One hour of the throttle history (`Request::ThrottleHistory`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct HistoryPoint {
    /// Unix ms of the hour's start.
    pub at: u64,
    pub messages: u32,
    pub recipients: u64,
}

/// Everything a request may need. `worker` and `throttle` are absent when
/// no engine runs (the CLI working on the spool directly).
pub struct Controller {
    pub config: Arc<Config>,
    pub spool: Spool,
    pub tokens: TokenSource,
    pub worker: Option<Arc<WorkerState>>,
    pub throttle: Option<Arc<Throttle>>,
    /// The tracker's state (None: no engine running here).
    pub tracking: Option<TrackingHandle>,
    pub listening: Vec<SocketAddr>,
}

impl Controller {
    /// Deletes a message; a Graph draft of it in the mailbox goes too (or
    /// the answer says which Drafts folder to clean).
    async fn delete(&self, id: MessageId) -> Response {
        // The mailbox its draft is in, found before the files go.
        let draft = match self.spool.get(&id) {
            Some(m) if m.status.graph_draft.is_some() || m.status.graph_draft_creating => {
                let u = &self.config.upstream;
                Some(
                    send_as::resolve_stored(u, &self.spool, &id, &m.from)
                        .await
                        .mailbox,
                )
            }
            _ => None,
        };
        if let Err(e) = self.spool.delete(&id).await {
            return Response::err(e);
        }
        let Some(mailbox) = draft else {
            return Response::ok(json!({ "deleted": id }));
        };
        match drafts_of_deleted(&self.config, &self.tokens, &mailbox, &id).await {
            Ok(n) => Response::ok(json!({ "deleted": id, "drafts_deleted": n })),
            Err(note) => {
                tracing::warn!(%id, "deleted from the queue, but {note}");
                Response::ok(json!({ "deleted": id, "draft_left": note }))
            }
        }
    }

    pub async fn handle(&self, req: Request) -> Response {
        match req {
            Request::Status => Response::ok(json!(self.status().await)),
            Request::Queue => Response::ok(json!(self.spool.list())),
            Request::Show { id } => match self.spool.get(&id) {
                Some(info) => {
                    let transcript = self.spool.transcript(&id).await;
                    Response::ok(json!(MessageDetail { info, transcript }))
                }
                None => Response::err(format!("no message {id} in the queue")),
            },
            Request::Retry { id } => match self.spool.retry(&id).await {
                Ok(()) => {
                    self.recheck();
                    Response::ok(json!({ "retried": 1 }))
                }
                Err(e) => Response::err(e),
            },
            Request::RetryAll => match self.spool.retry_all().await {
                Ok(n) => {
                    self.recheck();
                    Response::ok(json!({ "retried": n }))
                }
                Err(e) => Response::err(e),
            },
            Request::Delete { id } => self.delete(id).await,
            Request::ResendRewritten { id } => match self.spool.resend_rewritten(&id).await {
                Ok(()) => {
                    self.recheck();
                    Response::ok(json!({ "retried": 1 }))
                }
                Err(e) => Response::err(e),
            },
            Request::ThrottleHistory => {
                let hour = std::time::Duration::from_secs(3600);
                let buckets = self
                    .throttle
                    .as_ref()
                    .map(|t| t.history(hour))
                    .unwrap_or_default();
                Response::ok(json!(buckets
                    .iter()
                    .map(|&(at, messages, recipients)| HistoryPoint {
                        at,
                        messages,
                        recipients,
                    })
                    .collect::<Vec<_>>()))
            }
            Request::Recheck => {
                self.tokens.forget().await;
                match self.spool.release_held().await {
                    Ok(n) => {
                        self.recheck();
                        Response::ok(json!({ "released": n }))
                    }
                    Err(e) => Response::err(e),
                }
            }
            Request::SendTest { from, to } => match self.send_test(&from, &to).await {
                Ok(id) => Response::ok(json!({ "id": id })),
                Err(e) => Response::err(e),
            },
            Request::Permissions => {
                match crate::auth::permissions::current(&self.config, &self.tokens).await {
                    Ok(p) => Response::ok(json!(p)),
                    Err(e) => Response::err(e),
                }
            }
            Request::Pause | Request::Resume => match &self.worker {
                Some(w) => {
                    w.set_paused(req == Request::Pause);
                    Response::ok(json!({ "paused": w.is_paused() }))
                }
                None => Response::err("Postern is not running"),
            },
        }
    }

    fn recheck(&self) {
        if let Some(w) = &self.worker {
            w.recheck_now();
        }
        self.spool.wake();
    }

    /// The submissions still to make, in the order the worker makes them:
    /// every waiting message's pending recipients, split as they will be
    /// sent. Held messages wait for the admin, not the limits: not counted.
    fn demand(&self) -> Vec<u32> {
        let per = self.config.upstream.max_recipients.max(1);
        let mut demand = Vec::new();
        for m in self.spool.list() {
            if matches!(m.status.state, State::Queued | State::Deferred) {
                let pending = m.status.pending().len();
                let mut left = pending;
                while left > 0 {
                    let n = left.min(per);
                    demand.push(n as u32);
                    left -= n;
                }
            }
        }
        demand
    }

    pub async fn status(&self) -> Status {
        let account = self.tokens.check_stored().await;
        let counts = self.spool.counts();
        let count = |s: State| counts.get(&s).copied().unwrap_or(0);
        Status {
            running: self.worker.is_some(),
            paused: self.worker.as_ref().map(|w| w.is_paused()).unwrap_or(false),
            queue: QueueCounts {
                queued: count(State::Queued),
                sending: count(State::Sending),
                deferred: count(State::Deferred),
                held: count(State::Held),
                sent: count(State::Sent),
                failed: count(State::Failed),
                bounced: self.spool.bounced_after_sending(),
            },
            attention: self.worker.as_ref().and_then(|w| w.attention()),
            connections: self
                .worker
                .as_ref()
                .map(|w| w.active_connections())
                .unwrap_or(0),
            throttle: self.throttle.as_ref().map(|t| t.status(&self.demand())),
            tracking: self.tracking.as_ref().map(|t| t.status()),
            account,
            upstream: UpstreamBrief::of(&self.config),
            listening: self.listening.clone(),
            spool: self.spool.dir().to_path_buf(),
        }
    }
}

pub use transport::{bind, socket_path, unbind, Socket};

/// Answers the clients of `socket` until `shutdown`. The transport (a Unix
/// socket, a Windows named pipe) only accepts; everything else is shared.
pub async fn serve(
    mut socket: Socket,
    controller: Arc<Controller>,
    mut shutdown: watch::Receiver<bool>,
) {
    // One task per client; finished ones are reaped as they end, the rest
    // are aborted at shutdown.
    let mut clients = tokio::task::JoinSet::new();
    loop {
        let stream = tokio::select! {
            _ = shutdown.changed() => break,
            Some(_) = clients.join_next(), if !clients.is_empty() => continue,
            accepted = socket.accept() => match accepted {
                Ok(s) => s,
                Err(e) => { tracing::warn!(error = %e, "control socket accept failed"); continue; }
            },
        };
        clients.spawn(serve_client(stream, controller.clone()));
    }
    clients.abort_all();
    // Every client's end is closed when this returns: a restarted engine
    // (the tray's, in the same process) then creates its pipe afresh.
    while clients.join_next().await.is_some() {}
}

/// One client: a request line in, a response line out, until it hangs up.
async fn serve_client<S>(stream: S, c: Arc<Controller>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    use tokio::io::{AsyncWriteExt, BufReader};
    let (read, mut write) = tokio::io::split(stream);
    let mut read = BufReader::new(read);
    loop {
        let line = match read_request(&mut read).await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                let mut out = serde_json::to_vec(&Response::err(e)).expect("response serialises");
                out.push(b'\n');
                let _ = write.write_all(&out).await;
                break;
            }
        };
        let resp = match serde_json::from_str::<Request>(&line) {
            Ok(req) => c.handle(req).await,
            Err(e) => Response::err(format!("bad request: {e}")),
        };
        let mut out = serde_json::to_vec(&resp).expect("response serialises");
        out.push(b'\n');
        if write.write_all(&out).await.is_err() {
            break;
        }
    }
}

/// A request line is at most this long (the largest request is a few
/// hundred bytes; a client sending more is cut off, not buffered).
pub const MAX_REQUEST_LINE: u64 = 64 * 1024;

/// One request line; None at the end of the stream; an error past
/// [`MAX_REQUEST_LINE`] bytes without a line break.
async fn read_request<R: tokio::io::AsyncBufRead + Unpin>(
    read: &mut R,
) -> Result<Option<String>, String> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let mut buf = Vec::new();
    let n = read
        .take(MAX_REQUEST_LINE + 1)
        .read_until(b'\n', &mut buf)
        .await
        .map_err(|e| e.to_string())?;
    if n == 0 {
        return Ok(None);
    }
    if !buf.ends_with(b"\n") && n as u64 > MAX_REQUEST_LINE {
        return Err(format!("request longer than {MAX_REQUEST_LINE} bytes"));
    }
    String::from_utf8(buf)
        .map(|s| Some(s.trim_end().to_string()))
        .map_err(|_| "request is not UTF-8".to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No engine is running on this spool (the CLI then works offline).
    #[error("Postern is not running")]
    NotRunning,
    #[error("control socket: {0}")]
    Io(#[from] std::io::Error),
}

/// Sends one request to a running engine.
pub async fn request(spool_dir: &Path, req: &Request) -> Result<Response, ClientError> {
    exchange(transport::connect(spool_dir).await?, req).await
}

/// One request and its response over a connected stream.
async fn exchange<S>(stream: S, req: &Request) -> Result<Response, ClientError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let (read, mut write) = tokio::io::split(stream);
    let mut line = serde_json::to_vec(req).expect("request serialises");
    line.push(b'\n');
    write.write_all(&line).await?;
    let mut lines = BufReader::new(read).lines();
    match lines.next_line().await? {
        Some(l) => serde_json::from_str(&l)
            .map_err(|e| ClientError::Io(std::io::Error::other(e.to_string()))),
        None => Err(ClientError::NotRunning),
    }
}

#[cfg(test)]
mod tests;
