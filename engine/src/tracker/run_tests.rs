use super::*;

fn row(mid: &str, rcpt: &str, status: &str) -> TraceRow {
    TraceRow {
        id: "t1".into(),
        message_id: Some(mid.into()),
        recipient_address: Some(rcpt.into()),
        status: Some(status.into()),
        received_date_time: Some("2026-12-01T10:00:00Z".into()),
    }
}

/// 2026-12-01T10:00:00Z.
const TEN: u64 = 1_796_119_200_000;

#[test]
fn rows_are_found_by_message_id_and_recipient_whatever_their_case() {
    let index = index_rows(vec![
        row("<Scan-1@Host>", "Alice@Contoso.com", "gettingStatus"),
        row("<Scan-1@Host>", "Alice@Contoso.com", "delivered"),
        row("<Scan-1@Host>", "alice@contoso.com", "pending"),
        row("<scan-2@host>", "bob@fabrikam.com", "failed"),
    ]);
    let key = |m: &str, r: &str| (m.to_string(), r.to_string());
    let alice = &index[&key("scan-1@host", "alice@contoso.com")];
    assert_eq!(alice.len(), 3);
    assert_eq!(
        pick(alice, TEN).unwrap().status.as_deref(),
        Some("delivered")
    );
    let bob = &index[&key("scan-2@host", "bob@fabrikam.com")];
    assert_eq!(pick(bob, TEN).unwrap().status.as_deref(), Some("failed"));
    assert_eq!(index.len(), 2);
}

/// A scanner that sends the same Message-ID every time: the row for the
/// message handed over now is the first one received from then on, not
/// yesterday's.
#[test]
fn a_reused_message_id_finds_the_row_of_this_handoff() {
    let mut old = row("<fixed@mfp>", "alice@contoso.com", "failed");
    old.id = "yesterday".into();
    old.received_date_time = Some("2026-11-30T10:00:00Z".into());
    let mut now = row("<fixed@mfp>", "alice@contoso.com", "delivered");
    now.id = "today".into();
    now.received_date_time = Some("2026-12-01T10:00:05.123Z".into());
    let mut later = row("<fixed@mfp>", "alice@contoso.com", "pending");
    later.id = "later".into();
    later.received_date_time = Some("2026-12-01T12:00:00Z".into());
    let rows = vec![later, old, now];
    assert_eq!(pick(&rows, TEN).unwrap().id, "today");
    // Not in the trace yet: nothing older stands in for it.
    assert!(pick(&rows[1..2], TEN).is_none());
    assert_eq!(rows[2].received_ms(), Some(TEN + 5_123));
}

#[test]
fn tracking_needs_a_client_credentials_app_in_a_named_tenant() {
    let secrets = SecretStore::new();
    let mut c = Config::default();
    assert!(app_tokens(&c, secrets.clone())
        .err()
        .unwrap()
        .contains("client-credentials"));
    c.oauth.flow = OAuthFlow::ClientCredentials;
    c.oauth.client_id = "app".into();
    c.oauth.tenant = "organizations".into();
    assert!(app_tokens(&c, secrets.clone())
        .err()
        .unwrap()
        .contains("oauth.tenant"));
    c.oauth.tenant = "contoso.com".into();
    assert!(app_tokens(&c, secrets).is_ok());
}
