//! A fake Microsoft Graph (the mail part and the message trace,
//! ../shared/MICROSOFT-GRAPH.md §1–§4), served over plain HTTP on
//! `127.0.0.1:0` with axum, for testing Postern's Graph delivery and what
//! it learns afterwards of each message.
//!
//! Endpoints, under `/v1.0` (Bearer token checked with
//! [`crate::FakeIdentity::inspector`]: known, unexpired, `aud` =
//! `https://graph.microsoft.com`, this fake's own [`FakeGraph::endpoint`]
//! or one added with [`FakeGraph::add_endpoint`], else `401
//! InvalidAuthenticationToken`; permission missing from `roles` / `scp` →
//! `403 ErrorAccessDenied`):
//! - `GET /users/{id}` (any valid Graph token; real Graph wants
//!   `User.Read.All` here) → `{id, mail, userPrincipalName, displayName}`,
//!   unknown → `404 Request_ResourceNotFound` (what Graph answers for a
//!   directory lookup). `{id}` is the address (case-insensitive) or the id.
//! - `GET /users/{id}/mailFolders/{name}` (`Mail.ReadWrite`; real Graph
//!   also takes `Mail.ReadBasic` / `Mail.Read`, which Postern never asks
//!   for): a well-known folder (`drafts`, `inbox`, `sentitems`,
//!   `deleteditems`, `outbox`) → `{id, displayName, …}`, only the fields
//!   named by `$select` when given; another name → `404 ErrorItemNotFound`.
//!   `postern diagnose` reads the Drafts folder to learn, without sending,
//!   that the mailbox exists, is licensed and in the app's scope.
//! - `POST /users/{id}/sendMail` (`Mail.Send`): `text/plain` = base64 MIME,
//!   or JSON `{message, saveToSentItems}` → `202`, empty body.
//! - Drafts (`Mail.ReadWrite`): `POST /users/{id}/messages` → `201`,
//!   `GET`/`DELETE /users/{id}/messages/{mid}`, `POST .../attachments`
//!   (fileAttachment), `POST .../attachments/createUploadSession`;
//!   `POST .../send` (`Mail.Send`) → `202`.
//! - Upload sessions: `PUT`/`GET`/`DELETE` on the `uploadUrl`
//!   (`/upload/{opaque}` on this fake's address — Graph's is an
//!   `outlook.office.com` URL), pre-authenticated: an `Authorization`
//!   header there → `401`.
//! - Message trace ([`TRACE_ROLE`]): `GET /admin/exchange/tracing/messageTraces`
//!   and `.../{id}/getDetailsByRecipient(recipientAddress='x')`, a row per
//!   recipient of each delivery or [`FakeGraph::record_trace`], outcomes
//!   scripted with [`FakeGraph::set_trace_outcome`] (see `trace_routes`).
//!
//! Mail endpoints on an unknown mailbox → `404 ErrorInvalidUser`; unlicensed
//! ([`GraphMailbox::licensed`]) → `404 MailboxNotEnabledForRESTAPI`;
//! outside [`GraphOptions::rbac_scope`] → `403 ErrorAccessDenied` ("Access
//! to OData is disabled."); a delegated token for another mailbox → `403
//! ErrorAccessDenied`. From (MIME header, JSON `from`) not the URL's mailbox
//! nor in its [`GraphMailbox::send_as`] → `403 ErrorSendAsDenied` (checked at
//! `sendMail` and at draft `send`).
//!
//! Limits (MiB, i.e. `* 1024 * 1024`): a request body over 4 MiB → `413
//! ErrorMessageSizeExceeded` "The maximum request length supported is 4MB";
//! a fileAttachment over 3 MiB (decoded) → `413 ErrorMessageSizeExceeded`; an
//! upload range over 4 MiB → `413 ErrorRequestEntityTooLarge` (our choice;
//! the docs only say "up to 4 MB"); a range not starting at the next expected
//! offset, or whose length or total disagrees with `Content-Range` → `416
//! ErrorInvalidRange` with `nextExpectedRanges` unchanged.
//!
//! **Recipients come from the MIME To/Cc/Bcc headers (or the JSON
//! recipients) and nothing else**, as with Graph; what is recorded is what
//! Graph would deliver to ([`GraphMessage`]), and the copy recipients see
//! has no Bcc header ([`GraphMessage::visible`]).
//!
//! An interrupted upload range (connection dropped mid-body, or the fault
//! [`GraphFault::DropUpload`]) keeps nothing of that range:
//! `nextExpectedRanges` stays at the range's start, as the Outlook service
//! answers after a failed fragment.
//!
//! Deliberate differences: no `/me`; no expiry of upload sessions (the
//! `expirationDateTime` is informative); no throttling of its own (faults
//! model 429/503) — [`FakeGraph::max_concurrency`] records how many requests
//! per mailbox were in flight at once (Graph allows 4); no mailbox daily
//! limit; `GET /users` needs no `User.Read.All`; Graph's rebuilt MIME for
//! the JSON/draft routes is not produced (the parts are recorded instead).
//! Trace: rows appear after list requests ([`TraceOptions`]), not minutes;
//! only a few `$filter` forms; JSON/draft rows' `size` is an estimate.

mod drafts;
mod mime;
mod routes;
mod trace;
mod trace_filter;
mod trace_routes;
mod upload;
mod users;

pub use trace::{TraceOptions, TraceOutcome, TraceRow, MAX_TRACE_PAGE, MAX_TRACE_WINDOW};
pub use trace_routes::TRACE_ROLE;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use crate::identity::{FakeIdentity, TokenInspector};

/// Graph's request-body limit (4 MiB).
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// The largest attachment `POST .../attachments` takes (3 MiB, decoded).
pub const MAX_INLINE_ATTACHMENT_BYTES: usize = 3 * 1024 * 1024;
/// The largest upload range (4 MiB).
pub const MAX_UPLOAD_RANGE_BYTES: usize = 4 * 1024 * 1024;

/// A mailbox the fake knows.
#[derive(Debug, Clone)]
pub struct GraphMailbox {
    pub address: String,
    pub display_name: String,
    /// `false`: mail endpoints answer `MailboxNotEnabledForRESTAPI`.
    pub licensed: bool,
    /// Addresses this mailbox holds a Send As grant for.
    pub send_as: Vec<String>,
}

impl GraphMailbox {
    /// A licensed mailbox with no Send As grants.
    pub fn new(address: &str) -> GraphMailbox {
        GraphMailbox {
            address: address.to_string(),
            display_name: address.split('@').next().unwrap_or(address).to_string(),
            licensed: true,
            send_as: Vec::new(),
        }
    }

    /// The stable object id (a GUID-shaped hash of the address).
    pub fn id(&self) -> String {
        use sha2::{Digest, Sha256};
        let h = hex::encode(Sha256::digest(self.address.to_ascii_lowercase().as_bytes()));
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

/// Settings of the fake. Build with `..Default::default()`.
#[derive(Debug, Clone, Default)]
pub struct GraphOptions {
    /// The identity fake whose tokens are accepted; `start` registers this
    /// fake's endpoint with it as a Graph resource. `None`: any non-empty
    /// bearer token passes, with every permission (for tests of the fake
    /// without an identity platform).
    pub identity: Option<FakeIdentity>,
    pub mailboxes: Vec<GraphMailbox>,
    /// The mailboxes the app may use (RBAC for Applications); `None`: all.
    pub rbac_scope: Option<Vec<String>>,
    /// The message trace's delays, page size and details rate limit.
    pub trace: TraceOptions,
}

/// How a delivered message came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `sendMail` with base64 MIME.
    Mime,
    /// `sendMail` with JSON.
    Json,
    /// A draft, then `send`.
    Draft,
}

impl Route {
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Mime => "mime",
            Route::Json => "json",
            Route::Draft => "draft",
        }
    }
}

/// One attachment of a JSON or draft message.
#[derive(Clone, PartialEq, Eq)]
pub struct GraphAttachment {
    pub name: String,
    pub content_type: String,
    pub size: usize,
    /// Hex SHA-256 of `bytes`.
    pub sha256: String,
    pub bytes: Vec<u8>,
    pub is_inline: bool,
}

impl fmt::Debug for GraphAttachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphAttachment")
            .field("name", &self.name)
            .field("content_type", &self.content_type)
            .field("size", &self.size)
            .field("sha256", &self.sha256)
            .finish()
    }
}

impl GraphAttachment {
    fn new(name: &str, content_type: &str, bytes: Vec<u8>, is_inline: bool) -> GraphAttachment {
        use sha2::{Digest, Sha256};
        GraphAttachment {
            name: name.to_string(),
            content_type: content_type.to_string(),
            size: bytes.len(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            bytes,
            is_inline,
        }
    }
}

/// A delivered message, or a draft still in a mailbox. Addresses are as
/// written (no case folding).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GraphMessage {
    /// The draft's id (draft route and drafts); `None` for `sendMail`.
    pub id: Option<String>,
    /// The mailbox in the URL (as configured).
    pub mailbox: String,
    pub route: Option<Route>,
    /// The From address (`None`: none given; Graph uses the mailbox).
    pub from: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub reply_to: Vec<String>,
    pub subject: String,
    /// The Message-ID as given: the MIME route's `Message-ID` header, the
    /// JSON/draft routes' `internetMessageId` (`None`: none given, and the
    /// trace shows one made up, as Exchange adds one).
    pub internet_message_id: Option<String>,
    /// The MIME route: the decoded message as posted.
    pub raw: Option<Vec<u8>>,
    /// The MIME route: the copy recipients see (Bcc header removed).
    pub visible: Option<Vec<u8>>,
    /// Whether a copy stays in Sent Items: `sendMail`'s `saveToSentItems`,
    /// or for a draft its `PidTagDeleteAfterSubmit` (`Boolean 0x0E01`).
    pub save_to_sent_items: bool,
    /// JSON/draft: `body.contentType` (`text` or `html`) and content.
    pub body_type: Option<String>,
    pub body: Option<String>,
    /// JSON/draft: `internetMessageHeaders` (name, value).
    pub headers: Vec<(String, String)>,
    pub attachments: Vec<GraphAttachment>,
    /// JSON/draft: `singleValueExtendedProperties` (id, value).
    pub properties: Vec<(String, String)>,
}

impl GraphMessage {
    /// Everyone Graph delivers to: To, Cc and Bcc.
    pub fn recipients(&self) -> Vec<String> {
        self.to
            .iter()
            .chain(&self.cc)
            .chain(&self.bcc)
            .cloned()
            .collect()
    }
}

/// A kind of request, for faults and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    GetUser,
    GetMailFolder,
    SendMail,
    CreateDraft,
    GetDraft,
    DeleteDraft,
    Attachment,
    CreateUploadSession,
    UploadChunk,
    UploadStatus,
    UploadCancel,
    Send,
    /// `GET /users/{id}/mailFolders/drafts/messages?$filter=...`
    ListDrafts,
    /// `GET /admin/exchange/tracing/messageTraces` (each page).
    ListTraces,
    /// `GET .../messageTraces/{id}/getDetailsByRecipient(...)`.
    TraceDetails,
}

impl RequestKind {
    /// The names `graph-fault` lines use (`sendMail`, `createDraft`, ...).
    pub fn parse(name: &str) -> Option<RequestKind> {
        Some(match name {
            "getUser" => RequestKind::GetUser,
            "getMailFolder" => RequestKind::GetMailFolder,
            "sendMail" => RequestKind::SendMail,
            "createDraft" => RequestKind::CreateDraft,
            "getDraft" => RequestKind::GetDraft,
            "deleteDraft" => RequestKind::DeleteDraft,
            "attachment" => RequestKind::Attachment,
            "createUploadSession" => RequestKind::CreateUploadSession,
            "uploadChunk" => RequestKind::UploadChunk,
            "uploadStatus" => RequestKind::UploadStatus,
            "uploadCancel" => RequestKind::UploadCancel,
            "send" => RequestKind::Send,
            "listDrafts" => RequestKind::ListDrafts,
            "listTraces" => RequestKind::ListTraces,
            "traceDetails" => RequestKind::TraceDetails,
            _ => return None,
        })
    }
}

/// A fault queued by a test; each is used once, by the first request it
/// matches, in queue order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphFault {
    /// The next request of `kind` answers `status` with `{"error":{"code"}}`
    /// (and `Retry-After: secs`), doing nothing else.
    Reply {
        kind: RequestKind,
        status: u16,
        code: String,
        retry_after: Option<u64>,
    },
    /// The next upload `PUT` drops the connection after receiving
    /// `after_bytes` of its body (nothing of that range is kept).
    DropUpload { after_bytes: usize },
    /// The next authenticated request answers `401
    /// InvalidAuthenticationToken` whatever its token.
    InvalidToken,
    /// The next `sendMail`, draft `send`, draft creation or upload range
    /// (not the last) is carried out (the message is
    /// delivered) but its answer never comes: the request hangs until the
    /// client gives up or dies — Microsoft took the message, the client
    /// does not know.
    AnswerLost { kind: RequestKind },
}

struct Draft {
    message: GraphMessage,
}

struct UploadSession {
    mailbox: String,
    draft_id: String,
    name: String,
    content_type: String,
    is_inline: bool,
    size: usize,
    received: Vec<u8>,
}

#[derive(Default)]
struct State {
    delivered: Vec<GraphMessage>,
    /// By draft id.
    drafts: HashMap<String, Draft>,
    /// By opaque token.
    uploads: HashMap<String, UploadSession>,
    faults: VecDeque<GraphFault>,
    requests: HashMap<RequestKind, u64>,
    /// Per mailbox (lower case): in flight now, and the most seen.
    in_flight: HashMap<String, usize>,
    max_in_flight: HashMap<String, usize>,
    next_id: u64,
    /// Other addresses this fake is reached at ([`FakeGraph::add_endpoint`]).
    endpoints: Vec<String>,
    trace: trace::TraceState,
}

struct Shared {
    opts: GraphOptions,
    inspector: Option<TokenInspector>,
    endpoint: String,
    state: Mutex<State>,
    /// Requests wait while set ([`FakeGraph::hold`]).
    held: watch::Sender<bool>,
    /// Counts deliveries (for waiting).
    delivered: watch::Sender<usize>,
    /// Bumped when in-flight counts change.
    changed: watch::Sender<u64>,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mailbox(&self, id: &str) -> Option<&GraphMailbox> {
        self.opts
            .mailboxes
            .iter()
            .find(|m| m.address.eq_ignore_ascii_case(id) || m.id() == id)
    }

    /// Takes the first queued fault `pick` accepts.
    fn take_fault<T>(&self, pick: impl Fn(&GraphFault) -> Option<T>) -> Option<T> {
        let mut st = self.lock();
        let i = st.faults.iter().position(|f| pick(f).is_some())?;
        let f = st.faults.remove(i).expect("present");
        pick(&f)
    }

    /// Records a delivered message, and its trace rows.
    fn deliver(&self, message: GraphMessage) {
        let mut st = self.lock();
        st.trace.record_message(&message);
        st.delivered.push(message);
        drop(st);
        self.delivered.send_modify(|n| *n += 1);
    }

    /// After delivering: when an [`GraphFault::AnswerLost`] for `kind` is
    /// queued, never answer (until the fake shuts down).
    async fn maybe_lose_answer(&self, kind: RequestKind) {
        let lost = self.take_fault(|f| match f {
            GraphFault::AnswerLost { kind: k } if *k == kind => Some(()),
            _ => None,
        });
        if lost.is_some() {
            let _ = self.shutdown.subscribe().wait_for(|&s| s).await;
        }
    }
}

/// `n` random bytes in hex (ids, request ids, upload tokens).
fn random_hex(n: usize) -> String {
    hex::encode((0..n).map(|_| rand::random::<u8>()).collect::<Vec<u8>>())
}

struct Shutdown(Arc<Shared>);

impl Drop for Shutdown {
    fn drop(&mut self) {
        self.0.shutdown.send_replace(true);
    }
}

/// Handle to a running fake Graph. Clones share it; it stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct FakeGraph {
    shared: Arc<Shared>,
    addr: SocketAddr,
    _shutdown: Arc<Shutdown>,
}

impl fmt::Debug for FakeGraph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeGraph")
            .field("endpoint", &self.shared.endpoint)
            .finish()
    }
}

impl FakeGraph {
    /// Binds `127.0.0.1:0` and starts serving.
    pub async fn start(opts: GraphOptions) -> FakeGraph {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let endpoint = format!("http://{addr}");
        let inspector = opts.identity.as_ref().map(|id| {
            id.allow_graph_resource(&endpoint);
            id.inspector()
        });
        let shared = Arc::new(Shared {
            opts,
            inspector,
            endpoint,
            state: Mutex::new(State::default()),
            held: watch::channel(false).0,
            delivered: watch::channel(0).0,
            changed: watch::channel(0).0,
            shutdown: watch::channel(false).0,
        });
        let mut down = shared.shutdown.subscribe();
        let app = routes::router(shared.clone());
        tokio::spawn(async move {
            let stop = async move {
                let _ = down.wait_for(|&d| d).await;
            };
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await;
        });
        FakeGraph {
            _shutdown: Arc::new(Shutdown(shared.clone())),
            shared,
            addr,
        }
    }

    /// `http://127.0.0.1:PORT` (what `graph.endpoint` is set to; requests
    /// go to `{endpoint}/v1.0/...`).
    pub fn endpoint(&self) -> String {
        self.shared.endpoint.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Another address this fake is reached at (a [`crate::TlsFront`] in
    /// front of it): tokens whose `aud` is `url` are accepted, and the
    /// identity fake issues them.
    pub fn add_endpoint(&self, url: &str) {
        let url = url.trim_end_matches('/').to_string();
        if let Some(id) = &self.shared.opts.identity {
            id.allow_graph_resource(&url);
        }
        self.shared.lock().endpoints.push(url);
    }

    /// Queues a fault.
    pub fn push_fault(&self, fault: GraphFault) {
        self.shared.lock().faults.push_back(fault);
    }

    /// Messages delivered so far, in order.
    pub fn delivered(&self) -> Vec<GraphMessage> {
        self.shared.lock().delivered.clone()
    }

    /// Waits until at least `n` messages were delivered (or `timeout`
    /// passed) and returns them all.
    pub async fn wait_for_delivered(&self, n: usize, timeout: Duration) -> Vec<GraphMessage> {
        let mut rx = self.shared.delivered.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|&c| c >= n)).await;
        self.delivered()
    }

    /// The drafts still in `mailbox` (case-insensitive), oldest first.
    pub fn drafts(&self, mailbox: &str) -> Vec<GraphMessage> {
        let st = self.shared.lock();
        let mut v: Vec<GraphMessage> = st
            .drafts
            .values()
            .filter(|d| d.message.mailbox.eq_ignore_ascii_case(mailbox))
            .map(|d| d.message.clone())
            .collect();
        v.sort_by_key(|m| m.id.clone().unwrap_or_default());
        v
    }

    /// Upload sessions open (created, not completed nor deleted).
    pub fn open_upload_sessions(&self) -> usize {
        self.shared.lock().uploads.len()
    }

    /// Faults queued and not used yet.
    pub fn faults_left(&self) -> usize {
        self.shared.lock().faults.len()
    }

    /// Requests of `kind` received so far (including refused ones).
    pub fn requests(&self, kind: RequestKind) -> u64 {
        self.shared.lock().requests.get(&kind).copied().unwrap_or(0)
    }

    /// The most requests for `mailbox` that were in flight at once.
    pub fn max_concurrency(&self, mailbox: &str) -> usize {
        let st = self.shared.lock();
        st.max_in_flight
            .get(&mailbox.to_ascii_lowercase())
            .copied()
            .unwrap_or(0)
    }

    /// Requests for `mailbox` in flight now.
    pub fn in_flight(&self, mailbox: &str) -> usize {
        let st = self.shared.lock();
        st.in_flight
            .get(&mailbox.to_ascii_lowercase())
            .copied()
            .unwrap_or(0)
    }

    /// While `true`, every request (once counted as in flight) waits before
    /// being handled: a test holds, lets its client start requests, waits
    /// with [`FakeGraph::wait_in_flight`], then releases.
    pub fn hold(&self, on: bool) {
        self.shared.held.send_replace(on);
    }

    /// Waits until `n` requests for `mailbox` are in flight at once (true),
    /// or `timeout` passes (false).
    pub async fn wait_in_flight(&self, mailbox: &str, n: usize, timeout: Duration) -> bool {
        let mut rx = self.shared.changed.subscribe();
        let wait = async {
            loop {
                if self.in_flight(mailbox) >= n {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok() && self.in_flight(mailbox) >= n
    }
}
