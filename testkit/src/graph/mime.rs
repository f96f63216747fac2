//! Just enough MIME for the fake Graph: the header section's From, To, Cc,
//! Bcc, Reply-To and Subject (unfolded; addresses taken from `<...>` or the
//! bare word), and the message without its Bcc header (what recipients see).
//! Independent of the engine's parser on purpose.

/// The end of the header section: (header bytes, offset of the body).
fn split(raw: &[u8]) -> (&[u8], usize) {
    for (i, w) in raw.windows(4).enumerate() {
        if w == b"\r\n\r\n" {
            return (&raw[..i + 2], i + 4);
        }
    }
    for (i, w) in raw.windows(2).enumerate() {
        if w == b"\n\n" {
            return (&raw[..i + 1], i + 2);
        }
    }
    (raw, raw.len())
}

/// Unfolded `(name, value)` header fields.
pub fn headers(raw: &[u8]) -> Vec<(String, String)> {
    let (head, _) = split(raw);
    let text = String::from_utf8_lossy(head);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    out
}

/// All values of header `name` (case-insensitive).
pub fn values<'h>(headers: &'h [(String, String)], name: &str) -> Vec<&'h str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Addresses in an address-list value: `a@x, "B, b" <b@y>, grp: c@z;`.
pub fn addresses(value: &str) -> Vec<String> {
    let mut items = Vec::new();
    let (mut cur, mut quoted, mut angle) = (String::new(), false, false);
    for c in value.chars() {
        match c {
            '"' if !angle => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' | ';' if !quoted && !angle => {
                items.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    items.push(cur);
    items
        .iter()
        .filter_map(|item| {
            // A group's name ("grp: a@x") goes.
            let item = match item.split_once(':') {
                Some((_, rest)) if !item.contains('"') && !item.contains('<') => rest,
                Some((name, rest)) if !name.contains('"') && !name.contains('<') => rest,
                _ => item.as_str(),
            };
            let addr = match (item.rfind('<'), item.rfind('>')) {
                (Some(a), Some(b)) if a < b => &item[a + 1..b],
                _ => item,
            };
            let addr = addr.trim();
            addr.contains('@').then(|| addr.to_string())
        })
        .collect()
}

/// Addresses from every `name` header.
pub fn header_addresses(headers: &[(String, String)], name: &str) -> Vec<String> {
    values(headers, name)
        .into_iter()
        .flat_map(addresses)
        .collect()
}

/// The message without its Bcc header fields (and their folded lines).
pub fn without_bcc(raw: &[u8]) -> Vec<u8> {
    let (head, body_at) = split(raw);
    let mut out = Vec::with_capacity(raw.len());
    let mut skipping = false;
    for line in head.split_inclusive(|&b| b == b'\n') {
        let folded = line.first().is_some_and(|&b| b == b' ' || b == b'\t');
        if !folded {
            skipping = line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"bcc:");
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(&raw[head.len()..body_at.max(head.len())]);
    out.extend_from_slice(&raw[body_at.min(raw.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_lists() {
        assert_eq!(
            addresses(r#"a@x.com, "Doe, Jane" <jane@y.com>, grp: c@z.com, d@z.com;"#),
            vec!["a@x.com", "jane@y.com", "c@z.com", "d@z.com"]
        );
        assert_eq!(addresses("undisclosed-recipients:;"), Vec::<String>::new());
    }

    #[test]
    fn bcc_removed_folded_too() {
        let raw = b"From: a@x\r\nBcc: b@y,\r\n c@z\r\nTo: d@w\r\n\r\nbody\r\nBcc: not a header\r\n";
        let h = headers(raw);
        assert_eq!(header_addresses(&h, "bcc"), vec!["b@y", "c@z"]);
        assert_eq!(
            without_bcc(raw),
            b"From: a@x\r\nTo: d@w\r\n\r\nbody\r\nBcc: not a header\r\n".to_vec()
        );
    }
}
