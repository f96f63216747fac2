//! A tiny authoritative DNS server on `127.0.0.1:0` (UDP) for the tests:
//! answers MX, TXT, CNAME and A queries from records the test sets, NXDOMAIN
//! for names it has nothing for, and an empty answer for a name that has
//! other types. Stops when dropped.
//!
//! Stand-in until `postern_testkit::dns::FakeDns` lands; same method names.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, MX, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::net::UdpSocket;

type Zone = HashMap<String, Vec<RData>>;

pub struct FakeDns {
    addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn name(s: &str) -> Name {
    Name::from_ascii(format!("{}.", key(s))).unwrap()
}

impl FakeDns {
    pub async fn start() -> FakeDns {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let zone: Arc<Mutex<Zone>> = Arc::default();
        let task = tokio::spawn(serve(socket, zone.clone()));
        FakeDns { addr, zone, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn set(&self, owner: &str, kind: RecordType, data: Vec<RData>) {
        let mut zone = self.zone.lock().unwrap();
        let entry = zone.entry(key(owner)).or_default();
        entry.retain(|d| d.record_type() != kind);
        entry.extend(data);
    }

    pub fn set_mx(&self, domain: &str, records: &[(u16, &str)]) {
        let data = records
            .iter()
            .map(|(pref, host)| RData::MX(MX::new(*pref, name(host))))
            .collect();
        self.set(domain, RecordType::MX, data);
    }

    pub fn set_txt(&self, owner: &str, records: &[&str]) {
        let data = records
            .iter()
            .map(|t| RData::TXT(TXT::new(vec![t.to_string()])))
            .collect();
        self.set(owner, RecordType::TXT, data);
    }

    pub fn set_cname(&self, owner: &str, target: &str) {
        self.set(
            owner,
            RecordType::CNAME,
            vec![RData::CNAME(CNAME(name(target)))],
        );
    }

    pub fn set_a(&self, owner: &str, ip: Ipv4Addr) {
        self.set(owner, RecordType::A, vec![RData::A(A(ip))]);
    }
}

async fn serve(socket: UdpSocket, zone: Arc<Mutex<Zone>>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let Ok(query) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        let mut resp = Message::response(query.metadata.id, OpCode::Query);
        resp.metadata.recursion_desired = query.metadata.recursion_desired;
        resp.metadata.recursion_available = true;
        resp.metadata.authoritative = true;
        if let Some(q) = query.queries.first() {
            resp.add_query(q.clone());
            let zone = zone.lock().unwrap();
            match zone.get(&key(&q.name.to_ascii())) {
                None => resp.metadata.response_code = ResponseCode::NXDomain,
                Some(data) => {
                    for d in data.iter().filter(|d| d.record_type() == q.query_type) {
                        resp.add_answer(Record::from_rdata(q.name.clone(), 300, d.clone()));
                    }
                }
            }
        }
        if let Ok(bytes) = resp.to_vec() {
            let _ = socket.send_to(&bytes, peer).await;
        }
    }
}
