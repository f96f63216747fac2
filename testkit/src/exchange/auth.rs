//! Decoding of SASL responses (XOAUTH2, PLAIN, LOGIN) and the check of the
//! credentials they carry against the fake's options.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::FakeExchangeOptions;

/// Why an AUTH exchange failed; [`AuthError::reply`] is the SMTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// The client sent `*`.
    Cancelled,
    /// Not base64.
    BadBase64,
    /// Decoded but not the mechanism's shape, or wrong credentials.
    Rejected,
    /// Password given but basic auth is switched off.
    BasicDisabled,
}

impl AuthError {
    pub fn reply(self) -> &'static str {
        match self {
            AuthError::Cancelled => "501 5.7.0 Authentication cancelled",
            AuthError::BadBase64 => "501 5.5.2 Cannot Base64-decode Client responses",
            AuthError::Rejected => "535 5.7.3 Authentication unsuccessful",
            AuthError::BasicDisabled => {
                "535 5.7.139 Authentication unsuccessful, basic authentication is disabled."
            }
        }
    }
}

/// Decodes one client response line of a SASL exchange.
pub fn decode(line: &str) -> Result<Vec<u8>, AuthError> {
    let line = line.trim();
    if line == "*" {
        return Err(AuthError::Cancelled);
    }
    // RFC 4954: "=" is an empty initial response.
    if line == "=" {
        return Ok(Vec::new());
    }
    STANDARD.decode(line).map_err(|_| AuthError::BadBase64)
}

/// `user=<mailbox>\x01auth=Bearer <token>\x01\x01` → (mailbox, token).
pub fn parse_xoauth2(raw: &[u8]) -> Result<(String, String), AuthError> {
    let text = std::str::from_utf8(raw).map_err(|_| AuthError::Rejected)?;
    let mut user = None;
    let mut token = None;
    for field in text.split('\x01') {
        if let Some(u) = field.strip_prefix("user=") {
            user = Some(u.to_string());
        } else if let Some(a) = field.strip_prefix("auth=") {
            let mut parts = a.splitn(2, ' ');
            let scheme = parts.next().unwrap_or_default();
            if scheme.eq_ignore_ascii_case("Bearer") {
                token = parts.next().map(|t| t.trim().to_string());
            }
        }
    }
    match (user, token) {
        (Some(u), Some(t)) if !u.is_empty() && !t.is_empty() => Ok((u, t)),
        _ => Err(AuthError::Rejected),
    }
}

/// `authzid\0authcid\0password` → (authcid, password).
pub fn parse_plain(raw: &[u8]) -> Result<(String, String), AuthError> {
    let text = std::str::from_utf8(raw).map_err(|_| AuthError::Rejected)?;
    let mut parts = text.split('\0');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(user), Some(pass), None) => Ok((user.to_string(), pass.to_string())),
        _ => Err(AuthError::Rejected),
    }
}

/// Checks an XOAUTH2 token: with a validator it decides; without, any
/// non-empty token for any user is good.
pub fn check_token(opts: &FakeExchangeOptions, user: &str, token: &str) -> Result<(), AuthError> {
    let ok = match &opts.token_validator {
        Some(v) => v.check(user, token),
        None => !token.is_empty(),
    };
    ok.then_some(()).ok_or(AuthError::Rejected)
}

/// Checks a LOGIN/PLAIN password against `accept_password`.
pub fn check_password(opts: &FakeExchangeOptions, user: &str, pass: &str) -> Result<(), AuthError> {
    match &opts.accept_password {
        None => Err(AuthError::BasicDisabled),
        Some((u, p)) if u.eq_ignore_ascii_case(user) && p == pass => Ok(()),
        Some(_) => Err(AuthError::Rejected),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (raw response, expected (user, token)).
    type Case = (&'static [u8], Option<(&'static str, &'static str)>);

    #[test]
    fn xoauth2_table() {
        let cases: &[Case] = &[
            (
                b"user=a@b.c\x01auth=Bearer tok\x01\x01",
                Some(("a@b.c", "tok")),
            ),
            (
                b"user=a@b.c\x01auth=bearer tok\x01\x01",
                Some(("a@b.c", "tok")),
            ),
            (b"user=a@b.c\x01auth=Basic tok\x01\x01", None),
            (b"user=\x01auth=Bearer tok\x01\x01", None),
            (b"user=a@b.c\x01auth=Bearer \x01\x01", None),
            (b"auth=Bearer tok\x01\x01", None),
            (b"", None),
            (b"\xff\xfe", None),
        ];
        for (raw, expected) in cases {
            let got = parse_xoauth2(raw).ok();
            let expected = expected.map(|(u, t)| (u.to_string(), t.to_string()));
            assert_eq!(got, expected, "{raw:?}");
        }
    }

    #[test]
    fn plain_table() {
        assert_eq!(
            parse_plain(b"\0u\0p").unwrap(),
            ("u".to_string(), "p".to_string())
        );
        assert_eq!(
            parse_plain(b"z\0u\0p").unwrap(),
            ("u".to_string(), "p".to_string())
        );
        assert!(parse_plain(b"u\0p").is_err());
        assert!(parse_plain(b"a\0b\0c\0d").is_err());
    }

    #[test]
    fn decode_cancel_and_garbage() {
        assert_eq!(decode("*"), Err(AuthError::Cancelled));
        assert_eq!(decode("!!!"), Err(AuthError::BadBase64));
        assert_eq!(decode("dXNlcg==").unwrap(), b"user");
        assert_eq!(decode("=").unwrap(), b"");
    }
}
