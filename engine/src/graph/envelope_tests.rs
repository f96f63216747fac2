//! Tests of exactly-the-envelope for both Graph routes.

use super::*;

fn env(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn restrict(headers: &str, envelope: &[&str]) -> (String, Vec<String>) {
    let r = restrict_headers(headers.as_bytes(), &env(envelope));
    (String::from_utf8(r.headers).unwrap(), r.notes)
}

const BASE: &str = "Received: from scanner\r\n (folded received)\r\nFrom: \"HP Scanner\" <scanner@contoso.com>\r\nTo: Alice <alice@contoso.com>, bob@contoso.com\r\nSubject: Scan\r\n\r\n";

#[test]
fn nothing_changes_when_headers_and_envelope_agree() {
    let (h, notes) = restrict(BASE, &["alice@contoso.com", "<bob@contoso.com>"]);
    assert_eq!(h, BASE);
    assert!(notes.is_empty());
}

#[test]
fn a_bcc_only_recipient_lands_in_bcc() {
    let (h, notes) = restrict(
        BASE,
        &["alice@contoso.com", "bob@contoso.com", "carol@fabrikam.com"],
    );
    assert_eq!(
        h,
        "Received: from scanner\r\n (folded received)\r\nFrom: \"HP Scanner\" <scanner@contoso.com>\r\nTo: Alice <alice@contoso.com>, bob@contoso.com\r\nBcc: <carol@fabrikam.com>\r\nSubject: Scan\r\n\r\n"
    );
    assert_eq!(notes, [bcc_note("carol@fabrikam.com")]);
    assert!(notes[0].contains("given to Graph as Bcc"));
}

#[test]
fn a_header_only_recipient_is_removed() {
    let (h, notes) = restrict(BASE, &["alice@contoso.com"]);
    assert_eq!(
        h,
        "Received: from scanner\r\n (folded received)\r\nFrom: \"HP Scanner\" <scanner@contoso.com>\r\nTo: Alice <alice@contoso.com>\r\nSubject: Scan\r\n\r\n"
    );
    assert_eq!(
        notes,
        ["bob@contoso.com is in the To header but not in this delivery's envelope: left out of the To Graph is given, so it does not get this copy"]
    );
}

#[test]
fn a_split_delivery_keeps_its_part_and_drops_an_emptied_cc() {
    let h = "To: a@x.com, b@x.com, c@x.com\r\nCc: d@x.com\r\nX-Id: 1\r\n\r\n";
    let (out, notes) = restrict(h, &["B@X.com", "c@x.com"]);
    assert_eq!(out, "To: b@x.com, c@x.com\r\nX-Id: 1\r\n\r\n");
    assert_eq!(notes.len(), 2);
    assert!(notes[1].starts_with("d@x.com is in the Cc header"));
}

#[test]
fn display_names_with_commas_and_encoded_words_survive() {
    let h = "To: \"Doe, John\" <john@x.com>, =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <jm@x.com>,\r\n (the boss) Boss <boss@x.com>, drop@x.com\r\n\r\n";
    let (out, notes) = restrict(h, &["john@x.com", "jm@x.com", "boss@x.com"]);
    assert_eq!(
        out,
        "To: \"Doe, John\" <john@x.com>, =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <jm@x.com>,\r\n (the boss) Boss <boss@x.com>\r\n\r\n"
    );
    assert_eq!(notes.len(), 1);
    let d = draft_recipients(h.as_bytes(), &env(&["john@x.com", "jm@x.com"]));
    assert_eq!(d.to[0].name.as_deref(), Some("Doe, John"));
    assert_eq!(d.to[1].name.as_deref(), Some("Jürgen Müller"));
    assert_eq!(d.to.len(), 2);
}

#[test]
fn folded_headers_and_other_headers_stay_byte_for_byte() {
    let h = "Subject: a very\r\n\tlong subject\r\nTo: one@x.com,\r\n\ttwo@x.com,\r\n\tthree@x.com\r\nX-Folded: a\r\n b\r\n\r\n";
    let (out, _) = restrict(h, &["one@x.com", "three@x.com"]);
    assert_eq!(
        out,
        "Subject: a very\r\n\tlong subject\r\nTo: one@x.com, three@x.com\r\nX-Folded: a\r\n b\r\n\r\n"
    );
}

#[test]
fn group_syntax() {
    let h = "To: undisclosed-recipients:;\r\n\r\n";
    let (out, notes) = restrict(h, &["a@x.com"]);
    assert_eq!(
        out,
        "To: undisclosed-recipients:;\r\nBcc: <a@x.com>\r\n\r\n"
    );
    assert_eq!(notes, [bcc_note("a@x.com")]);

    let h = "To: Team: a@x.com, \"B, b\" <b@x.com>;, c@x.com\r\n\r\n";
    let (out, _) = restrict(h, &["b@x.com", "c@x.com"]);
    assert_eq!(out, "To: Team: \"B, b\" <b@x.com>;, c@x.com\r\n\r\n");
    let d = draft_recipients(h.as_bytes(), &env(&["b@x.com", "c@x.com"]));
    let to: Vec<&str> = d.to.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(to, ["b@x.com", "c@x.com"]);
}

#[test]
fn no_to_at_all() {
    let h = "From: s@x.com\r\nSubject: s\r\n\r\n";
    let (out, notes) = restrict(h, &["a@x.com", "b@x.com"]);
    assert_eq!(
        out,
        "From: s@x.com\r\nSubject: s\r\nBcc: <a@x.com>, <b@x.com>\r\n\r\n"
    );
    assert_eq!(notes.len(), 2);
    let d = draft_recipients(h.as_bytes(), &env(&["a@x.com", "b@x.com"]));
    assert!(d.to.is_empty() && d.cc.is_empty());
    assert_eq!(d.bcc.len(), 2);
}

#[test]
fn an_existing_bcc_is_replaced() {
    let h = "To: a@x.com\r\nBcc: old@x.com, keep@x.com\r\nSubject: s\r\n\r\n";
    let (out, notes) = restrict(h, &["a@x.com", "keep@x.com"]);
    assert_eq!(
        out,
        "To: a@x.com\r\nBcc: <keep@x.com>\r\nSubject: s\r\n\r\n"
    );
    assert!(notes[0].starts_with("old@x.com is in the Bcc header"));
}

#[test]
fn case_differences_and_duplicates() {
    let h = "To: Alice <Alice@Contoso.com>, alice@contoso.com\r\nCc: ALICE@contoso.com\r\n\r\n";
    let (out, notes) = restrict(h, &["alice@CONTOSO.com", "alice@contoso.com"]);
    assert_eq!(out, h);
    assert!(notes.is_empty());
    let d = draft_recipients(
        h.as_bytes(),
        &env(&["alice@CONTOSO.com", "Bob@x.com", "bob@x.com"]),
    );
    assert_eq!(d.to.len(), 1);
    assert_eq!(d.to[0].address, "Alice@Contoso.com");
    assert!(d.cc.is_empty());
    assert_eq!(d.bcc.len(), 1);
}

#[test]
fn bare_lf_messages_and_a_whole_message() {
    let m = "To: a@x.com, b@x.com\nSubject: s\n\nbody To: b@x.com\n";
    let r = restrict_headers(m.as_bytes(), &env(&["a@x.com"]));
    assert_eq!(
        String::from_utf8(r.headers).unwrap(),
        "To: a@x.com\nSubject: s\n\n"
    );
}

#[test]
fn draft_recipients_follow_the_envelope() {
    let h = "To: Alice <alice@x.com>, gone@x.com\r\nCc: \"Bob B\" <bob@x.com>\r\nBcc: hidden@x.com\r\n\r\n";
    let d = draft_recipients(
        h.as_bytes(),
        &env(&["alice@x.com", "bob@x.com", "hidden@x.com", "new@x.com"]),
    );
    assert_eq!(
        d.to,
        [Recipient {
            address: "alice@x.com".into(),
            name: Some("Alice".into())
        }]
    );
    assert_eq!(d.cc[0].name.as_deref(), Some("Bob B"));
    let bcc: Vec<&str> = d.bcc.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(bcc, ["hidden@x.com", "new@x.com"]);
    assert_eq!(d.notes.len(), 3);
    assert!(d.notes[0].starts_with("gone@x.com is in the To header"));
}

#[test]
fn a_long_list_is_folded() {
    let to: Vec<String> = (0..8)
        .map(|i| format!("Person Number {i} <person{i}@example.com>"))
        .collect();
    let h = format!("To: {}\r\n\r\n", to.join(", "));
    let keep: Vec<String> = (0..7).map(|i| format!("person{i}@example.com")).collect();
    let r = restrict_headers(h.as_bytes(), &keep);
    let out = String::from_utf8(r.headers).unwrap();
    assert!(out.lines().all(|l| l.len() <= 78), "{out}");
    assert!(out.contains(",\r\n Person Number"));
    let d = draft_recipients(out.as_bytes(), &keep);
    assert_eq!(d.to.len(), 7);
    assert!(d.notes.is_empty());
}

#[test]
fn both_routes_deliver_to_exactly_the_envelope() {
    let headers = [
        BASE,
        "To: a@x.com, \"Doe, J\" <j@x.com>\r\nCc: c@x.com, d@x.com\r\nBcc: e@x.com\r\n\r\n",
        "To: Team: a@x.com, b@x.com;\r\nCc: undisclosed-recipients:;\r\n\r\n",
        "Subject: none\r\n\r\n",
    ];
    let envelopes: [&[&str]; 4] = [
        &["alice@contoso.com"],
        &["J@X.com", "d@x.com", "z@y.com"],
        &["b@x.com", "e@x.com"],
        &["q@x.com"],
    ];
    for h in headers {
        for e in envelopes {
            let restricted = restrict_headers(h.as_bytes(), &env(e));
            // What Graph would read from the restricted headers.
            let graph = draft_recipients(&restricted.headers, &env(e));
            assert!(
                graph.notes.iter().all(|n| !n.contains("left out")),
                "{h:?} {e:?}: {:?}",
                graph.notes
            );
            let mut got: Vec<String> = [&graph.to, &graph.cc, &graph.bcc]
                .iter()
                .flat_map(|l| l.iter().map(|r| r.address.to_ascii_lowercase()))
                .collect();
            got.sort();
            let mut want: Vec<String> = e.iter().map(|a| a.to_ascii_lowercase()).collect();
            want.sort();
            assert_eq!(got, want, "{h:?} {e:?}");
            // And the draft route, from the original headers, agrees.
            let draft = draft_recipients(h.as_bytes(), &env(e));
            assert_eq!(
                (draft.to, draft.cc, draft.bcc.len()),
                (graph.to, graph.cc, graph.bcc.len())
            );
        }
    }
}
