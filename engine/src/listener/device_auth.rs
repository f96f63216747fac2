//! Device authentication (SMTP AUTH PLAIN and LOGIN): which device users
//! may log in to Postern, how a password is checked, and the brute-force
//! slow-down. The AUTH command itself is `session::login`; Postern's own
//! sign-in to Microsoft is the top-level `auth` module.
//!
//! Passwords are checked through the [`PasswordCheck`] trait so the session
//! never knows where they live. Production uses the OS keychain
//! ([`DeviceAuth::keychain`], entries `SecretKey::DevicePassword`); tests and
//! embedders use [`DeviceAuth::fixed`] (in memory) or their own check, so no
//! unit test touches the real keychain.
//!
//! Slow-down, per client IP: after each failed login the reply waits
//! `first_delay` doubling up to `max_delay` (1 s .. 16 s); after
//! `max_failures` failures within `window` (10 in 15 min) the address gets
//! `454 4.7.0` for every AUTH until the window has passed. A success clears
//! the address's record. All four are a [`LoginPolicy`] so tests run fast,
//! and every decision takes `now` so tests need no clock.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use tokio::time::Instant;

use crate::secrets::{Secret, SecretKey, SecretStore};

/// Delay before answering the first failed login from an address.
pub const FIRST_FAILURE_DELAY: Duration = Duration::from_secs(1);
/// The delay doubles per failure up to this.
pub const MAX_FAILURE_DELAY: Duration = Duration::from_secs(16);
/// Failures within [`FAILURE_WINDOW`] after which an address is blocked.
pub const MAX_FAILURES: usize = 10;
/// How long failures are remembered (and so how long a block lasts).
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Addresses tracked at most, so an attacker cycling addresses cannot grow
/// memory without end. Past it, expired records go first, then the record
/// whose last failure is oldest among those not blocked (a blocked address
/// is evicted only when every record is a block), so flooding the table
/// never lifts the flooder's own block.
const MAX_TRACKED_ADDRESSES: usize = 10_000;
/// IPv6 addresses are counted by their /64: one subscriber's prefix holds
/// 2^64 addresses, each of which would otherwise get ten tries of its own.
const IPV6_PREFIX: u8 = 64;

/// The key failures are counted under: the address, or its IPv6 /64.
fn origin(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let net = ipnet::Ipv6Net::new(v6, IPV6_PREFIX).expect("a valid prefix length");
            IpAddr::V6(net.trunc().addr())
        }
        v4 => v4,
    }
}

/// The brute-force slow-down settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginPolicy {
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub max_failures: usize,
    pub window: Duration,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        LoginPolicy {
            first_delay: FIRST_FAILURE_DELAY,
            max_delay: MAX_FAILURE_DELAY,
            max_failures: MAX_FAILURES,
            window: FAILURE_WINDOW,
        }
    }
}

/// The future a [`PasswordCheck`] returns: `Ok(true)` when the password is
/// right, `Err` (worded for the admin) when it could not be checked.
pub type VerifyFuture<'a> = Pin<Box<dyn Future<Output = Result<bool, String>> + Send + 'a>>;

/// Where device passwords are checked.
pub trait PasswordCheck: Send + Sync {
    fn verify<'a>(&'a self, user: &'a str, password: &'a Secret) -> VerifyFuture<'a>;
}

struct Keychain(SecretStore);

impl PasswordCheck for Keychain {
    fn verify<'a>(&'a self, user: &'a str, password: &'a Secret) -> VerifyFuture<'a> {
        Box::pin(async move {
            let key = SecretKey::DevicePassword {
                user: user.to_string(),
            };
            match self.0.get_async(key).await {
                Ok(Some(stored)) => Ok(constant_time_eq(
                    stored.expose().as_bytes(),
                    password.expose().as_bytes(),
                )),
                Ok(None) => Ok(false),
                Err(e) => Err(e.to_string()),
            }
        })
    }
}

struct Fixed(HashMap<String, Secret>);

impl PasswordCheck for Fixed {
    fn verify<'a>(&'a self, user: &'a str, password: &'a Secret) -> VerifyFuture<'a> {
        let ok = self.0.get(user).is_some_and(|stored| {
            constant_time_eq(stored.expose().as_bytes(), password.expose().as_bytes())
        });
        Box::pin(std::future::ready(Ok(ok)))
    }
}

/// Compares without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(!x));
    }
    diff == 0
}

/// Device logins for the listener; cheap to clone (the failure record is
/// shared by every session, so slow-down applies across connections).
#[derive(Clone)]
pub struct DeviceAuth {
    users: Arc<Vec<String>>,
    check: Arc<dyn PasswordCheck>,
    policy: LoginPolicy,
    /// Failed-login times per address. Written by sessions on each AUTH;
    /// nobody waits on it (std mutex, never held across an await).
    failures: Arc<Mutex<HashMap<IpAddr, VecDeque<Instant>>>>,
}

impl fmt::Debug for DeviceAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceAuth")
            .field("users", &self.users)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl DeviceAuth {
    /// The production setup: `users` (from `listener.users`) with their
    /// passwords in the OS keychain.
    pub fn keychain(store: SecretStore, users: Vec<String>) -> DeviceAuth {
        DeviceAuth::custom(users, Arc::new(Keychain(store)))
    }

    /// Users and passwords held in memory: for tests and demos.
    pub fn fixed<U, P>(users: impl IntoIterator<Item = (U, P)>) -> DeviceAuth
    where
        U: Into<String>,
        P: Into<String>,
    {
        let map: HashMap<String, Secret> = users
            .into_iter()
            .map(|(u, p)| (u.into(), Secret::new(p)))
            .collect();
        let mut names: Vec<String> = map.keys().cloned().collect();
        names.sort();
        DeviceAuth::custom(names, Arc::new(Fixed(map)))
    }

    /// Any other password source.
    pub fn custom(users: Vec<String>, check: Arc<dyn PasswordCheck>) -> DeviceAuth {
        DeviceAuth {
            users: Arc::new(users),
            check,
            policy: LoginPolicy::default(),
            failures: Arc::default(),
        }
    }

    /// No device users: AUTH is not offered.
    pub fn none() -> DeviceAuth {
        DeviceAuth::fixed(Vec::<(String, String)>::new())
    }

    /// Replaces the brute-force slow-down settings.
    pub fn with_policy(mut self, policy: LoginPolicy) -> DeviceAuth {
        self.policy = policy;
        self
    }

    pub fn policy(&self) -> &LoginPolicy {
        &self.policy
    }

    /// True when at least one device user may log in.
    pub fn has_users(&self) -> bool {
        !self.users.is_empty()
    }

    /// Checks a login. Unknown users fail without consulting the store.
    pub async fn verify(&self, user: &str, password: &Secret) -> Result<bool, String> {
        if !self.users.iter().any(|u| u == user) {
            return Ok(false);
        }
        self.check.verify(user, password).await
    }

    /// True while `ip` has had too many failures within the window.
    pub fn is_blocked(&self, ip: IpAddr, now: Instant) -> bool {
        let mut map = self.failures.lock().unwrap();
        match map.get_mut(&origin(ip)) {
            Some(times) => {
                prune(times, now, self.policy.window);
                times.len() >= self.policy.max_failures
            }
            None => false,
        }
    }

    /// Records a failure; returns how long to wait before replying.
    pub fn record_failure(&self, ip: IpAddr, now: Instant) -> Duration {
        let ip = origin(ip);
        let mut map = self.failures.lock().unwrap();
        if map.len() >= MAX_TRACKED_ADDRESSES && !map.contains_key(&ip) {
            let window = self.policy.window;
            map.retain(|_, times| {
                prune(times, now, window);
                !times.is_empty()
            });
            if map.len() >= MAX_TRACKED_ADDRESSES {
                let max = self.policy.max_failures;
                let victim = map
                    .iter()
                    .min_by_key(|(_, times)| (times.len() >= max, times.back().copied()))
                    .map(|(k, _)| *k);
                if let Some(victim) = victim {
                    map.remove(&victim);
                }
            }
        }
        let times = map.entry(ip).or_default();
        prune(times, now, self.policy.window);
        times.push_back(now);
        let doublings = (times.len() - 1).min(16) as u32;
        self.policy
            .first_delay
            .saturating_mul(1u32 << doublings)
            .min(self.policy.max_delay)
    }

    /// A successful login clears the address's record.
    pub fn record_success(&self, ip: IpAddr) {
        self.failures.lock().unwrap().remove(&origin(ip));
    }
}

fn prune(times: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while times
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= window)
    {
        times.pop_front();
    }
}

/// Why a SASL response could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslError {
    /// The client sent "*".
    Cancelled,
    /// Not base64, not UTF-8, or not the mechanism's shape.
    Malformed,
}

/// Decodes one base64 SASL response line ("*" cancels).
pub fn decode_response(line: &str) -> Result<Vec<u8>, SaslError> {
    let line = line.trim_end_matches(['\r', '\n']).trim();
    if line == "*" {
        return Err(SaslError::Cancelled);
    }
    if line == "=" {
        return Ok(Vec::new());
    }
    base64::engine::general_purpose::STANDARD
        .decode(line)
        .map_err(|_| SaslError::Malformed)
}

/// Decodes a PLAIN response: `authzid NUL authcid NUL password`. An authzid
/// other than empty or the user itself is refused (no acting for others).
pub fn decode_plain(line: &str) -> Result<(String, Secret), SaslError> {
    let raw = decode_response(line)?;
    let mut parts = raw.split(|&b| b == 0);
    let (Some(authz), Some(user), Some(pass), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    let user = String::from_utf8(user.to_vec()).map_err(|_| SaslError::Malformed)?;
    let pass = String::from_utf8(pass.to_vec()).map_err(|_| SaslError::Malformed)?;
    if user.is_empty() || (!authz.is_empty() && authz != user.as_bytes()) {
        return Err(SaslError::Malformed);
    }
    Ok((user, Secret::new(pass)))
}

/// Decodes a LOGIN response (user name or password) as UTF-8 text.
pub fn decode_text(line: &str) -> Result<String, SaslError> {
    String::from_utf8(decode_response(line)?).map_err(|_| SaslError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn plain_responses() {
        type Want = Result<(&'static str, &'static str), SaslError>;
        let table: &[(String, Want)] = &[
            (b64(b"\0scanner\0pw"), Ok(("scanner", "pw"))),
            (b64(b"scanner\0scanner\0pw"), Ok(("scanner", "pw"))),
            (b64(b"other\0scanner\0pw"), Err(SaslError::Malformed)),
            (b64(b"\0scanner"), Err(SaslError::Malformed)),
            (b64(b"\0scanner\0pw\0x"), Err(SaslError::Malformed)),
            (b64(b"\0\0pw"), Err(SaslError::Malformed)),
            (b64(b"\0scanner\0\xff"), Err(SaslError::Malformed)),
            ("not base64!".into(), Err(SaslError::Malformed)),
            ("*".into(), Err(SaslError::Cancelled)),
            ("".into(), Err(SaslError::Malformed)),
        ];
        for (line, want) in table {
            let got = decode_plain(line);
            let got = got
                .as_ref()
                .map(|(u, p)| (u.as_str(), p.expose()))
                .map_err(|e| *e);
            assert_eq!(got, want.clone(), "line {line:?}");
        }
        assert_eq!(decode_text(&b64(b"scanner")), Ok("scanner".into()));
        assert_eq!(decode_text(" *\r\n"), Err(SaslError::Cancelled));
    }

    #[test]
    fn constant_time_eq_is_eq() {
        for (a, b) in [("", ""), ("a", ""), ("", "a"), ("pw", "pw"), ("pw", "px")] {
            assert_eq!(constant_time_eq(a.as_bytes(), b.as_bytes()), a == b);
        }
    }

    #[tokio::test]
    async fn fixed_users_and_unknown_users() {
        let auth = DeviceAuth::fixed([("scanner", "s3cret")]);
        assert!(auth.has_users());
        assert!(!DeviceAuth::none().has_users());
        assert_eq!(
            auth.verify("scanner", &Secret::new("s3cret")).await,
            Ok(true)
        );
        assert_eq!(
            auth.verify("scanner", &Secret::new("nope")).await,
            Ok(false)
        );
        assert_eq!(
            auth.verify("admin", &Secret::new("s3cret")).await,
            Ok(false)
        );
        assert!(!format!("{auth:?}").contains("s3cret"));
    }

    #[test]
    fn delays_double_then_block_then_expire() {
        let auth = DeviceAuth::none();
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let other: IpAddr = "10.1.2.4".parse().unwrap();
        let t0 = Instant::now();
        let delays: Vec<u64> = (0..10)
            .map(|_| auth.record_failure(ip, t0).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 16, 16, 16, 16, 16]);
        assert!(auth.is_blocked(ip, t0));
        assert!(!auth.is_blocked(other, t0), "per address");
        assert!(auth.is_blocked(ip, t0 + FAILURE_WINDOW - Duration::from_secs(1)));
        assert!(!auth.is_blocked(ip, t0 + FAILURE_WINDOW));
        assert_eq!(auth.record_failure(ip, t0 + FAILURE_WINDOW).as_secs(), 1);
        auth.record_success(ip);
        assert!(!auth.is_blocked(ip, t0));
    }

    #[test]
    fn a_full_table_evicts_the_oldest_unblocked_record_never_a_block() {
        let auth = DeviceAuth::none();
        let t0 = Instant::now();
        let attacker: IpAddr = "203.0.113.9".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            auth.record_failure(attacker, t0);
        }
        assert!(auth.is_blocked(attacker, t0));
        // The attacker fills the table with fresh addresses, and more.
        let first: IpAddr = "10.0.0.0".parse().unwrap();
        for i in 0..(MAX_TRACKED_ADDRESSES as u32 + 500) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            auth.record_failure(ip, t0 + Duration::from_millis(i as u64));
        }
        assert!(
            auth.is_blocked(attacker, t0),
            "the block survives the flood"
        );
        assert!(auth.failures.lock().unwrap().len() <= MAX_TRACKED_ADDRESSES);
        // The oldest unblocked records went first; the newest are kept.
        let newest = IpAddr::V4(std::net::Ipv4Addr::from(
            0x0a00_0000 + MAX_TRACKED_ADDRESSES as u32 + 499,
        ));
        let map = auth.failures.lock().unwrap();
        assert!(!map.contains_key(&first));
        assert!(map.contains_key(&newest));
    }

    #[test]
    fn ipv6_counts_by_64() {
        let auth = DeviceAuth::none();
        let t0 = Instant::now();
        // Ten addresses of one /64 share one record: the tenth is a block.
        for i in 0..MAX_FAILURES {
            let ip: IpAddr = format!("2001:db8:1:2::{:x}", i + 1).parse().unwrap();
            auth.record_failure(ip, t0);
        }
        let elsewhere_in_64: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert!(auth.is_blocked(elsewhere_in_64, t0));
        let next_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(!auth.is_blocked(next_64, t0));
        // IPv4-mapped addresses count as the IPv4 address.
        let v4: IpAddr = "10.9.9.9".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.9.9.9".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            auth.record_failure(mapped, t0);
        }
        assert!(auth.is_blocked(v4, t0));
    }

    #[test]
    fn nine_failures_do_not_block() {
        let auth = DeviceAuth::none();
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            auth.record_failure(ip, t0);
        }
        assert!(!auth.is_blocked(ip, t0));
    }
}
