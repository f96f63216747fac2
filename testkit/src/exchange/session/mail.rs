//! The mail transaction part of a session: MAIL, RCPT, DATA, BDAT, and
//! the checks and recording at the end of a message.

use super::super::data::DataReceiver;
use super::super::{Fault, Received, Role, Stage, MAX_RECIPIENTS, QUOTA_REPLY};
use super::{Closed, DataReceiverBdat, Flow, Injected, Session, READ_CHUNK};

impl Session {
    pub(super) async fn mail(&mut self, arg: &str) -> Flow {
        if !self.helo {
            return self.reply("503 5.5.2 Send hello first").await;
        }
        let opts = &self.shared.opts;
        match opts.role {
            Role::Submission if self.auth.is_none() => {
                return self
                    .reply("530 5.7.57 Client not authenticated to send mail")
                    .await;
            }
            Role::Connector if self.tls_version.is_none() => {
                return self
                    .reply("530 5.7.0 Must issue a STARTTLS command first")
                    .await;
            }
            Role::Connector => {
                if let Some(name) = &opts.required_client_cert_name {
                    if !self
                        .client_cert_names
                        .iter()
                        .any(|n| n.eq_ignore_ascii_case(name))
                    {
                        return self
                            .reply("550 5.7.64 TenantAttribution; Relay Access Denied")
                            .await;
                    }
                }
            }
            _ => {}
        }
        if self.mail_from.is_some() {
            return self.reply("503 5.5.1 Sender already specified").await;
        }
        let Some((addr, params)) = parse_path(arg, "FROM:") else {
            return self.reply("501 5.5.4 Invalid arguments").await;
        };
        let declared = params.iter().find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.eq_ignore_ascii_case("SIZE")
                .then(|| v.parse::<usize>().ok())?
        });
        if declared.is_some_and(|size| size > opts.max_message_bytes) {
            return self
                .reply("552 5.3.4 Message size exceeds fixed maximum message size")
                .await;
        }
        if let Some((user, _)) = &self.auth {
            if self.slot.is_none() {
                self.slot = self.shared.try_slot(user);
            }
            if self.slot.is_none() {
                self.shared.lock().stats.throttle_replies += 1;
                return self
                    .reply("432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded")
                    .await;
            }
        }
        if let Injected::Replied = self.inject(Stage::MailFrom, None).await? {
            return Ok(());
        }
        self.mail_from = Some(addr);
        self.reply("250 2.1.0 Sender OK").await
    }

    pub(super) async fn rcpt(&mut self, arg: &str) -> Flow {
        if self.mail_from.is_none() {
            return self.reply("503 5.5.1 Need MAIL command").await;
        }
        let Some((addr, _)) = parse_path(arg, "TO:") else {
            return self.reply("501 5.5.4 Invalid arguments").await;
        };
        if self.rcpts.len() >= MAX_RECIPIENTS {
            return self.reply("452 4.5.3 Too many recipients").await;
        }
        let opts = &self.shared.opts;
        if opts.role == Role::DirectSend && !opts.internal_domains.is_empty() {
            let domain = addr.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
            if !opts
                .internal_domains
                .iter()
                .any(|d| d.eq_ignore_ascii_case(domain))
            {
                return self
                    .reply("550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain")
                    .await;
            }
        }
        if let Injected::Replied = self.inject(Stage::RcptTo, Some(&addr)).await? {
            return Ok(());
        }
        self.rcpts.push(addr);
        self.reply("250 2.1.5 Recipient OK").await
    }

    /// Whether a message may start: a reply is owed otherwise.
    fn transaction_error(&self) -> Option<&'static str> {
        if self.mail_from.is_none() {
            Some("503 5.5.1 Need MAIL command")
        } else if self.rcpts.is_empty() {
            Some("554 5.5.1 Error: no valid recipients")
        } else {
            None
        }
    }

    pub(super) async fn data(&mut self) -> Flow {
        if let Some(e) = self.transaction_error() {
            return self.reply(e).await;
        }
        match self.shared.take_fault(Stage::Data, None) {
            Some(Fault::Reply { reply, .. }) => return self.reply(&reply).await,
            Some(Fault::DropConnection { .. }) => {
                self.reply("354 Start mail input; end with <CRLF>.<CRLF>")
                    .await?;
                if self.buf.is_empty() {
                    self.fill().await?;
                }
                self.shared
                    .transcript(self.id, "-- fault: drop in the middle of DATA");
                return Err(Closed);
            }
            _ => {}
        }
        self.reply("354 Start mail input; end with <CRLF>.<CRLF>")
            .await?;
        let mut receiver = DataReceiver::new(self.shared.opts.max_message_bytes);
        loop {
            if let Some(used) = receiver.feed(&self.buf) {
                self.buf.drain(..used);
                break;
            }
            self.buf.clear();
            self.fill().await?;
        }
        self.shared.transcript(
            self.id,
            &format!("C: <{} bytes of content>", receiver.total),
        );
        let (too_big, bare_lf) = (receiver.too_big, receiver.bare_lf);
        self.finish(receiver.into_content(), too_big, bare_lf).await
    }

    pub(super) async fn bdat(&mut self, arg: &str) -> Flow {
        let mut parts = arg.split_whitespace();
        let size = parts.next().and_then(|s| s.parse::<usize>().ok());
        let last = parts.next().is_some_and(|s| s.eq_ignore_ascii_case("LAST"));
        let Some(size) = size else {
            return self.reply("501 5.5.4 Invalid arguments").await;
        };
        // The chunk is read whatever happens next, so the stream stays in step.
        let limit = self.shared.opts.max_message_bytes;
        let error = self.transaction_error();
        let bdat = self.bdat.get_or_insert(DataReceiverBdat {
            content: Vec::new(),
            too_big: false,
        });
        let mut left = size;
        loop {
            let take = left.min(self.buf.len());
            let room = limit.saturating_sub(bdat.content.len());
            bdat.content.extend_from_slice(&self.buf[..take.min(room)]);
            bdat.too_big |= take > room;
            self.buf.drain(..take);
            left -= take;
            if left == 0 {
                break;
            }
            let mut chunk = vec![0u8; READ_CHUNK];
            let n = self.conn.read(&mut chunk).await?;
            if n == 0 {
                return Err(Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        self.shared
            .transcript(self.id, &format!("C: <{size} bytes of BDAT chunk>"));
        if let Some(e) = error {
            self.bdat = None;
            return self.reply(e).await;
        }
        if !last {
            return self
                .reply(&format!("250 2.6.0 CHUNK received OK, {size} octets"))
                .await;
        }
        let bdat = self.bdat.take().expect("set above");
        self.finish(bdat.content, bdat.too_big, false).await
    }

    /// The end of a message's content: fault, size and bare-LF checks, then
    /// record and answer 250.
    async fn finish(&mut self, content: Vec<u8>, too_big: bool, bare_lf: bool) -> Flow {
        let injected = self.inject(Stage::DataEnd, None).await?;
        let result = if let Injected::Replied = injected {
            Ok(())
        } else if too_big {
            self.reply("552 5.3.4 Message size exceeds fixed maximum message size")
                .await
        } else if bare_lf {
            self.reply(
                "550 5.6.11 SMTPSEND.BareLinefeedsAreIllegal; message contains bare linefeeds, \
                 which cannot be sent via DATA and receiving system does not support BDAT",
            )
            .await
        } else {
            let msg = Received {
                mail_from: self.mail_from.clone().unwrap_or_default(),
                rcpt_to: self.rcpts.clone(),
                data: content,
                auth_user: self.auth.as_ref().map(|(u, _)| u.clone()),
                auth_mechanism: self.auth.as_ref().map(|(_, m)| m.clone()),
                tls: self.tls_version.is_some(),
                tls_version: self.tls_version.clone(),
                connection_id: self.id,
                client_cert_names: self.client_cert_names.clone(),
            };
            if self.shared.record(msg) {
                let id = format!("<{:016X}@{}>", rand::random::<u64>(), self.host());
                let line = format!("250 2.0.0 OK {id} [Hostname={}]", self.host());
                self.reply(&line).await
            } else {
                self.reply(QUOTA_REPLY).await
            }
        };
        self.reset_transaction();
        result
    }
}

/// `FROM:<addr> PARAMS...` → (addr, params). Accepts a space after the colon
/// and an address without brackets.
fn parse_path(arg: &str, keyword: &str) -> Option<(String, Vec<String>)> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start();
    let (addr, params) = if let Some(inner) = rest.strip_prefix('<') {
        let end = inner.find('>')?;
        (&inner[..end], &inner[end + 1..])
    } else {
        rest.split_once(' ').unwrap_or((rest, ""))
    };
    if addr.contains(['<', '>', ' ']) {
        return None;
    }
    let params = params.split_whitespace().map(str::to_string).collect();
    Some((addr.to_string(), params))
}

#[cfg(test)]
mod tests {
    use super::parse_path;

    /// (argument, keyword, expected (address, params)).
    type Case = (
        &'static str,
        &'static str,
        Option<(&'static str, &'static [&'static str])>,
    );

    #[test]
    fn paths() {
        let cases: &[Case] = &[
            ("FROM:<a@b.c>", "FROM:", Some(("a@b.c", &[]))),
            (
                "from: <a@b.c> SIZE=10 BODY=8BITMIME",
                "FROM:",
                Some(("a@b.c", &["SIZE=10", "BODY=8BITMIME"])),
            ),
            ("FROM:<>", "FROM:", Some(("", &[]))),
            ("TO:a@b.c", "TO:", Some(("a@b.c", &[]))),
            ("TO:<a@b.c", "TO:", None),
            ("TO<a@b.c>", "TO:", None),
            ("", "FROM:", None),
            ("FROM:<a<b>", "FROM:", None),
            ("FRÖM:<a>", "FROM:", None),
        ];
        for (arg, kw, expected) in cases {
            let got = parse_path(arg, kw);
            let expected =
                expected.map(|(a, p)| (a.to_string(), p.iter().map(|s| s.to_string()).collect()));
            assert_eq!(got, expected, "{arg}");
        }
    }
}
