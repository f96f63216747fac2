//! Stands in for the Tauri shell in e2e tests and screenshots: mocks the IPC
//! with `@tauri-apps/api/mocks` (event mocking on), serves fixtures, records
//! every command, and lets the test emit events (`window.__mock.emit`).
//! Loaded before the built app by e2e/server.mjs; never part of ui/dist.

import { mockIPC, mockWindows } from "@tauri-apps/api/mocks";
import { emit } from "@tauri-apps/api/event";
import { fixtures } from "./fixtures";
import { setupCommand, setupMock } from "./setup-mocks";
import { validateConfig } from "../src/validate";
import type { ConfigForm } from "../src/types";

const params = new URLSearchParams(location.search);
const data = fixtures(Date.now());
if (params.get("scenario") === "attention") {
  data.status.attention = { summary: "Microsoft says SMTP AUTH is turned off for the tenant; 3 messages are held.", fix: "Run Set-CASMailbox -Identity scanner@contoso.com -SmtpClientAuthenticationDisabled $false, then Retry.", cause: "5.7.139", recheck_at: Date.now() + 600_000 };
  data.status.queue.held = 3;
}
if (params.get("scenario") === "empty") { data.queue = []; }
// `?scenario=send-as`: each sender sends from their own mailbox.
if (params.get("scenario") === "send-as") { data.status = data.statusSendAs; }
// `?scenario=graph`: Graph mode, app-only, the token holding Mail.Send only;
// `?scenario=graph-no-consent`: no permission granted at all.
if (params.get("scenario")?.startsWith("graph")) {
  data.account = data.accountGraph;
  data.config.upstream.mode = "graph";
  data.config.oauth.flow = "client-credentials";
  if (params.get("scenario") === "graph-no-consent") data.permissions = data.permissionsNoConsent;
  setupMock.secrets.client_secret = true; // signed in: the app's secret is stored
}
// `?scenario=traced`: Graph mode with tracking on; the traced message
// (delivered / bounced 5.1.10 / junk) first in the queue.
if (params.get("scenario") === "traced") { data.queue = [...data.queueTraced, ...data.queue]; data.status = data.statusTraced; }
// `?scenario=no-tracking`: a status without tracking (no engine running).
if (params.get("scenario") === "no-tracking") { data.status.tracking = null; data.status.running = false; }
// `?scenario=first-start`: no config file yet (the engine's defaults).
if (params.get("scenario") === "first-start") { data.config = structuredClone(data.firstStart.config) as ConfigForm; }
// `?open=ID`: the window was opened by a notification click on message ID.
if (params.get("open")) data.pending = { event: "open-message", payload: { id: params.get("open")! } };
const calls: { cmd: string; args: unknown }[] = [];

mockWindows("main");
mockIPC((cmd, args) => {
  calls.push({ cmd, args });
  const a = (args ?? {}) as Record<string, any>;
  switch (cmd) {
    case "get_status": return structuredClone(data.status);
    case "get_queue": return structuredClone(data.queue);
    case "get_message": {
      const m = data.queue.find((x) => x.id === a.id);
      if (!m) throw "No such message";
      return { ...structuredClone(m), transcript: data.transcript(m) };
    }
    case "retry": case "resend_rewritten": return { retried: 1 };
    case "retry_all": return { retried: 3 };
    case "delete_message": data.queue = data.queue.filter((m) => m.id !== a.id); return { deleted: a.id };
    case "set_paused": data.status.paused = a.paused; void emit("status-changed", data.status); return { paused: a.paused };
    case "get_throttle_history": return data.history;
    case "get_account": return data.account;
    case "get_permissions": if (!data.permissions) throw "Postern does not sign in with OAuth here"; return structuredClone(data.permissions);
    case "sign_in": return a.deviceCode
      ? { kind: "device", verification_uri: "https://microsoft.com/devicelogin", user_code: "FQK7-XW2P", message: "To sign in, use a web browser to open https://microsoft.com/devicelogin and enter the code FQK7-XW2P." }
      : { kind: "browser", url: "https://login.microsoftonline.com/contoso.com/oauth2/v2.0/authorize?client_id=7f3c…&code_challenge=…" };
    case "sign_out": return {};
    case "get_settings": return { path: data.configPath, config: structuredClone(data.config) };
    case "validate_settings": case "save_settings": {
      // The engine's own answer for an endpoint it refuses (e2e/fixtures/validate-graph-bad.json).
      const engineSays = (a.config as ConfigForm).graph?.endpoint === "http://example.com" ? data.validateGraphBad.errors : [];
      const errors = [...validateConfig(a.config as ConfigForm), ...engineSays];
      if (cmd === "save_settings" && !errors.length) data.config = structuredClone(a.config);
      return { ok: errors.length === 0, errors, restarted: cmd === "save_settings" && errors.length === 0 };
    }
    case "run_diagnostics": return data.checks;
    case "get_logs": return data.logs.filter((l) => a.since == null || l.seq > a.since);
    case "send_test": return { id: "01JH9TEST00" };
    case "take_pending": { const p = data.pending ?? null; data.pending = null; return p; }
    case "get_notification_settings": return data.notifications;
    case "set_notification_settings": data.notifications = a as any; return a;
    default: {
      const r = setupCommand(cmd, a, data, validateConfig);
      if (r === undefined) throw `unknown command ${cmd}`;
      return r;
    }
  }
}, { shouldMockEvents: true });

declare global { interface Window { __mock: unknown } }
window.__mock = {
  calls, data,
  emit: (event: string, payload: unknown) => emit(event, payload),
};
