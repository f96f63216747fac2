//! What a session checks on the words a device sends, apart from the
//! session itself: HTTP spoken to the SMTP port, the HELO name, mailbox
//! syntax, the AUTH advertisement rule, and the reply to a command the
//! parser refused.

use std::net::IpAddr;

use smtp_proto::Error as ParseError;

/// First words that start an HTTP request, never an SMTP command. A web
/// page can make a browser POST to any port it is not blocked from
/// (2525 is not blocked), with SMTP commands in the body; like Postfix's
/// `smtpd_forbidden_commands`, such a session ends at its first line.
const HTTP_METHODS: &[&str] = &[
    "GET", "POST", "PUT", "HEAD", "CONNECT", "OPTIONS", "DELETE", "PATCH",
];
/// RFC 5321 §4.5.3.1: local part and domain lengths.
const MAX_LOCAL_PART: usize = 64;
const MAX_DOMAIN: usize = 255;

/// An HTTP request line (any time), or a line shaped like an HTTP header
/// (`Name: value`, no space before the colon) before HELO/EHLO.
pub(super) fn looks_like_http(line: &[u8], before_helo: bool) -> bool {
    let first = line.split(|b| *b == b' ').next().unwrap_or_default();
    if line.len() > first.len()
        && HTTP_METHODS
            .iter()
            .any(|m| m.as_bytes().eq_ignore_ascii_case(first))
    {
        return true;
    }
    if !before_helo {
        return false;
    }
    let Some(colon) = line.iter().position(|b| *b == b':') else {
        return false;
    };
    // RFC 9110 token characters, starting with a letter.
    let name = &line[..colon];
    name.first().is_some_and(u8::is_ascii_alphabetic)
        && name
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
}

/// The AUTH advertisement rule (see the module docs of `listener`).
pub(crate) fn auth_offered(has_users: bool, tls: bool, ip: IpAddr, allowed: bool) -> bool {
    has_users && (tls || ip.is_loopback() || allowed)
}

/// A HELO/EHLO argument: a domain or an address literal (RFC 5321
/// §4.1.1.1), read leniently, since devices send names like
/// `HP_LaserJet` or `RICOH-MP-C3004`: at most 255 bytes, no spaces, no
/// control characters (they end up in logs and on the admin's terminal).
pub(super) fn valid_helo(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= MAX_DOMAIN
        && !host.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// Light checks on a mailbox (RFC 5321 §4.5.3.1 lengths; no controls).
pub(super) fn valid_path(address: &str) -> bool {
    if address.is_empty() {
        return true; // the null reverse-path; RCPT checks emptiness itself
    }
    if address.chars().any(|c| c.is_control() || c == ' ') {
        return false;
    }
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && local.len() <= MAX_LOCAL_PART
                && !domain.is_empty()
                && domain.len() <= MAX_DOMAIN
        }
        // RFC 5321 allows a bare "Postmaster" recipient.
        None => address.eq_ignore_ascii_case("postmaster"),
    }
}

pub(super) fn parse_error_reply(e: &ParseError) -> String {
    match e {
        ParseError::UnknownCommand => "500 5.5.1 Command unrecognized".into(),
        ParseError::InvalidSenderAddress => "501 5.1.7 Bad sender address syntax".into(),
        ParseError::InvalidRecipientAddress => "501 5.1.3 Bad recipient address syntax".into(),
        ParseError::SyntaxError { syntax } => format!("501 5.5.4 Syntax: {syntax}"),
        ParseError::InvalidParameter { param } => format!("501 5.5.4 Invalid parameter {param}"),
        ParseError::UnsupportedParameter { param } => {
            let param: String = param
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(40)
                .collect();
            format!("555 5.5.4 Unsupported parameter {param}")
        }
        _ => "501 5.5.4 Syntax error".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smtp_proto::Request;

    #[test]
    fn auth_offer_rule() {
        let lan: IpAddr = "10.0.0.5".parse().unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(!auth_offered(false, true, lan, true), "no users, no AUTH");
        assert!(auth_offered(true, true, lan, false), "TLS");
        assert!(
            auth_offered(true, false, lan, true),
            "allowed LAN, plaintext"
        );
        assert!(auth_offered(true, false, lo, false), "loopback, plaintext");
        assert!(!auth_offered(true, false, lan, false), "foreign, plaintext");
    }

    #[test]
    fn helo_names() {
        for (h, ok) in [
            ("scanner.contoso.local", true),
            ("RICOH-MP-C3004", true),
            ("HP_LaserJet", true),
            ("[192.168.1.20]", true),
            ("[IPv6:fe80::1]", true),
            ("bücher.example", true),
            ("", false),
            ("\x1b]0;owned\x07", false),
            ("a\x1b[31mb", false),
            ("tab\there", false),
            (&"x".repeat(256), false),
        ] {
            assert_eq!(valid_helo(h), ok, "{h:?}");
        }
    }

    #[test]
    fn address_checks() {
        for (a, ok) in [
            ("a@b.c", true),
            ("", true),
            ("Postmaster", true),
            ("nodomain", false),
            ("@b.c", false),
            ("a@", false),
            ("a\u{7}@b.c", false),
            (&format!("{}@b.c", "x".repeat(65)), false),
            (&format!("a@{}", "x".repeat(256)), false),
        ] {
            assert_eq!(valid_path(a), ok, "{a:?}");
        }
    }

    #[test]
    fn http_is_recognised() {
        for (line, before_helo, want) in [
            (&b"GET / HTTP/1.1\r\n"[..], true, true),
            (b"POST / HTTP/1.1\r\n", false, true),
            (b"post /x HTTP/1.0\r\n", false, true),
            (b"CONNECT a:25 HTTP/1.1\r\n", true, true),
            (b"OPTIONS * HTTP/1.1\r\n", true, true),
            (b"Host: 127.0.0.1:2525\r\n", true, true),
            (b"Content-Type: text/plain\r\n", true, true),
            (b"sec-fetch-mode:no-cors\r\n", true, true),
            // After HELO a header-shaped line is just a bad command.
            (b"Host: 127.0.0.1:2525\r\n", false, false),
            // SMTP, never HTTP.
            (b"MAIL FROM:<a@b.c>\r\n", true, false),
            (b"RCPT TO:<a@b.c>\r\n", true, false),
            (b"EHLO scanner\r\n", true, false),
            (b"HELP\r\n", true, false),
            (b"GET\r\n", true, false),
            (b":x\r\n", true, false),
            (b"\r\n", true, false),
        ] {
            assert_eq!(looks_like_http(line, before_helo), want, "{line:?}");
        }
    }

    #[test]
    fn parse_errors_map_to_codes() {
        let table: &[(&[u8], &str)] = &[
            (b"FOO\r\n", "500 5.5.1"),
            (b"MAIL TO:<a@b>\r\n", "501 5.5.4"),
            (b"EHLO\r\n", "501 5.5.4"),
            (b"\x00\xff\r\n", "500 5.5.1"),
            (b"GET / HTTP/1.1\r\n", "500 5.5.1"),
        ];
        for (line, want) in table {
            let reply = match Request::parse(&mut line.iter()) {
                Err(e) => parse_error_reply(&e),
                Ok(r) => panic!("{line:?} parsed as {r:?}"),
            };
            assert!(reply.starts_with(want), "{line:?}: {reply}");
        }
    }
}
