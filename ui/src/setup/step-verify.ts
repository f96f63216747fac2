//! Steps 4–6 of the setup assistant: sign in (interactive / device code,
//! `sign_in` + `signin-finished`) or verify the app-only token
//! (`check_app_token`: its granted roles, SMTP.SendAsApp or not; in Graph
//! mode `get_permissions`: Mail.Send / Mail.ReadWrite, each missing one with
//! the engine's fix — never the token itself); run the
//! diagnostics inline, each failure with its fix; send a test message and
//! follow its id through `engine-event` to sent / failed / deferred.

import { clear, h } from "../dom";
import { formatRelative } from "../format";
import { api, errorText, on } from "../ipc";
import type { Account, AppToken, Check, EngineEvent, Permissions, SignIn } from "../types";
import { emailError } from "../validate";
import { defaultTestRecipient } from "./draft";
import type { Ctx, Step } from "./wizard";

const STATE_TEXT: Record<string, [string, string]> = {
  "signed-in": ["ok", "Signed in"], ready: ["ok", "Ready"], "signed-out": ["warn", "Not signed in yet"], "sign-in-needed": ["warn", "Sign-in needed"], "not-configured": ["warn", "Not configured"],
};
export const SEND_ROLE = "SMTP.SendAsApp";
/** Graph's permission to send (engine/src/auth/permissions.rs). */
export const GRAPH_SEND = "Mail.Send";

export function signInStep(ctx: Ctx): Step {
  let acct: Account | null = null;
  let pending: SignIn | null = null;
  let result: { ok: boolean; message: string } | null = null;
  let token: AppToken | null = null;
  let perms: Permissions | null = null;
  let tokenError = "";
  let busy = false;
  const el = h("div", { class: "setup-step" });

  async function loadAccount() { try { acct = await api.getAccount(); } catch { acct = null; } render(); }
  async function signIn(device: boolean) {
    result = null;
    try { pending = await api.signIn(device); } catch (e) { pending = null; result = { ok: false, message: errorText(e) }; }
    render();
  }
  async function checkToken() {
    busy = true; token = null; perms = null; tokenError = ""; render();
    try {
      if (ctx.state.choice?.mode === "graph") perms = await api.getPermissions();
      else token = await api.checkAppToken();
    } catch (e) { tokenError = errorText(e); }
    busy = false; render();
  }
  void on("signin-finished", (r) => { result = r; pending = null; void loadAccount(); }).then((un) => ctx.cleanup.push(un));

  function render() {
    const c = ctx.state.choice;
    const st = acct ? STATE_TEXT[acct.account.state] ?? ["warn", acct.account.state] : null;
    const state = st ? h("p", {}, "Account: ", h("span", { class: `pill pill-${st[0]}`, id: "setup-account-state", "data-state": acct!.account.state }, st[1])) : null;
    if (c?.mode === "graph") { renderGraph(state); return; }
    if (c?.mode !== "submission") { clear(el, h("p", { id: "setup-signin-none" }, "Nothing to sign in on this route: Microsoft trusts the connector or your domains. The check in the next step tries the way to Microsoft.")); return; }
    if (c.signIn === "password") { clear(el, h("p", { id: "setup-signin-none" }, "Postern signs in with the stored password whenever it sends; the check in the next step tries it now."), state); return; }
    if (c.signIn === "client-credentials") {
      const has = token?.roles.includes(SEND_ROLE);
      clear(el,
        h("p", {}, "Postern fetches a token with the stored client secret and shows which permissions Microsoft granted the app (never the token itself)."),
        h("div", { class: "actions" }, h("button", { class: `btn${token || tokenError ? "" : " primary"}`, type: "button", id: "setup-check-token", disabled: busy, onclick: () => void checkToken() }, busy ? "Asking Microsoft…" : token || tokenError ? "Fetch again" : "Fetch a token and show its permissions")),
        tokenError ? h("p", { class: "banner banner-bad", role: "status", id: "setup-token-error" }, tokenError) : null,
        token ? h("div", { class: "panel", id: "setup-token" },
          h("p", { class: `banner banner-${has ? "ok" : "bad"}`, role: "status", id: "setup-token-verdict", "data-send": String(has) }, has
            ? `${SEND_ROLE} is granted: Postern may send as the mailbox.`
            : `${SEND_ROLE} is missing: in the app registration → API permissions, add Office 365 Exchange Online → Application permissions → ${SEND_ROLE}, press "Grant admin consent", then fetch again.`),
          h("dl", { class: "facts wide" },
            h("dt", {}, "Granted permissions"), h("dd", {}, token.roles.length ? h("ul", { class: "plain roles", id: "setup-roles" }, token.roles.map((r) => h("li", { class: r === SEND_ROLE ? "role-send" : "" }, h("span", { class: "mono" }, r)))) : h("span", { class: "muted", id: "setup-roles" }, "none (admin consent not given yet)")),
            h("dt", {}, "For"), h("dd", { class: "mono" }, token.audience),
            h("dt", {}, "Token expires"), h("dd", {}, formatRelative(token.expires_at, Date.now())))) : null,
        state);
      return;
    }
    const device = c.signIn === "device-code";
    const browserBtn = h("button", { class: `btn${device ? "" : " primary"}`, type: "button", id: "setup-signin-browser", onclick: () => void signIn(false) }, "Sign in with the browser");
    const deviceBtn = h("button", { class: `btn${device ? " primary" : ""}`, type: "button", id: "setup-signin-device", onclick: () => void signIn(true) }, "Sign in with a code on another device");
    clear(el,
      h("p", {}, "Sign in once as the mailbox (", h("strong", {}, String(ctx.state.config.upstream?.mailbox ?? "")), "). Postern keeps the sign-in in the OS keychain and renews it by itself."),
      h("div", { class: "actions" }, device ? [deviceBtn, browserBtn] : [browserBtn, deviceBtn]),
      pending?.kind === "browser" ? h("div", { class: "panel", id: "setup-signin-pending" }, h("p", {}, "A browser window was opened. If it did not appear, open this address:"), h("p", { class: "mono selectable" }, pending.url), h("p", { class: "muted" }, "Waiting for Microsoft…")) : null,
      pending?.kind === "device" ? h("div", { class: "panel device-code", id: "setup-signin-pending" }, h("p", {}, "On any phone or computer, open ", h("strong", { class: "mono selectable" }, pending.verification_uri), " and enter this code:"),
        h("p", { class: "code selectable", id: "setup-device-code" }, pending.user_code), h("p", { class: "muted" }, "Waiting for Microsoft…")) : null,
      result ? h("p", { class: `banner banner-${result.ok ? "ok" : "bad"}`, role: "status", id: "setup-signin-result" }, result.message) : null,
      state);
  }

  /** Graph, app-only: the permissions the engine read from the token, each missing one with its fix. */
  function renderGraph(state: HTMLElement | null) {
    const fetched = perms || tokenError;
    const send = perms ? !perms.missing.some((m) => m.permission === GRAPH_SEND) : false;
    clear(el,
      h("p", {}, "Postern asks Microsoft for a token with the stored client secret and shows which Microsoft Graph permissions were granted to the app (never the token itself)."),
      h("div", { class: "actions" }, h("button", { class: `btn${fetched ? "" : " primary"}`, type: "button", id: "setup-check-token", disabled: busy, onclick: () => void checkToken() }, busy ? "Asking Microsoft…" : fetched ? "Fetch again" : "Fetch a token and show its permissions")),
      tokenError ? h("p", { class: "banner banner-bad", role: "status", id: "setup-token-error" }, tokenError) : null,
      perms ? h("div", { class: "panel", id: "setup-permissions" },
        h("p", { class: `banner banner-${!perms.missing.length ? "ok" : send ? "warn" : "bad"}`, role: "status", id: "setup-token-verdict", "data-send": String(send), "data-missing": String(perms.missing.length) },
          !perms.missing.length ? "A token is issued, and Mail.Send and Mail.ReadWrite are granted: Postern may send as the mailbox, big scans included."
            : send ? "A token is issued and Mail.Send is granted, but a permission is missing (below)."
            : "A token is issued, but Microsoft Graph will refuse every message: Mail.Send is missing (below)."),
        perms.missing.length ? h("ul", { class: "plain warnings", id: "setup-missing" }, perms.missing.map((m) => h("li", { class: "missing", "data-permission": m.permission },
          h("p", {}, h("strong", { class: "mono" }, m.permission), " is not granted. ", m.effect),
          h("p", { class: "check-fix" }, h("strong", {}, "Fix: "), h("span", { class: "selectable" }, m.fix), " Then fetch again.")))) : null,
        h("dl", { class: "facts wide" },
          h("dt", {}, "Granted permissions"), h("dd", {}, perms.granted.length ? h("ul", { class: "plain roles", id: "setup-roles" }, perms.granted.map((r) => h("li", { class: r === GRAPH_SEND ? "role-send" : "" }, h("span", { class: "mono" }, r)))) : h("span", { class: "muted", id: "setup-roles" }, "none (admin consent not given yet)")),
          h("dt", {}, "For"), h("dd", { class: "mono" }, perms.audience),
          h("dt", {}, "Token expires"), h("dd", {}, formatRelative(perms.expires_at, Date.now())))) : null,
      state);
  }

  return {
    title: "Sign in or verify",
    el,
    enter: () => {
      render(); void loadAccount();
      const c = ctx.state.choice;
      if ((c?.mode === "graph" || (c?.mode === "submission" && c.signIn === "client-credentials")) && !busy) void checkToken();
    },
  };
}

const VERDICT: Record<string, string> = { ok: "OK", warn: "Warning", fail: "Failed", skip: "Skipped" };

export function checkStep(ctx: Ctx): Step {
  /** The save the checks last ran against (-1: never). */
  let ranFor = -1;
  const list = h("ol", { class: "checks", id: "setup-checks" });
  const summary = h("p", { class: "muted", role: "status", id: "setup-checks-summary" });
  const run = h("button", { class: "btn", type: "button", id: "setup-run-checks", onclick: () => void go() }, "Run the checks again");
  const el = h("div", { class: "setup-step" }, h("p", {}, "The same checks as Diagnostics: the config, the keychain, the listener, DNS, the way to Microsoft, TLS and the sign-in. No mail is sent."), h("div", { class: "toolbar" }, run, summary), list);

  async function go() {
    ranFor = ctx.state.saves; run.disabled = true; summary.textContent = "Running checks…"; clear(list);
    let checks: Check[];
    try { checks = await api.runDiagnostics(); } catch (e) { summary.textContent = `The checks could not run: ${errorText(e)}`; run.disabled = false; return; }
    run.disabled = false;
    const n = (v: string) => checks.filter((c) => c.verdict === v).length;
    summary.textContent = n("fail") ? `${n("fail")} check(s) failed, ${n("warn")} warning(s): fix them and run the checks again.` : n("warn") ? `All passed, with ${n("warn")} warning(s).` : "Everything checks out.";
    clear(list, checks.map((c) => h("li", { class: `check check-${c.verdict}`, "data-id": c.id },
      h("span", { class: `verdict verdict-${c.verdict}` }, VERDICT[c.verdict] ?? c.verdict),
      h("div", {}, h("p", { class: "check-title" }, c.title), h("p", { class: "muted" }, c.found),
        c.fix && (c.verdict === "warn" || c.verdict === "fail") ? h("p", { class: "check-fix" }, h("strong", {}, "Fix: "), h("span", { class: "selectable" }, c.fix)) : null))));
  }
  return { title: "Check", el, enter: () => { if (ranFor !== ctx.state.saves) void go(); } };
}

type Outcome = { kind: "waiting" | "received" | "sent" | "failed" | "deferred"; text: string; fix?: string };

/** The outcome an engine event means for the test message, or null if it is not about it. */
export function testOutcome(e: EngineEvent, id: string): Outcome | null {
  if (!("id" in e) || e.id !== id) return null;
  switch (e.event) {
    case "received": return { kind: "received", text: "Postern has the test message and is sending it…" };
    case "sent": return { kind: "sent", text: `Delivered to Microsoft: ${e.reply}` };
    case "failed": return { kind: "failed", text: e.summary || e.reply, fix: e.fix };
    case "deferred": return { kind: "deferred", text: `Not sent yet: ${e.reason} Postern tries again ${formatRelative(e.next_attempt_unix, Date.now())}.` };
    default: return null;
  }
}

export function testStep(ctx: Ctx): Step {
  let id: string | null = null;
  let early: EngineEvent[] = [];
  let outcome: Outcome | null = null;
  let waitingForId = false;
  const to = h("input", { type: "text", id: "setup-test-to", name: "to", inputmode: "email", autocomplete: "off", spellcheck: "false", placeholder: "you@contoso.com", "aria-describedby": "setup-test-to-err" });
  const err = h("p", { class: "field-error", id: "setup-test-to-err" });
  const send = h("button", { class: "btn primary", type: "submit", id: "setup-send-test" }, "Send a test message");
  const result = h("div", { id: "setup-test-result", "aria-live": "polite" });
  const form = h("form", { class: "setup-test", novalidate: true }, h("div", { class: "field" }, h("label", { for: "setup-test-to" }, "Send a test message to"), h("div", { class: "row" }, to, send), err));
  const el = h("div", { class: "setup-step" }, h("p", {}, "Postern queues a short test message like a device would, and shows what Microsoft did with it."), form, result);

  const unsubscribe = ctx.store.onEvent((e) => {
    if (waitingForId) { early.push(e); return; }
    if (id) { const o = testOutcome(e, id); if (o && !(o.kind === "received" && outcome)) { outcome = o; render(); } }
  });
  ctx.cleanup.push(() => { unsubscribe(); });

  function render() {
    if (!outcome) { clear(result); return; }
    result.dataset.outcome = outcome.kind;
    const tone = outcome.kind === "sent" ? "ok" : outcome.kind === "failed" ? "bad" : outcome.kind === "deferred" ? "warn" : "busy";
    clear(result, h("div", { class: `explain explain-${tone === "busy" ? "warn" : tone}`, id: "setup-test-outcome" },
      h("p", { class: "explain-summary" }, outcome.text),
      outcome.fix ? h("p", { class: "explain-fix" }, h("strong", {}, "Fix: "), outcome.fix) : null,
      id ? h("p", { class: "muted small" }, "Message ", h("span", { class: "mono" }, id), " — also in the Queue.") : null));
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const addr = to.value.trim();
    const bad = emailError(addr);
    err.textContent = bad ?? "";
    if (bad) { to.setAttribute("aria-invalid", "true"); to.focus(); return; }
    to.removeAttribute("aria-invalid");
    send.disabled = true; id = null; outcome = { kind: "waiting", text: "Queuing the test message…" }; render();
    waitingForId = true; early = [];
    try {
      id = (await api.sendTest(addr)).id;
      outcome = { kind: "received", text: "Postern has the test message and is sending it…" };
      for (const e of early) { const o = testOutcome(e, id); if (o && o.kind !== "received") outcome = o; }
    } catch (e) { outcome = { kind: "failed", text: `Could not queue the test message: ${errorText(e)}` }; }
    waitingForId = false; early = [];
    send.disabled = false;
    render();
  });

  return { title: "Send a test", el, enter: () => { if (!to.value) to.value = defaultTestRecipient(ctx.state.config); } };
}
