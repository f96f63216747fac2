//! The mocked shell's data (e2e tests and screenshots): the real engine's
//! answers, written by `cargo test -p postern --lib fixtures`
//! (src-tauri/src/fixtures.rs) into e2e/fixtures/*.json — a queue with a
//! sent, a failed (5.7.60), a deferred, a sending and a queued message, the
//! status (also with send_as = "sender": each sender's mailbox), throttle history, account, settings and log lines;
//! and a Graph-mode run whose message to three recipients was followed in
//! the message trace (delivered, bounced 5.1.10, junk) with its status. Their times
//! are relative to a fixed "now"; they are shifted to the moment the page
//! is shown. Only the diagnostics are still written here (they need the
//! network and the keychain to run for real).

import type { Account, Check, ConfigForm, HistoryPoint, LogLine, MessageDetail, MessageInfo, NotificationSettings, Permissions, SettingsReply, Status, Validation } from "../src/types";
import type { PendingView } from "../src/ipc";
import statusJson from "./fixtures/status.json";
import statusSendAsJson from "./fixtures/status-send-as.json";
import queueJson from "./fixtures/queue.json";
import messagesJson from "./fixtures/messages.json";
import historyJson from "./fixtures/history.json";
import accountJson from "./fixtures/account.json";
import settingsJson from "./fixtures/settings.json";
import firstStartJson from "./fixtures/settings-first-start.json";
import validateFirstStartJson from "./fixtures/validate-first-start.json";
import validateBadJson from "./fixtures/validate-bad.json";
import logsJson from "./fixtures/logs.json";
import notificationsJson from "./fixtures/notifications.json";
import accountGraphJson from "./fixtures/account-graph.json";
import permissionsGraphJson from "./fixtures/permissions-graph.json";
import permissionsNoConsentJson from "./fixtures/permissions-graph-no-consent.json";
import validateGraphBadJson from "./fixtures/validate-graph-bad.json";
import queueTracedJson from "./fixtures/queue-traced.json";
import messagesTracedJson from "./fixtures/messages-traced.json";
import statusTracedJson from "./fixtures/status-traced.json";

/** The fixtures' "now" (src-tauri/src/fixtures.rs `NOW`). */
export const FIXTURE_NOW = 1_767_607_200_000;
const TIME_KEYS = new Set(["received_at", "updated_at", "next_attempt", "recheck_at", "time", "eta_unix_ms", "access_token_expires_at", "expires_at", "at", "checked_at", "last_poll", "next_poll"]);

/** A deep copy of `v` with every unix-ms time moved by `by`. */
export function shiftTimes<T>(v: T, by: number): T {
  const walk = (x: unknown, key: string): unknown => {
    if (Array.isArray(x)) return x.map((y) => walk(y, key));
    if (x && typeof x === "object") return Object.fromEntries(Object.entries(x).map(([k, y]) => [k, walk(y, k)]));
    if (typeof x === "number" && TIME_KEYS.has(key) && x > 1e12) return x + by;
    return x;
  };
  return walk(v, "") as T;
}

// The JSON modules' inferred types are checked against the generated ones here.
const engine = {
  status: statusJson as Status,
  statusSendAs: statusSendAsJson as Status,
  queue: queueJson as MessageInfo[],
  messages: messagesJson as Record<string, MessageDetail>,
  history: historyJson as HistoryPoint[],
  account: accountJson as Account,
  settings: settingsJson as SettingsReply,
  firstStart: firstStartJson as SettingsReply,
  validateFirstStart: validateFirstStartJson as Validation,
  validateBad: validateBadJson as Validation,
  logs: logsJson as LogLine[],
  notifications: notificationsJson as NotificationSettings,
  // Graph mode, app-only: the account, the token's permissions (Mail.Send
  // only; none at all), the engine's verdict on graph.endpoint = http://example.com.
  accountGraph: accountGraphJson as Account,
  permissionsGraph: permissionsGraphJson as Permissions,
  permissionsNoConsent: permissionsNoConsentJson as Permissions,
  validateGraphBad: validateGraphBadJson as Validation,
  // Graph mode with tracking: the traced message and the status once the trace told all.
  queueTraced: queueTracedJson as MessageInfo[],
  messagesTraced: messagesTracedJson as Record<string, MessageDetail>,
  statusTraced: statusTracedJson as Status,
};

export function fixtures(now: number) {
  const e = shiftTimes(structuredClone(engine), now - FIXTURE_NOW);
  const queue: MessageInfo[] = e.queue;
  const allMessages = { ...e.messages, ...e.messagesTraced };
  const transcript = (m: MessageInfo) => allMessages[m.id]?.transcript ?? "";
  const checks: Check[] = [
    { id: "config", title: "Configuration", verdict: "ok", found: "/home/office/.config/postern/postern.toml is valid", fix: "" },
    { id: "keychain", title: "OS keychain", verdict: "ok", found: "Secret Service reachable; a refresh token is stored", fix: "" },
    { id: "listener", title: "Listener", verdict: "ok", found: "accepting on 0.0.0.0:2525", fix: "" },
    { id: "dns-mx", title: "MX record for contoso.com", verdict: "ok", found: "contoso-com.mail.protection.outlook.com (preference 0)", fix: "" },
    { id: "dns-spf", title: "SPF for contoso.com", verdict: "warn", found: "v=spf1 ip4:203.0.113.7 -all (does not include spf.protection.outlook.com)", fix: "Add include:spf.protection.outlook.com to the SPF record of contoso.com." },
    { id: "dns-dkim", title: "DKIM for contoso.com", verdict: "skip", found: "not checked in submission mode", fix: "" },
    { id: "connect", title: "Connection to smtp.office365.com:587", verdict: "ok", found: "connected in 38 ms", fix: "" },
    { id: "tls", title: "TLS", verdict: "ok", found: "TLS 1.3, certificate valid for smtp.office365.com", fix: "" },
    { id: "auth", title: "Sign-in (XOAUTH2)", verdict: "fail", found: "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant", fix: "Set-CASMailbox -Identity scanner@contoso.com -SmtpClientAuthenticationDisabled $false" },
  ];
  const pending = null as PendingView | null;
  return {
    queue, transcript, messages: e.messages, status: e.status, statusSendAs: e.statusSendAs, history: e.history, account: e.account,
    config: e.settings.config as ConfigForm, configPath: e.settings.path, firstStart: e.firstStart,
    validateFirstStart: e.validateFirstStart, validateBad: e.validateBad,
    checks, logs: e.logs, notifications: e.notifications, pending,
    accountGraph: e.accountGraph, permissions: e.permissionsGraph as Permissions | null, permissionsNoConsent: e.permissionsNoConsent,
    validateGraphBad: e.validateGraphBad, queueTraced: e.queueTraced, statusTraced: e.statusTraced,
  };
}
