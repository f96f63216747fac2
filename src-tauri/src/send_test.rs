//! `postern send-test --to ADDR`: hands a small message to the running
//! Postern over SMTP on its first listen address, exactly as a scanner
//! would, then follows it through the queue (over the control socket)
//! until it is sent, failed or held, and prints the outcome with its
//! explanation. Exit code 0 only when it was sent.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use postern_engine::config::Config;
use postern_engine::control::{self, ClientError, Request, Response};
use postern_engine::spool::{MessageId, MessageInfo, State};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::commands::{EXIT_CONFIG, EXIT_FAILED};

/// How long to follow the message before giving up waiting (it stays
/// queued; `postern queue show ID` follows it further).
const WAIT_FOR_OUTCOME: Duration = Duration::from_secs(120);
/// How often the queue is asked while waiting.
const POLL_EVERY: Duration = Duration::from_millis(200);
/// Per SMTP command with the local listener.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn run(config: &Config, to: &str, from: Option<String>, wait: bool) -> i32 {
    let from = from.unwrap_or_else(|| config.upstream.mailbox.clone());
    if from.is_empty() {
        eprintln!("postern: no sender: give --from ADDR, or set upstream.mailbox");
        return EXIT_CONFIG;
    }
    let spool = config.spool_dir();
    let status = match control::request(&spool, &Request::Status).await {
        Ok(Response { data: Some(v), .. }) => v,
        Ok(Response { error, .. }) => {
            eprintln!("postern: {}", error.unwrap_or_default());
            return EXIT_FAILED;
        }
        Err(ClientError::NotRunning) => {
            eprintln!("postern: Postern is not running: start `postern serve` first (send-test goes through its queue).");
            return EXIT_FAILED;
        }
        Err(e) => {
            eprintln!("postern: {e}");
            return EXIT_FAILED;
        }
    };
    let status: control::Status = match serde_json::from_value(status) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("postern: the running Postern answered an unexpected status: {e}");
            return EXIT_FAILED;
        }
    };
    let Some(addr) = target(config, &status.listening) else {
        eprintln!("postern: Postern does not listen on a plain SMTP address (listener.listen)");
        return EXIT_FAILED;
    };

    let subject = format!("Postern test message {}", rfc3339_now());
    let message = message(&from, to, &subject);
    let id = match submit(addr, &from, to, &message).await {
        Ok(id) => id,
        Err(e) => {
            eprintln!("postern: the test message was not accepted at {addr}: {e}");
            return EXIT_FAILED;
        }
    };
    println!("Queued as {id} (\"{subject}\", from {from} to {to}).");
    if !wait {
        println!("Follow it with `postern queue show {id}`.");
        return 0;
    }
    follow(config, &id).await
}

/// For the tray app: hands a test message from `upstream.mailbox` to `to`
/// to the engine's listener (as `listening`), returns its queue id.
pub(crate) async fn queue_test(
    config: &Config,
    listening: &[SocketAddr],
    to: &str,
) -> Result<MessageId, String> {
    let from = &config.upstream.mailbox;
    if from.is_empty() {
        return Err("Set upstream.mailbox first: the test message is sent from it.".into());
    }
    let addr = target(config, listening)
        .ok_or("Postern does not listen on a plain SMTP address (listener.listen).")?;
    let subject = format!("Postern test message {}", rfc3339_now());
    submit(addr, from, to, &message(from, to, &subject))
        .await
        .map_err(|e| format!("The test message was not accepted at {addr}: {e}"))
}

/// The plain listen address to connect to: the configured first one as
/// the running engine reports it (its real port when the config said 0),
/// with a wildcard turned into loopback.
fn target(config: &Config, listening: &[SocketAddr]) -> Option<SocketAddr> {
    let first = *config.listener.listen.first()?;
    let addr = listening
        .iter()
        .find(|a| **a == first || (first.port() == 0 && a.ip() == first.ip()))
        .copied()
        .unwrap_or(first);
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Some(SocketAddr::new(ip, addr.port()))
}

fn message(from: &str, to: &str, subject: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let host = postern_engine::engine::host_name();
    format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: {date}\r\n\
         Message-ID: <postern-test-{ms}@{host}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n\
         This is a test message from `postern send-test` on {host}.\r\n\
         If it arrived, Postern can deliver mail to Microsoft 365.\r\n",
        date = rfc2822(now.as_secs()),
        ms = now.as_millis(),
    )
}

/// One SMTP transaction with the local listener; returns the queue id
/// from the `250 ... queued as ID` reply.
pub(crate) async fn submit(
    addr: SocketAddr,
    from: &str,
    to: &str,
    message: &str,
) -> Result<MessageId, String> {
    let tcp = tokio::time::timeout(SMTP_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| "no answer".to_string())?
        .map_err(|e| e.to_string())?;
    let (read, mut write) = tcp.into_split();
    let mut read = BufReader::new(read);
    expect(&mut read, 220).await?;
    let host = postern_engine::engine::host_name();
    let mut data = message.replace("\r\n.", "\r\n..");
    data.push_str(".\r\n");
    let steps = [
        (format!("EHLO {host}\r\n"), 250),
        (format!("MAIL FROM:<{from}>\r\n"), 250),
        (format!("RCPT TO:<{to}>\r\n"), 250),
        ("DATA\r\n".to_string(), 354),
        (data, 250),
    ];
    let mut last = String::new();
    for (line, code) in steps {
        write
            .write_all(line.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        last = expect(&mut read, code).await?;
    }
    let _ = write.write_all(b"QUIT\r\n").await;
    last.rsplit("queued as ")
        .next()
        .filter(|_| last.contains("queued as "))
        .and_then(|id| id.trim().parse::<MessageId>().ok())
        .ok_or_else(|| format!("unexpected reply: {last}"))
}

/// Reads one (possibly multi-line) reply; an error unless its code is `code`.
async fn expect<R: tokio::io::AsyncBufRead + Unpin>(
    read: &mut R,
    code: u16,
) -> Result<String, String> {
    let mut reply = String::new();
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(SMTP_TIMEOUT, read.read_line(&mut line))
            .await
            .map_err(|_| "Postern stopped answering".to_string())?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("connection closed ({})", reply.trim_end()));
        }
        reply.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            break;
        }
    }
    let reply = reply.trim_end().to_string();
    if reply.get(..3).and_then(|c| c.parse::<u16>().ok()) == Some(code) {
        Ok(reply)
    } else {
        Err(reply)
    }
}

/// Polls the queue until the message is sent, failed or held.
async fn follow(config: &Config, id: &MessageId) -> i32 {
    let spool = config.spool_dir();
    let deadline = Instant::now() + WAIT_FOR_OUTCOME;
    let mut last_state = None;
    loop {
        let info = match control::request(&spool, &Request::Show { id: id.clone() }).await {
            Ok(Response { data: Some(v), .. }) => serde_json::from_value::<MessageInfo>(v).ok(),
            Ok(_) => None,
            Err(e) => {
                eprintln!("postern: lost touch with Postern while waiting: {e}");
                return EXIT_FAILED;
            }
        };
        if let Some(m) = info {
            let state = m.status.state;
            if last_state != Some(state) {
                last_state = Some(state);
                if matches!(state, State::Deferred) {
                    println!("Deferred: {} (Postern keeps trying)", reply_of(&m));
                }
            }
            match state {
                State::Sent => {
                    println!("Sent: Microsoft 365 accepted it ({}).", reply_of(&m));
                    return 0;
                }
                State::Failed | State::Held => {
                    println!(
                        "{}: {}",
                        if state == State::Failed {
                            "Failed"
                        } else {
                            "Held"
                        },
                        reply_of(&m)
                    );
                    explain(&m);
                    return EXIT_FAILED;
                }
                _ => {}
            }
        }
        if Instant::now() >= deadline {
            println!(
                "Still not delivered after {} s; it stays in the queue: `postern queue show {id}`.",
                WAIT_FOR_OUTCOME.as_secs()
            );
            return EXIT_FAILED;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

fn reply_of(m: &MessageInfo) -> String {
    m.status
        .last_reply
        .clone()
        .or_else(|| m.status.recipients.iter().find_map(|r| r.reply.clone()))
        .unwrap_or_else(|| "no reply recorded".into())
}

fn explain(m: &MessageInfo) {
    if let Some(s) = &m.status.summary {
        println!("Meaning   {s}");
    }
    if let Some(f) = m.status.fix.as_deref().filter(|f| !f.is_empty()) {
        println!("Fix       {f}");
    }
}

fn rfc3339_now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Unix seconds as an RFC 5322 date in UTC ("Tue, 05 Mar 2024 14:07:09 +0000").
fn rfc2822(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc5322() {
        assert_eq!(rfc2822(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc2822(1_709_647_629), "Tue, 05 Mar 2024 14:07:09 +0000");
        assert_eq!(rfc2822(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

    #[test]
    fn wildcard_listen_addresses_become_loopback() {
        let mut config = Config::default();
        config.listener.listen = vec!["0.0.0.0:0".parse().unwrap()];
        let running: Vec<SocketAddr> = vec!["0.0.0.0:2600".parse().unwrap()];
        assert_eq!(
            target(&config, &running),
            Some("127.0.0.1:2600".parse().unwrap())
        );
    }
}
