//! Realistic sample data for the mocked shell (e2e tests and screenshots):
//! a small office's queue, throttle state, account, settings and logs.

import type { Account, Check, Config, HistoryPoint, LogLine, MessageInfo, NotificationSettings, Status } from "../src/types";
import type { PendingView } from "../src/ipc";

const MIN = 60_000;

export function fixtures(now: number) {
  const msg = (id: string, ago: number, over: Partial<MessageInfo>): MessageInfo => ({
    id, from: "scanner@contoso.com", to: ["accounts@contoso.com"], subject: "Scan", size: 245_000,
    received_at: now - ago * MIN, client: { peer: "192.168.1.20", helo: "RICOH-MP-C3004", auth_user: null, tls: false },
    state: "sent", attempts: 1, next_attempt: null, last_reply: "250 2.0.0 OK <DM6PR…> [Hostname=AM0PR…]", summary: null, fix: null,
    recipients: [], updated_at: now - ago * MIN + 4000, rewrite_sender: false, ...over,
  });
  const queue: MessageInfo[] = [
    msg("01JH8Z3K2Q", 1, { subject: "Scanned document from RICOH MP C3004", to: ["anna.berg@contoso.com"], state: "queued", attempts: 0, last_reply: null, size: 1_840_000 }),
    msg("01JH8Z1Y7M", 3, { subject: "Invoice INV-2024-0117", from: "billing@contoso.com", to: ["customer@fabrikam.com", "ar@contoso.com"], state: "deferred", attempts: 2, next_attempt: now + 3 * MIN, last_reply: "451 4.7.500 Server busy. Please try again later.", client: { peer: "192.168.1.41", helo: "erp01", auth_user: "erp", tls: true } }),
    msg("01JH8YZW0C", 6, { subject: "Scan to email: Contract signed", from: "reception@fabrikam.com", to: ["legal@contoso.com"], state: "failed", attempts: 1,
      last_reply: "550 5.7.60 SMTP; Client does not have permissions to send as this sender",
      summary: "The mailbox scanner@contoso.com may not send as reception@fabrikam.com.",
      fix: "Give scanner@contoso.com Send As on reception@fabrikam.com in the Exchange admin center, or resend as the mailbox (the original sender moves to Reply-To).",
      recipients: [{ address: "legal@contoso.com", state: "failed", reply: "550 5.7.60" }] }),
    msg("01JH8YV1PA", 12, { subject: "Daily backup report", from: "nas@contoso.com", to: ["it@contoso.com"], size: 8_200, client: { peer: "192.168.1.5", helo: "nas", tls: false } }),
    msg("01JH8YR5DD", 18, { subject: "Scanned document from RICOH MP C3004", to: ["jonas.k@contoso.com"], size: 3_120_000 }),
    msg("01JH8YK9B2", 35, { subject: "Delivery note 4471", from: "warehouse@contoso.com", to: ["dispatch@contoso.com"], size: 96_000 }),
    msg("01JH8Y8XZ1", 64, { subject: "Scanned document from RICOH MP C3004", to: ["old.employee@contoso.com"], state: "failed",
      last_reply: "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
      summary: "old.employee@contoso.com does not exist.", fix: "Check the address in the scanner's address book.",
      recipients: [{ address: "old.employee@contoso.com", state: "failed", reply: "550 5.1.10" }] }),
    msg("01JH8XW2TQ", 140, { subject: "Timesheets week 3", from: "hr@contoso.com", to: ["payroll@contoso.com"], size: 412_000 }),
  ];
  const transcript = (m: MessageInfo) => [
    "S: 220 AM0PR02CA0001.outlook.office365.com Microsoft ESMTP MAIL Service ready",
    "C: EHLO postern.contoso.local", "S: 250-AM0PR02CA0001.outlook.office365.com Hello", "S: 250 STARTTLS",
    "C: STARTTLS", "S: 220 2.0.0 SMTP server ready", "   (TLS 1.3, TLS_AES_256_GCM_SHA384)",
    "C: AUTH XOAUTH2 [redacted]", "S: 235 2.7.0 Authentication successful",
    `C: MAIL FROM:<${m.from}> SIZE=${m.size}`, "S: 250 2.1.0 Sender OK",
    ...m.to.map((t) => `C: RCPT TO:<${t}>`), "S: 250 2.1.5 Recipient OK", "C: DATA", "S: 354 Start mail input",
    "C: [message, " + m.size + " bytes]", `S: ${m.last_reply ?? "…"}`, "C: QUIT",
  ].join("\n");
  const status: Status = {
    running: true, paused: false,
    queue: { queued: 1, sending: 0, deferred: 1, held: 0, sent: 5, failed: 2 },
    attention: null, connections: 2,
    throttle: {
      messages_per_minute: 30, messages_last_minute: 22, next_slot_in_secs: 14,
      recipients_per_day: 10000, recipient_window_secs: 86400, recipients_in_window: 3412, recipients_left: 6588,
      recipients_free_in_secs: 5 * 3600 + 12 * 60, quota_blocked_for_secs: null, busy_for_secs: null,
      eta_secs: 200, eta_unix_ms: now + 200_000,
    },
    account: { state: "signed-in", access_token_expires_at: now + 47 * MIN },
    upstream: { mode: "submission", host: "smtp.office365.com", port: 587, mailbox: "scanner@contoso.com", auth: "oauth" },
    listening: ["0.0.0.0:2525"], spool: "/home/office/.local/share/postern/spool",
  };
  const hourStart = Math.floor(now / 3600_000) * 3600_000;
  const shape = [2, 1, 0, 0, 0, 0, 1, 4, 18, 26, 31, 22, 14, 19, 27, 24, 16, 9, 5, 3, 2, 1, 2, 6];
  const history: HistoryPoint[] = shape.map((m, i) => ({ at: hourStart - (23 - i) * 3600_000, messages: m * 4, recipients: m * 4 * (i % 5 === 0 ? 9 : 3) }));
  const account: Account = { mailbox: "scanner@contoso.com", auth: "oauth", flow: "interactive", client_id: "7f3c2a10-5b1e-4d2c-9a8e-2c1f0b9e6d44", tenant: "contoso.com", account: status.account };
  const config: Config = {
    listener: { listen: ["0.0.0.0:2525"], tls_listen: [], allow: ["192.168.1.0/24", "127.0.0.0/8"], require_auth: false, users: ["erp"], max_message_bytes: 36700160, max_recipients: 500, max_connections: 100, hostname: null, tls_cert: null, tls_key: null, idle_timeout: "5m", data_timeout: "10m" },
    upstream: { mode: "submission", host: "", port: 587, mailbox: "scanner@contoso.com", auth: "oauth", ca_file: null, rewrite_sender: false, max_recipients: 500, timeout: "60s", domain: "", accepted_domains: [], client_cert: null, client_key: null },
    oauth: { authority: "https://login.microsoftonline.com", tenant: "contoso.com", client_id: "7f3c2a10-5b1e-4d2c-9a8e-2c1f0b9e6d44", flow: "interactive" },
    limits: { messages_per_minute: 30, recipients_per_day: 10000, max_connections: 3, recipient_window: "24h" },
    delivery: { retry_first: "1m", retry_max: "1h", give_up_after: "2d", hold_recheck: "10m", idle_close: "30s" },
    spool: { dir: null, keep_history: "7d" }, dns: { servers: [] },
  };
  const checks: Check[] = [
    { id: "config", title: "Configuration", verdict: "ok", found: "/home/office/.config/postern/postern.toml is valid" },
    { id: "keychain", title: "OS keychain", verdict: "ok", found: "Secret Service reachable; a refresh token is stored" },
    { id: "listener", title: "Listener", verdict: "ok", found: "accepting on 0.0.0.0:2525" },
    { id: "dns-mx", title: "MX record for contoso.com", verdict: "ok", found: "contoso-com.mail.protection.outlook.com (preference 0)" },
    { id: "dns-spf", title: "SPF for contoso.com", verdict: "warn", found: "v=spf1 ip4:203.0.113.7 -all (does not include spf.protection.outlook.com)", fix: "Add include:spf.protection.outlook.com to the SPF record of contoso.com." },
    { id: "dns-dkim", title: "DKIM for contoso.com", verdict: "skip", found: "not checked in submission mode" },
    { id: "connect", title: "Connection to smtp.office365.com:587", verdict: "ok", found: "connected in 38 ms" },
    { id: "tls", title: "TLS", verdict: "ok", found: "TLS 1.3, certificate valid for smtp.office365.com" },
    { id: "auth", title: "Sign-in (XOAUTH2)", verdict: "fail", found: "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant", fix: "Set-CASMailbox -Identity scanner@contoso.com -SmtpClientAuthenticationDisabled $false" },
  ];
  const levels = ["INFO", "INFO", "DEBUG", "INFO", "WARN", "INFO", "ERROR", "INFO"];
  const texts = [
    "listener: accepted 192.168.1.20:51234 (RICOH-MP-C3004)", "spool: 01JH8Z3K2Q stored (1.8 MB, 1 recipient)", "throttle: slot granted (22/30 this minute)",
    "delivery: 01JH8YV1PA sent: 250 2.0.0 OK", "delivery: 01JH8Z1Y7M deferred: 451 4.7.500 Server busy; retry in 3 min",
    "auth: access token renewed, expires in 60 min", "delivery: 01JH8YZW0C failed: 550 5.7.60 Client does not have permissions to send as this sender",
    "listener: accepted 192.168.1.41:40022 (erp01, user erp, TLS)",
  ];
  const logs: LogLine[] = Array.from({ length: 40 }, (_, i) => ({ seq: i + 1, time: now - (40 - i) * 45_000, level: levels[i % levels.length], message: texts[i % texts.length] }));
  const notifications: NotificationSettings = { failed: true, sign_in: true, unreachable: true, budget: true, stuck: false };
  const pending = null as PendingView | null;
  return { queue, transcript, status, history, account, config, checks, logs, notifications, pending };
}
