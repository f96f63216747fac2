//! Account page: which mailbox Postern sends as, the sign-in flow and state,
//! when the access token expires (never the token itself), and Sign in
//! (browser or device code) / Sign out. Completion arrives as `signin-finished`.
//! With a token to be had it also shows the permissions Microsoft granted
//! (`get_permissions`: the token's `roles` or `scp`, never the token) and a
//! plain warning per missing one; Graph app-only names the app and tenant.

import { clear, h } from "../dom";
import { formatRelative } from "../format";
import { api, errorText, on } from "../ipc";
import { secretsPanel } from "../secrets-panel";
import { appOnlyLine, isGraphAppOnly, permissionView, wantsPermissions } from "../permissions";
import type { Account, AccountState, Permissions, SignIn, SignInFinished } from "../types";
import type { PageView } from "./page";

const STATE_TEXT: Record<AccountState, [string, string]> = {
  "signed-in": ["ok", "Signed in"],
  ready: ["ok", "Ready (app sign-in with the stored secret)"],
  "signed-out": ["warn", "Not signed in yet"],
  "sign-in-needed": ["bad", "Sign-in needed"],
  "not-configured": ["warn", "Not configured"],
};

export function accountPage(): PageView {
  let acct: Account | null = null;
  let error = "";
  let pending: SignIn | null = null;
  let result: SignInFinished | null = null;
  let perms: Permissions | null = null;
  let permsError = "";
  const body = h("div", { class: "panel" });
  const permBox = h("div", { class: "panel", id: "permissions", hidden: true });
  const flowBox = h("div", { id: "signin-flow", "aria-live": "polite" });
  const secrets = secretsPanel("account", () => (acct ? { auth: acct.auth, flow: acct.flow } : null), { deviceUsers: false });
  const el = h("div", { class: "page page-account" }, body, permBox, flowBox, secrets.el);

  async function load() {
    try { acct = await api.getAccount(); error = ""; } catch (e) { error = errorText(e); }
    render();
    void secrets.load();
    await loadPermissions();
  }

  async function loadPermissions() {
    perms = null; permsError = "";
    if (acct && wantsPermissions(acct)) {
      try {
        perms = await api.getPermissions();
        // Reading them may have fetched the token: show its expiry too.
        acct = await api.getAccount().catch(() => acct);
        render();
      } catch (e) { permsError = errorText(e); }
    }
    renderPermissions();
  }

  function renderPermissions() {
    if (!acct || !wantsPermissions(acct)) { permBox.hidden = true; clear(permBox); return; }
    permBox.hidden = false;
    if (permsError) { clear(permBox, h("h3", {}, "Permissions"), h("p", { class: "banner banner-bad", id: "permissions-error" }, `Could not read the permissions: ${permsError}`)); return; }
    if (!perms) { clear(permBox, h("h3", {}, "Permissions"), h("p", { class: "empty" }, "Reading the permissions…")); return; }
    const v = permissionView(perms);
    clear(permBox,
      h("h3", {}, v.heading),
      v.granted.length
        ? h("ul", { class: "grants", id: "granted" }, v.granted.map((g) => h("li", { class: "mono" }, g)))
        : h("p", { class: "muted", id: "granted" }, "None: Microsoft granted no permissions yet."),
      v.warnings.map((w) => h("div", { class: "banner banner-warn warning", "data-permission": w.permission }, h("p", {}, w.text), h("p", { class: "small" }, w.fix))),
      h("p", { class: "muted small" }, `Read from the access token Postern holds (for ${perms.audience || "Microsoft"}); the token itself never leaves Postern.`));
  }

  async function signIn(device: boolean) {
    result = null;
    try { pending = await api.signIn(device); } catch (e) { result = { ok: false, message: errorText(e) }; pending = null; }
    render();
  }

  function render() {
    if (error) { clear(body, h("p", { class: "banner banner-bad" }, `Could not read the account: ${error}`)); return; }
    if (!acct) { clear(body, h("p", { class: "empty" }, "Loading…")); return; }
    const a = acct.account;
    const [tone, label] = a.state === "ready" && acct.flow !== "client-credentials"
      ? ["ok", "Signed in (a new access token is fetched when mail goes out)"]
      : STATE_TEXT[a.state] ?? ["warn", a.state];
    const exp = a.state === "signed-in" ? a.access_token_expires_at : null;
    const reason = "reason" in a ? a.reason : null;
    const interactive = acct.flow !== "client-credentials" && acct.auth === "oauth";
    const appLine = appOnlyLine(acct);
    clear(body,
      appLine ? h("p", { class: "banner banner-ok", id: "app-only" }, appLine) : null,
      h("dl", { class: "facts wide" },
        h("dt", {}, "Mailbox"), h("dd", {}, acct.mailbox || h("span", { class: "muted" }, "not set (Settings → Upstream)")),
        h("dt", {}, "Delivery"), h("dd", {}, acct.mode === "graph" ? "Microsoft Graph" : `SMTP (${acct.mode})`),
        h("dt", {}, "Sign-in"), h("dd", {}, acct.auth === "oauth" ? `OAuth, ${acct.flow}` : acct.auth),
        h("dt", {}, "Tenant"), h("dd", {}, acct.tenant || "—"),
        h("dt", {}, "App (client) id"), h("dd", { class: "mono" }, acct.client_id || "—"),
        h("dt", {}, "State"), h("dd", {}, h("span", { class: `pill pill-${tone}`, id: "account-state" }, label), reason ? h("p", { class: "muted", id: "account-reason" }, reason) : null),
        h("dt", {}, "Access token"), h("dd", {}, exp ? `${exp > Date.now() ? "expires" : "expired"} ${formatRelative(exp, Date.now())} (renewed automatically 5 minutes before)` : "none held")),
      h("div", { class: "actions" },
        interactive ? h("button", { class: "btn primary", id: "signin-browser", onclick: () => signIn(false) }, "Sign in with the browser") : null,
        interactive ? h("button", { class: "btn", id: "signin-device", onclick: () => signIn(true) }, "Sign in with a code on another device") : null,
        h("button", { class: "btn danger", id: "signout", disabled: a.state !== "signed-in" && a.state !== "ready", onclick: async () => { try { await api.signOut(); } catch (e) { result = { ok: false, message: errorText(e) }; } await load(); } }, "Sign out")),
      !interactive && acct.auth === "oauth" ? h("p", { class: "muted" }, isGraphAppOnly(acct)
        ? "The client-credentials flow signs in as the app itself with the secret stored by `postern account set-secret`; nobody signs in here. Microsoft Graph lets the app send as the mailbox once an admin consented to Mail.Send (and Mail.ReadWrite for big scans)."
        : "The client-credentials flow signs in as the app itself with the secret stored by `postern account set-secret`; nobody signs in here.") : null);
    clear(flowBox,
      pending?.kind === "browser" ? h("div", { class: "panel" }, h("h3", {}, "Finish signing in in your browser"), h("p", {}, "A browser window was opened. If it did not appear, open this address:"), h("p", { class: "mono selectable" }, pending.url), h("p", { class: "muted" }, "Waiting for Microsoft…")) : null,
      pending?.kind === "device" ? h("div", { class: "panel device-code" }, h("h3", {}, "Sign in on another device"),
        h("p", {}, "On any phone or computer, open ", h("strong", { class: "mono selectable" }, pending.verification_uri), " and enter this code:"),
        h("p", { class: "code selectable", id: "device-code" }, pending.user_code),
        h("p", { class: "muted" }, pending.message), h("p", { class: "muted" }, "Waiting for Microsoft…")) : null,
      result ? h("p", { class: `banner banner-${result.ok ? "ok" : "bad"}`, role: "status" }, result.message) : null);
  }

  void on("signin-finished", (r) => { result = r; pending = null; void load(); });
  render();
  return { el, shown: () => void load() };
}
