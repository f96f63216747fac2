use super::*;

fn row(mid: &str, rcpt: &str, status: &str) -> TraceRow {
    TraceRow {
        id: "t1".into(),
        message_id: Some(mid.into()),
        recipient_address: Some(rcpt.into()),
        status: Some(status.into()),
    }
}

#[test]
fn rows_are_found_by_message_id_and_recipient_whatever_their_case() {
    let index = index_rows(vec![
        row("<Scan-1@Host>", "Alice@Contoso.com", "gettingStatus"),
        row("<Scan-1@Host>", "Alice@Contoso.com", "delivered"),
        row("<Scan-1@Host>", "alice@contoso.com", "pending"),
        row("<scan-2@host>", "bob@fabrikam.com", "failed"),
    ]);
    let key = |m: &str, r: &str| (m.to_string(), r.to_string());
    assert_eq!(
        index[&key("scan-1@host", "alice@contoso.com")]
            .status
            .as_deref(),
        Some("delivered")
    );
    assert_eq!(
        index[&key("scan-2@host", "bob@fabrikam.com")]
            .status
            .as_deref(),
        Some("failed")
    );
    assert_eq!(index.len(), 2);
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
