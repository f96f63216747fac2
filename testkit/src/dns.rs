//! A fake DNS server, in-process on `127.0.0.1:0` (UDP, and TCP on the same
//! port), answering from an in-memory zone that a test can change while it
//! runs. Postern is pointed at it with `[dns] servers = ["127.0.0.1:PORT"]`.
//!
//! It answers A, AAAA, MX, TXT and CNAME like a recursive resolver would:
//! a name with a CNAME is answered with the CNAME and then the target's
//! records (followed inside the zone); a name that has records of some other
//! type gets an empty NOERROR answer ("no data"); a name with no record at
//! all gets NXDOMAIN. AAAA records are never held: AAAA is always "no data"
//! for a known name. Every record carries the zone's TTL ([`Zone::ttl`]).
//!
//! Messages are encoded and decoded with `hickory-proto`. One task per
//! protocol serves; dropping the last [`FakeDns`] clone stops both.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, MX, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;

/// The TTL records get unless a test sets another.
pub const DEFAULT_TTL: u32 = 300;

/// Most CNAME hops followed inside the zone (a loop stops here).
const MAX_CNAME_CHAIN: usize = 8;

/// The records the fake answers from. Names are case-insensitive and may be
/// given with or without the final dot.
#[derive(Debug, Clone)]
pub struct Zone {
    mx: BTreeMap<String, Vec<(u16, String)>>,
    txt: BTreeMap<String, Vec<String>>,
    cname: BTreeMap<String, String>,
    a: BTreeMap<String, Vec<Ipv4Addr>>,
    ttl: u32,
}

impl Default for Zone {
    fn default() -> Self {
        Zone {
            mx: BTreeMap::new(),
            txt: BTreeMap::new(),
            cname: BTreeMap::new(),
            a: BTreeMap::new(),
            ttl: DEFAULT_TTL,
        }
    }
}

impl Zone {
    pub fn new() -> Zone {
        Zone::default()
    }

    /// Adds `name MX preference exchange`.
    pub fn mx(mut self, name: &str, preference: u16, exchange: &str) -> Zone {
        self.mx
            .entry(key(name))
            .or_default()
            .push((preference, key(exchange)));
        self
    }

    /// Adds a TXT record holding `text` (split into 255-byte strings on the wire).
    pub fn txt(mut self, name: &str, text: &str) -> Zone {
        self.txt
            .entry(key(name))
            .or_default()
            .push(text.to_string());
        self
    }

    /// Sets `name CNAME target`.
    pub fn cname(mut self, name: &str, target: &str) -> Zone {
        self.cname.insert(key(name), key(target));
        self
    }

    /// Adds `name A ip`.
    pub fn a(mut self, name: &str, ip: Ipv4Addr) -> Zone {
        self.a.entry(key(name)).or_default().push(ip);
        self
    }

    /// The TTL of every record, in seconds.
    pub fn ttl(mut self, seconds: u32) -> Zone {
        self.ttl = seconds;
        self
    }

    fn exists(&self, name: &str) -> bool {
        self.mx.contains_key(name)
            || self.txt.contains_key(name)
            || self.cname.contains_key(name)
            || self.a.contains_key(name)
    }

    /// The records of `qtype` at `name` (no CNAME following).
    fn records(&self, name: &str, owner: &Name, qtype: RecordType) -> Vec<Record> {
        let rec = |data: RData| Record::from_rdata(owner.clone(), self.ttl, data);
        match qtype {
            RecordType::A => self.a.get(name).map_or(vec![], |ips| {
                ips.iter().map(|ip| rec(RData::A(A(*ip)))).collect()
            }),
            RecordType::MX => self.mx.get(name).map_or(vec![], |mxs| {
                mxs.iter()
                    .map(|(pref, exchange)| rec(RData::MX(MX::new(*pref, fqdn(exchange)))))
                    .collect()
            }),
            RecordType::TXT => self.txt.get(name).map_or(vec![], |texts| {
                texts
                    .iter()
                    .map(|t| rec(RData::TXT(TXT::new(split_255(t)))))
                    .collect()
            }),
            RecordType::CNAME => self.cname.get(name).map_or(vec![], |target| {
                vec![rec(RData::CNAME(CNAME(fqdn(target))))]
            }),
            _ => vec![],
        }
    }

    /// The answer section and response code for one question.
    fn answer(&self, qname: &Name, qtype: RecordType) -> (Vec<Record>, ResponseCode) {
        let mut answers = Vec::new();
        let mut owner = qname.clone();
        let mut name = key(&qname.to_ascii());
        for _ in 0..MAX_CNAME_CHAIN {
            if !self.exists(&name) {
                let code = if answers.is_empty() {
                    ResponseCode::NXDomain
                } else {
                    ResponseCode::NoError
                };
                return (answers, code);
            }
            let direct = self.records(&name, &owner, qtype);
            if !direct.is_empty() || qtype == RecordType::CNAME {
                answers.extend(direct);
                return (answers, ResponseCode::NoError);
            }
            let Some(target) = self.cname.get(&name) else {
                return (answers, ResponseCode::NoError);
            };
            answers.extend(self.records(&name, &owner, RecordType::CNAME));
            owner = fqdn(target);
            name = target.clone();
        }
        (answers, ResponseCode::ServFail)
    }
}

/// Lowercase, without the final dot: the zone's keys.
fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn fqdn(name: &str) -> Name {
    let mut n = Name::from_ascii(name).unwrap_or_else(|e| panic!("bad DNS name {name:?}: {e}"));
    n.set_fqdn(true);
    n
}

/// TXT character-strings are at most 255 bytes each.
fn split_255(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return vec![String::new()];
    }
    bytes
        .chunks(255)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect()
}

/// One question the fake was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Lowercase, without the final dot.
    pub name: String,
    /// e.g. `"MX"`.
    pub kind: String,
}

/// What every task shares; the handle's [`Shutdown`] flips `shutdown`.
struct Shared {
    zone: Mutex<Zone>,
    queries: Mutex<Vec<Query>>,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    fn zone(&self) -> MutexGuard<'_, Zone> {
        self.zone.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The encoded response to one encoded request; `None` for garbage.
    fn respond(&self, request: &[u8]) -> Option<Vec<u8>> {
        let req = Message::from_vec(request).ok()?;
        let mut resp = Message::response(req.metadata.id, req.metadata.op_code);
        resp.metadata.message_type = MessageType::Response;
        resp.metadata.recursion_desired = req.metadata.recursion_desired;
        resp.metadata.recursion_available = true;
        resp.add_queries(req.queries.iter().cloned());
        if req.edns.is_some() {
            resp.set_edns(Edns::new());
        }
        match (req.metadata.op_code, req.queries.first()) {
            (OpCode::Query, Some(q)) => {
                self.queries
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Query {
                        name: key(&q.name().to_ascii()),
                        kind: q.query_type().to_string(),
                    });
                let (answers, code) = self.zone().answer(q.name(), q.query_type());
                resp.add_answers(answers);
                resp.metadata.response_code = code;
            }
            _ => resp.metadata.response_code = ResponseCode::NotImp,
        }
        resp.to_vec().ok()
    }
}

/// Closes the shutdown channel when the last handle goes.
struct Shutdown(Arc<Shared>);

impl Drop for Shutdown {
    fn drop(&mut self) {
        self.0.shutdown.send_replace(true);
    }
}

/// Handle to a running fake DNS server. Clones share it; it stops when the
/// last clone is dropped.
#[derive(Clone)]
pub struct FakeDns {
    shared: Arc<Shared>,
    addr: SocketAddr,
    _shutdown: Arc<Shutdown>,
}

impl std::fmt::Debug for FakeDns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeDns")
            .field("addr", &self.addr)
            .field("zone", &*self.shared.zone())
            .finish()
    }
}

impl FakeDns {
    /// Binds UDP and TCP on one `127.0.0.1` port and starts answering from `zone`.
    pub async fn start(zone: Zone) -> FakeDns {
        let (udp, tcp) = bind_pair().await;
        let addr = udp.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            zone: Mutex::new(zone),
            queries: Mutex::new(Vec::new()),
            shutdown: watch::channel(false).0,
        });
        tokio::spawn(serve_udp(shared.clone(), udp));
        tokio::spawn(serve_tcp(shared.clone(), tcp));
        FakeDns {
            _shutdown: Arc::new(Shutdown(shared.clone())),
            shared,
            addr,
        }
    }

    /// Where it listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces `name`'s MX records (`&[]` removes them).
    pub fn set_mx(&self, name: &str, records: &[(u16, &str)]) {
        let mut zone = self.shared.zone();
        zone.mx.remove(&key(name));
        for (pref, exchange) in records {
            zone.mx
                .entry(key(name))
                .or_default()
                .push((*pref, key(exchange)));
        }
    }

    /// Replaces `name`'s TXT records (`&[]` removes them).
    pub fn set_txt(&self, name: &str, texts: &[&str]) {
        let mut zone = self.shared.zone();
        zone.txt.remove(&key(name));
        for t in texts {
            zone.txt.entry(key(name)).or_default().push(t.to_string());
        }
    }

    /// Sets or (with `None`) removes `name`'s CNAME.
    pub fn set_cname(&self, name: &str, target: Option<&str>) {
        let mut zone = self.shared.zone();
        match target {
            Some(t) => zone.cname.insert(key(name), key(t)),
            None => zone.cname.remove(&key(name)),
        };
    }

    /// Replaces `name`'s A records (`&[]` removes them).
    pub fn set_a(&self, name: &str, ips: &[Ipv4Addr]) {
        let mut zone = self.shared.zone();
        zone.a.remove(&key(name));
        if !ips.is_empty() {
            zone.a.insert(key(name), ips.to_vec());
        }
    }

    /// Sets the TTL of every record from now on, in seconds.
    pub fn set_ttl(&self, seconds: u32) {
        self.shared.zone().ttl = seconds;
    }

    /// Every question asked so far, in order.
    pub fn queries(&self) -> Vec<Query> {
        self.shared
            .queries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many times `name` was asked for `kind` (e.g. `"MX"`).
    pub fn query_count(&self, name: &str, kind: &str) -> usize {
        let name = key(name);
        self.queries()
            .iter()
            .filter(|q| q.name == name && q.kind.eq_ignore_ascii_case(kind))
            .count()
    }
}

/// A UDP socket and a TCP listener on the same free port.
async fn bind_pair() -> (UdpSocket, TcpListener) {
    const TRIES: usize = 20;
    for _ in 0..TRIES {
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind UDP");
        let addr = udp.local_addr().expect("local addr");
        if let Ok(tcp) = TcpListener::bind(addr).await {
            return (udp, tcp);
        }
    }
    panic!("FakeDns: no port free for both UDP and TCP after {TRIES} tries");
}

async fn serve_udp(shared: Arc<Shared>, socket: UdpSocket) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut buf = vec![0u8; 65_535];
    loop {
        let got = tokio::select! {
            _ = shutdown.wait_for(|&down| down) => return,
            got = socket.recv_from(&mut buf) => got,
        };
        let Ok((n, peer)) = got else { continue };
        if let Some(resp) = shared.respond(&buf[..n]) {
            let _ = socket.send_to(&resp, peer).await;
        }
    }
}

async fn serve_tcp(shared: Arc<Shared>, listener: TcpListener) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|&down| down) => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = shared.clone();
                conns.spawn(async move {
                    let mut down = shared.shutdown.subscribe();
                    tokio::select! {
                        _ = down.wait_for(|&d| d) => {}
                        () = serve_tcp_conn(&shared, stream) => {}
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.shutdown().await;
}

/// RFC 1035 §4.2.2: each message is preceded by its two-byte length.
async fn serve_tcp_conn(shared: &Shared, mut stream: TcpStream) {
    loop {
        let Ok(len) = stream.read_u16().await else {
            return;
        };
        let mut req = vec![0u8; len as usize];
        if stream.read_exact(&mut req).await.is_err() {
            return;
        }
        let Some(resp) = shared.respond(&req) else {
            return;
        };
        let Ok(len) = u16::try_from(resp.len()) else {
            return;
        };
        if stream.write_u16(len).await.is_err() || stream.write_all(&resp).await.is_err() {
            return;
        }
    }
}
