//! The fake Graph's message trace (../shared/MICROSOFT-GRAPH.md §4): the
//! rows every delivery leaves (one per recipient), the outcomes tests script
//! for them, the deterministic delay before a row shows up and gets its
//! status, paging, and the details (events) of one row. The HTTP side is in
//! `trace_routes`, the `$filter` in `trace_filter`.
//!
//! Delay, counted in **list requests, all of them** (whatever their filter
//! or sender): a row created after `k` answered list requests is left out
//! of the next [`TraceOptions::hidden_lists`] ones, then shows
//! `gettingStatus` for the next [`TraceOptions::getting_status_lists`],
//! then its outcome's status. A list request counts when it is answered
//! `200` with a first page; the further pages of that answer (`$skiptoken`)
//! are served from it and do not count, and refused requests do not count.

use std::cmp::Reverse;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::time::Instant;

use super::trace_filter::Filter;
use super::GraphMessage;

/// The most rows one page holds (`$top` is capped there).
pub const MAX_TRACE_PAGE: usize = 5000;
/// The widest `receivedDateTime` window one query may ask for.
pub const MAX_TRACE_WINDOW: Duration = Duration::from_secs(10 * 24 * 3600);

/// How the fake's message trace behaves. Build with `..Default::default()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceOptions {
    /// A new row is absent from this many list requests ("not in the trace
    /// yet"). Default 0.
    pub hidden_lists: u32,
    /// Then it shows `status: "gettingStatus"` for this many. Default 0.
    pub getting_status_lists: u32,
    /// Rows per page without `$top`, and the most `$top` gives (both capped
    /// at [`MAX_TRACE_PAGE`]). Default 1000.
    pub page_size: usize,
    /// The most details requests answered in any `details_window`; more →
    /// `429 TooManyRequests` with `Retry-After`. Default 100 in 5 minutes
    /// (Exchange's figure). This one uses the clock (tokio's): a limit, not
    /// a delay.
    pub details_limit: u32,
    pub details_window: Duration,
}

impl Default for TraceOptions {
    fn default() -> Self {
        TraceOptions {
            hidden_lists: 0,
            getting_status_lists: 0,
            page_size: 1000,
            details_limit: 100,
            details_window: Duration::from_secs(300),
        }
    }
}

/// What became of a message for one recipient, as the trace will show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceOutcome {
    Delivered,
    /// `description` is the text of the details' `Fail` event (the NDR
    /// reason); [`TraceOutcome::failed`] writes Exchange's for a code.
    Failed {
        code: String,
        description: String,
    },
    Quarantined,
    FilteredAsSpam,
    /// Sent to a distribution group, which was expanded.
    Expanded,
    Pending,
}

impl TraceOutcome {
    /// A failure with Exchange's description for `code` (`5.1.10`,
    /// `5.1.1`, `5.7.520`, `5.4.1`, `5.2.2`, `5.7.708`; others get
    /// `550 <code> Remote server returned an error`).
    pub fn failed(code: &str) -> TraceOutcome {
        let led = |text: &str| {
            format!(
                "Reason: [{{LED={text}}};{{MSG=}};{{FQDN=}};{{IP=}};{{LRT=}}]. OriginalClientIP [127.0.0.1]"
            )
        };
        let description = match code {
            "5.1.10" => led("550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"),
            "5.1.1" => led("550 5.1.1 RESOLVER.ADR.ExRecipNotFound; not found"),
            "5.7.520" => led("550 5.7.520 Access denied, Your organization does not allow external forwarding. Please contact your administrator for further assistance. AS(7555)"),
            "5.4.1" => led("550 5.4.1 Recipient address rejected: Access denied. AS(201806281)"),
            "5.2.2" => led("554 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded"),
            "5.7.708" => led("550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP."),
            _ => format!("550 {code} Remote server returned an error"),
        };
        TraceOutcome::Failed {
            code: code.to_string(),
            description,
        }
    }

    /// The trace's `status` word (`delivered`, `failed`, ...).
    pub fn status(&self) -> &'static str {
        match self {
            TraceOutcome::Delivered => "delivered",
            TraceOutcome::Failed { .. } => "failed",
            TraceOutcome::Quarantined => "quarantined",
            TraceOutcome::FilteredAsSpam => "filteredAsSpam",
            TraceOutcome::Expanded => "expanded",
            TraceOutcome::Pending => "pending",
        }
    }

    /// The events after `Receive` in the details: (event, action,
    /// description).
    fn events(&self) -> Vec<(&'static str, Option<&'static str>, String)> {
        let one = |event, action, text: &str| vec![(event, action, text.to_string())];
        match self {
            TraceOutcome::Delivered => {
                one("Deliver", None, "The message was successfully delivered.")
            }
            TraceOutcome::Failed { description, .. } => vec![("Fail", None, description.clone())],
            TraceOutcome::Quarantined => one(
                "Quarantine",
                Some("Quarantine"),
                "The message was quarantined.",
            ),
            TraceOutcome::FilteredAsSpam => one(
                "Deliver",
                Some("MoveToJmf"),
                "The message was delivered to the Junk Email folder.",
            ),
            TraceOutcome::Expanded => one("Expand", None, "The distribution group was expanded."),
            TraceOutcome::Pending => one(
                "Defer",
                None,
                "451 4.4.0 Message failed to be made redundant; the delivery will be retried.",
            ),
        }
    }
}

/// One trace row, as the fake holds it ([`crate::FakeGraph::trace_rows`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceRow {
    /// Shared by the rows of one message.
    pub id: String,
    /// With angle brackets.
    pub message_id: String,
    /// Lower case.
    pub sender: String,
    /// Lower case.
    pub recipient: String,
    pub subject: String,
    pub size: u64,
    /// `receivedDateTime`: RFC 3339, whole seconds, `Z`.
    pub received: String,
    /// What a list request made now would show: `None` while the row is
    /// not in the trace yet, else `gettingStatus` or the outcome's status.
    pub status: Option<String>,
    /// The answered list requests since the row was created.
    pub lists_seen: u32,
}

struct Row {
    /// Creation order of the message (newest first in answers).
    seq: u64,
    at: OffsetDateTime,
    row: TraceRow,
}

/// Pages of an answer still to be served, by `$skiptoken`.
struct Page {
    rest: Vec<Value>,
    top: usize,
}

#[derive(Default)]
pub(super) struct TraceState {
    rows: Vec<Row>,
    next_seq: u64,
    /// By recipient (lower case).
    outcomes: HashMap<String, TraceOutcome>,
    pub(super) filters: Vec<String>,
    pages: HashMap<String, Page>,
    /// When the details requests of the current window were answered.
    details: VecDeque<Instant>,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// A GUID-shaped random id.
fn guid() -> String {
    let h = super::random_hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `<id>` from a Message-ID as written (brackets added when missing); one
/// in Exchange's style when there is none (Exchange adds it).
fn bracketed(message_id: Option<&str>) -> String {
    match message_id.map(str::trim).filter(|m| !m.is_empty()) {
        Some(m) if m.starts_with('<') && m.ends_with('>') => m.to_string(),
        Some(m) => format!("<{}>", m.trim_start_matches('<').trim_end_matches('>')),
        None => format!(
            "<{}@PH0PR11MB4999.namprd11.prod.outlook.com>",
            super::random_hex(12).to_ascii_uppercase()
        ),
    }
}

/// The JSON/draft routes have no MIME: an estimate of the size of the MIME
/// message Graph builds (headers, body, attachments in base64).
fn estimated_size(m: &GraphMessage) -> u64 {
    if let Some(raw) = &m.raw {
        return raw.len() as u64;
    }
    let addresses: usize = m
        .recipients()
        .iter()
        .chain(&m.from)
        .map(|a| a.len() + 2)
        .sum();
    let attachments: usize = m
        .attachments
        .iter()
        .map(|a| a.size.div_ceil(57) * 78 + 300)
        .sum();
    let body = m.body.as_ref().map_or(0, String::len);
    (1024 + m.subject.len() + addresses + body + attachments) as u64
}

impl TraceState {
    /// The rows of a message Graph delivered.
    pub(super) fn record_message(&mut self, m: &GraphMessage) {
        self.record(
            m.internet_message_id.as_deref(),
            &m.mailbox,
            &m.recipients(),
            &m.subject,
            estimated_size(m),
        );
    }

    pub(super) fn record(
        &mut self,
        message_id: Option<&str>,
        sender: &str,
        recipients: &[String],
        subject: &str,
        size: u64,
    ) {
        let id = guid();
        let message_id = bracketed(message_id);
        let now = OffsetDateTime::now_utc();
        let at = now.replace_nanosecond(0).unwrap_or(now);
        self.next_seq += 1;
        for r in recipients {
            self.rows.push(Row {
                seq: self.next_seq,
                at,
                row: TraceRow {
                    id: id.clone(),
                    message_id: message_id.clone(),
                    sender: sender.to_ascii_lowercase(),
                    recipient: r.to_ascii_lowercase(),
                    subject: subject.to_string(),
                    size,
                    received: rfc3339(at),
                    status: None,
                    lists_seen: 0,
                },
            });
        }
    }

    pub(super) fn set_outcome(&mut self, recipient: &str, outcome: TraceOutcome) {
        self.outcomes
            .insert(recipient.to_ascii_lowercase(), outcome);
    }

    fn outcome(&self, recipient: &str) -> &TraceOutcome {
        self.outcomes
            .get(recipient)
            .unwrap_or(&TraceOutcome::Delivered)
    }

    /// What a list made now shows for `row` (`None`: not in the trace yet).
    fn status_now(&self, opts: &TraceOptions, row: &TraceRow) -> Option<&'static str> {
        if row.lists_seen < opts.hidden_lists {
            None
        } else if row.lists_seen - opts.hidden_lists < opts.getting_status_lists {
            Some("gettingStatus")
        } else {
            Some(self.outcome(&row.recipient).status())
        }
    }

    pub(super) fn rows(&self, opts: &TraceOptions) -> Vec<TraceRow> {
        self.rows
            .iter()
            .map(|r| TraceRow {
                status: self.status_now(opts, &r.row).map(str::to_string),
                ..r.row.clone()
            })
            .collect()
    }

    /// A query's first page (the rows `filter` matches, newest message
    /// first, a message's recipients in order), and the token of the next
    /// page when there is more. Counts as one list request for every row.
    pub(super) fn list(
        &mut self,
        opts: &TraceOptions,
        filter: &Filter,
        top: usize,
    ) -> (Vec<Value>, Option<String>) {
        let mut found: Vec<(&Row, &'static str)> = self
            .rows
            .iter()
            .filter_map(|r| Some((r, self.status_now(opts, &r.row)?)))
            .filter(|(r, status)| filter.matches(r.at, &r.row, status))
            .collect();
        found.sort_by_key(|(r, _)| Reverse(r.seq));
        let values: Vec<Value> = found
            .into_iter()
            .map(|(r, status)| {
                let t = &r.row;
                json!({
                    "id": t.id,
                    "messageId": t.message_id,
                    "senderAddress": t.sender,
                    "recipientAddress": t.recipient,
                    "subject": t.subject,
                    "size": t.size,
                    "fromIP": "127.0.0.1",
                    "toIP": null,
                    "receivedDateTime": t.received,
                    "status": status,
                })
            })
            .collect();
        for r in &mut self.rows {
            r.row.lists_seen = r.row.lists_seen.saturating_add(1);
        }
        self.page(values, top)
    }

    /// The page after `token`, if the token is known (each is used once).
    pub(super) fn next_page(&mut self, token: &str) -> Option<(Vec<Value>, Option<String>)> {
        let Page { rest, top } = self.pages.remove(token)?;
        Some(self.page(rest, top))
    }

    fn page(&mut self, mut values: Vec<Value>, top: usize) -> (Vec<Value>, Option<String>) {
        if values.len() <= top {
            return (values, None);
        }
        let rest = values.split_off(top);
        let token = super::random_hex(16);
        self.pages.insert(token.clone(), Page { rest, top });
        (values, Some(token))
    }

    /// Admits a details request, or says in how many seconds one would be.
    pub(super) fn admit_details(&mut self, opts: &TraceOptions) -> Result<(), u64> {
        let now = Instant::now();
        while self
            .details
            .front()
            .is_some_and(|&t| now.duration_since(t) >= opts.details_window)
        {
            self.details.pop_front();
        }
        if self.details.len() >= opts.details_limit as usize {
            let frees = self.details.front().map_or(opts.details_window, |&t| {
                opts.details_window.saturating_sub(now.duration_since(t))
            });
            return Err(frees.as_secs_f64().ceil().max(1.0) as u64);
        }
        self.details.push_back(now);
        Ok(())
    }

    /// The events of row `id` for `recipient` (case-insensitive); `None`
    /// when there is no such row in the trace (yet).
    pub(super) fn details(&self, opts: &TraceOptions, id: &str, recipient: &str) -> Option<Value> {
        let r = self.rows.iter().find(|r| {
            r.row.id.eq_ignore_ascii_case(id) && r.row.recipient.eq_ignore_ascii_case(recipient)
        })?;
        let status = self.status_now(opts, &r.row)?;
        let mut events = vec![(
            "Receive",
            None,
            format!(
                "The message was received from {} by the fake Graph (127.0.0.1).",
                r.row.sender
            ),
        )];
        if status != "gettingStatus" {
            events.extend(self.outcome(&r.row.recipient).events());
        }
        let value: Vec<Value> = events
            .into_iter()
            .enumerate()
            .map(|(i, (event, action, description))| {
                json!({
                    "dateTime": rfc3339(r.at + time::Duration::seconds(i as i64)),
                    "event": event,
                    "action": action,
                    "description": description,
                    "data": null,
                })
            })
            .collect();
        Some(json!({ "value": value }))
    }
}

impl super::FakeGraph {
    /// Trace rows for a message that went through the fake Exchange's SMTP
    /// instead of Graph (one per recipient, as for a Graph delivery).
    /// `message_id` as in the message (brackets added when missing; empty:
    /// one is made up, as Exchange adds one).
    pub fn record_trace(
        &self,
        message_id: &str,
        sender: &str,
        recipients: &[String],
        subject: &str,
        size: u64,
    ) {
        self.shared
            .lock()
            .trace
            .record(Some(message_id), sender, recipients, subject, size);
    }

    /// What the trace says became of mail to `recipient` (case-insensitive),
    /// for its rows existing and future. Default [`TraceOutcome::Delivered`].
    pub fn set_trace_outcome(&self, recipient: &str, outcome: TraceOutcome) {
        self.shared.lock().trace.set_outcome(recipient, outcome);
    }

    /// The decoded `$filter` of every list request that had one, in order
    /// (refused ones too).
    pub fn trace_filters(&self) -> Vec<String> {
        self.shared.lock().trace.filters.clone()
    }

    /// All trace rows, oldest first, with the status a list would show now.
    pub fn trace_rows(&self) -> Vec<TraceRow> {
        self.shared.lock().trace.rows(&self.shared.opts.trace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_get_brackets_and_failures_a_description() {
        assert_eq!(bracketed(Some("abc@x")), "<abc@x>");
        assert_eq!(bracketed(Some(" <abc@x> ")), "<abc@x>");
        assert!(bracketed(Some("")).ends_with(".prod.outlook.com>"));
        let TraceOutcome::Failed { description, .. } = TraceOutcome::failed("5.1.10") else {
            unreachable!()
        };
        assert!(description.starts_with("Reason: [{LED=550 5.1.10 RESOLVER.ADR.RecipientNotFound;"));
        assert_eq!(
            TraceOutcome::failed("5.9.9"),
            TraceOutcome::Failed {
                code: "5.9.9".into(),
                description: "550 5.9.9 Remote server returned an error".into()
            }
        );
    }
}
