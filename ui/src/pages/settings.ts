//! Settings page: a form over the config file's keys. Each value is checked
//! as you type with the client-side mirror of the config rules (validate.ts)
//! and by the engine (`validate_settings`); a bad value is explained right
//! under its field. Save → `save_settings` (written to the same TOML file).
//! Fields that do not apply to the chosen upstream mode are disabled with
//! the reason (Graph has no SMTP host or port and signs in only with OAuth);
//! the Microsoft Graph keys are shown only in Graph mode. `[tracking]`:
//! following sent messages in Microsoft's message trace.

import { clear, h } from "../dom";
import { api, errorText } from "../ipc";
import { secretsPanel } from "../secrets-panel";
import type { ConfigForm, FieldError, NotificationSettings, OAuthFlow, SendAs, UpstreamAuth, UpstreamMode } from "../types";
import { validateConfig } from "../validate";
import type { PageView } from "./page";

type Kind = "text" | "list" | "number" | "bool" | "select";
interface Field {
  key: string; label: string; kind: Kind; help?: string; options?: string[]; placeholder?: string;
  /** Why the field does not apply in this mode (it is then disabled and empty), or null. */
  notIn?: (mode: UpstreamMode) => string | null;
  /** The choices in this mode, when fewer than `options`. */
  optionsIn?: (mode: UpstreamMode) => string[] | null;
  /** Help text for this mode, instead of `help`. */
  helpIn?: (mode: UpstreamMode) => string | null;
}
interface Group { title: string; id?: string; fields: Field[]; onlyIn?: UpstreamMode }

// The engine's words (generated types): a renamed variant breaks the build.
const MODES: UpstreamMode[] = ["submission", "relay", "direct-send", "graph"];
const AUTHS: UpstreamAuth[] = ["oauth", "password", "none"];
const FLOWS: OAuthFlow[] = ["interactive", "device-code", "client-credentials"];
const SEND_AS: SendAs[] = ["mailbox", "sender"];
/** Graph signs in only with OAuth (the engine refuses anything else). */
const GRAPH_AUTHS: UpstreamAuth[] = ["oauth"];
const graphOnly = (reason: string) => (m: UpstreamMode) => (m === "graph" ? reason : null);

const GROUPS: Group[] = [
  { title: "Devices (listener)", fields: [
    { key: "listener.listen", label: "Listen on", kind: "list", help: "One IP:port per line; 0.0.0.0:2525 means every network interface.", placeholder: "127.0.0.1:2525" },
    { key: "listener.allow", label: "Allowed networks", kind: "list", help: "One network per line (CIDR), e.g. 192.168.1.0/24. These may relay without a password.", placeholder: "192.168.1.0/24" },
    { key: "listener.require_auth", label: "Every device must log in (AUTH), even from allowed networks", kind: "bool" },
    { key: "listener.users", label: "Device users", kind: "list", help: "One name per line; give each a password below, under \u201cSecrets in the OS keychain\u201d (or `postern account set-secret --device NAME`)." },
    { key: "listener.tls_listen", label: "Listen with implicit TLS (SMTPS)", kind: "list", help: "For devices that only speak TLS from the first byte (port 465). One IP:port per line; leave empty for none.", placeholder: "0.0.0.0:465" },
    { key: "listener.tls_cert", label: "TLS certificate (PEM file)", kind: "text", help: "Leave both empty to use a generated self-signed certificate.", placeholder: "generated" },
    { key: "listener.tls_key", label: "TLS private key (PEM file)", kind: "text", placeholder: "generated" },
    { key: "listener.legacy_tls", label: "Legacy TLS: let old devices use TLS 1.0/1.1 (weak; only until their firmware is updated)", kind: "bool" },
    { key: "listener.legacy_tls_allow", label: "Legacy TLS for", kind: "list", help: "One network or address per line, inside the allowed networks; empty means all of them. Narrow it to the devices that need it.", placeholder: "192.168.1.40/32" },
  ] },
  { title: "Microsoft 365 (upstream)", fields: [
    { key: "upstream.mode", label: "Mode", kind: "select", options: MODES, help: "submission: sign in to smtp.office365.com:587. relay / direct-send: the tenant's MX on port 25. graph: Microsoft Graph over HTTPS (works with Security Defaults on; no SMTP AUTH)." },
    { key: "upstream.mailbox", label: "Mailbox", kind: "text", placeholder: "scanner@contoso.com", help: "The mailbox Postern signs in as and sends from." },
    { key: "upstream.host", label: "Host", kind: "text", placeholder: "mode default", notIn: graphOnly("Not used with Microsoft Graph: it is reached at the Graph endpoint below.") },
    { key: "upstream.port", label: "Port", kind: "number", placeholder: "mode default (587 for submission, 25 for relay and direct-send)", help: "Leave empty for the mode's default.", notIn: graphOnly("Not used with Microsoft Graph: it goes over HTTPS, no SMTP port.") },
    { key: "upstream.ca_file", label: "Extra CA certificate (PEM file)", kind: "text", placeholder: "none", help: "Only when a TLS-inspecting firewall or proxy stands between Postern and Microsoft: its CA, trusted besides the public ones." },
    { key: "upstream.domain", label: "Domain (relay / Direct Send)", kind: "text", placeholder: "the mailbox's domain", notIn: graphOnly("Only for relay and Direct Send.") },
    { key: "upstream.auth", label: "Authentication", kind: "select", options: AUTHS, optionsIn: (m) => (m === "graph" ? GRAPH_AUTHS : null),
      helpIn: (m) => (m === "graph" ? "Microsoft Graph signs in only with OAuth: no password." : null) },
    { key: "upstream.rewrite_sender", label: "Send as the mailbox (rewrite the sender; the original From moves to Reply-To)", kind: "bool" },
    { key: "upstream.send_as", label: "Send from", kind: "select", options: SEND_AS, help: "mailbox: every message from the mailbox above. sender: a sender in the accepted domains sends from their own mailbox (no Send As grant; the copy in their Sent Items); needs the client-credentials flow." },
    { key: "upstream.accepted_domains", label: "Accepted domains", kind: "list", placeholder: "contoso.com", help: "One per line. Direct Send: the domains counted as internal. Send from the sender: the domains whose senders send from their own mailbox." },
  ] },
  { title: "Sign-in (OAuth)", fields: [
    { key: "oauth.tenant", label: "Tenant", kind: "text", placeholder: "contoso.com", help: "Your domain or tenant id, or \"organizations\"." },
    { key: "oauth.client_id", label: "App (client) id", kind: "text", placeholder: "00000000-1111-2222-3333-444444444444" },
    { key: "oauth.flow", label: "Flow", kind: "select", options: FLOWS,
      helpIn: (m) => (m === "graph" ? "client-credentials: the app sends as the mailbox (admin consent for Mail.Send, and Mail.ReadWrite for big scans). interactive / device-code: a person signs in and sends as themselves." : null) },
    { key: "oauth.authority", label: "Authority", kind: "text", placeholder: "https://login.microsoftonline.com" },
  ] },
  { title: "Microsoft Graph", id: "graph", onlyIn: "graph", fields: [
    { key: "graph.endpoint", label: "Graph endpoint", kind: "text", placeholder: "https://graph.microsoft.com", help: "Graph's service root: https://graph.microsoft.com, or your national cloud's (e.g. https://graph.microsoft.us). Postern adds /v1.0 itself." },
    { key: "graph.save_to_sent_items", label: "Keep a copy of each message in the mailbox's Sent Items", kind: "bool",
      help: "Off: no copy stays in Sent Items (a scanner mailbox need not fill up). Small messages then go rebuilt from their parts rather than as the exact MIME (docs/graph.md)." },
  ] },
  { title: "Delivery tracking", id: "tracking", fields: [
    { key: "tracking.enabled", label: "Follow each sent message in Microsoft's message trace (tells you when one bounces after Microsoft took it)", kind: "bool",
      help: "Needs the client-credentials sign-in with the application permission ExchangeMessageTrace.Read.All (admin consent); without it the Throttling page says tracking is unavailable and why." },
    { key: "tracking.poll", label: "Ask the trace every", kind: "text", placeholder: "5m", help: "A duration such as 5m or 1h: one query per sending mailbox each time. At least 1s." },
    { key: "tracking.for", label: "Keep asking for", kind: "text", placeholder: "48h", help: "How long after Microsoft took a message; what is still not known then is “unknown”. At most 10 days." },
  ] },
  { title: "Limits", fields: [
    { key: "limits.messages_per_minute", label: "Messages per minute", kind: "number", help: "Microsoft's per-mailbox limit is 30." },
    { key: "limits.recipients_per_day", label: "Recipients per 24 hours", kind: "number", help: "Microsoft's per-mailbox limit is 10,000." },
    { key: "limits.max_connections", label: "Connections to Microsoft", kind: "number", help: "Microsoft allows 3.", helpIn: (m) => (m === "graph" ? "Requests at a time; Microsoft Graph allows 4 per mailbox." : null) },
  ] },
];

const NOTIFY: [keyof NotificationSettings, string][] = [
  ["failed", "A message failed"], ["sign_in", "Sign-in needed"], ["unreachable", "Microsoft cannot be reached"],
  ["budget", "The daily recipient budget runs low"], ["stuck", "Mail is stuck in the queue"],
];

export const fieldId = (key: string) => `f-${key.replace(/\./g, "-")}`;

function get(c: ConfigForm, key: string): unknown { const [s, k] = key.split("."); return c[s]?.[k]; }
function set(c: ConfigForm, key: string, v: unknown) { const [s, k] = key.split("."); (c[s] ??= {})[k] = v; }

export function settingsPage(): PageView {
  let config: ConfigForm = {};
  let path = "";
  let notify: NotificationSettings | null = null;
  let local: FieldError[] = [];
  let remote: FieldError[] = [];
  let loaded = false;
  let timer = 0;
  let seq = 0;
  const errorEls = new Map<string, HTMLElement>();
  const inputs = new Map<string, HTMLElement>();
  const form = h("form", { class: "settings", id: "settings-form", novalidate: true });
  const status = h("p", { class: "save-status", role: "status", id: "save-status" });
  const saveBtn = h("button", { class: "btn primary", type: "submit", form: "settings-form", id: "save-settings" }, "Save");
  const revert = h("button", { class: "btn", type: "button", onclick: () => void load() }, "Revert");
  const pathEl = h("p", { class: "muted small" });
  const secrets = secretsPanel("settings", () => (loaded ? { auth: String(get(config, "upstream.auth") ?? "oauth"), flow: String(get(config, "oauth.flow") ?? "interactive") } : null), {
    deviceUsers: true,
    // The shell wrote listener.users to the file: take that list, keep the rest of the form.
    changedUsers: async () => {
      try { const s = await api.getSettings(); set(config, "listener.users", s.config.listener.users); build(); } catch { /* the next load shows it */ }
    },
  });
  const el = h("div", { class: "page page-settings" }, h("div", { class: "toolbar sticky" }, pathEl, h("span", { class: "spacer" }), status, revert, saveBtn), form, secrets.el);

  const mode = (): UpstreamMode => (String(get(config, "upstream.mode") ?? "submission") as UpstreamMode);

  /** Switching to Graph drops what Graph cannot use (SMTP host and port, a password). */
  function modeChanged(m: UpstreamMode) {
    if (m === "graph") {
      set(config, "upstream.host", "");
      set(config, "upstream.port", null);
      if (!GRAPH_AUTHS.includes(String(get(config, "upstream.auth") ?? "oauth") as UpstreamAuth)) set(config, "upstream.auth", "oauth");
    }
    build();
  }

  function input(f: Field): HTMLElement {
    const id = fieldId(f.key);
    const off = f.notIn?.(mode()) ?? null;
    const v = off ? null : get(config, f.key);
    const common = { id, name: f.key, "aria-describedby": `${id}-err ${id}-help`, disabled: off != null };
    const update = (val: unknown) => { set(config, f.key, val); changed(); };
    if (f.kind === "bool") {
      const i = h("input", { ...common, type: "checkbox", checked: Boolean(v), onchange: () => update(i.checked) });
      return i;
    }
    if (f.kind === "select") {
      const options = f.optionsIn?.(mode()) ?? f.options!;
      const sel = h("select", { ...common, onchange: () => { update(sel.value); if (f.key === "upstream.mode") modeChanged(sel.value as UpstreamMode); } },
        options.map((o) => h("option", { value: o, selected: (v ?? options[0]) === o }, o)));
      return sel;
    }
    if (f.kind === "list") {
      const ta = h("textarea", { ...common, rows: 3, spellcheck: "false", placeholder: f.placeholder ?? null, oninput: () => update(ta.value.split("\n").map((x) => x.trim()).filter((x) => x !== "")) });
      ta.value = Array.isArray(v) ? v.join("\n") : "";
      return ta;
    }
    const i = h("input", { ...common, type: "text", inputmode: f.kind === "number" ? "numeric" : null, spellcheck: "false", placeholder: off ? null : f.placeholder ?? null, value: v == null ? "" : String(v),
      oninput: () => {
        const raw = i.value.trim();
        if (f.kind === "number") update(raw === "" ? null : /^\d+$/.test(raw) ? Number(raw) : raw);
        else if (f.key === "listener.tls_cert" || f.key === "listener.tls_key" || f.key === "upstream.ca_file") update(raw === "" ? null : raw);
        else update(raw);
      } });
    return i;
  }

  function build() {
    errorEls.clear(); inputs.clear();
    pathEl.textContent = path ? `Saved in ${path}` : "";
    clear(form,
      GROUPS.filter((g) => !g.onlyIn || g.onlyIn === mode()).map((g) => h("fieldset", { id: g.id ? `group-${g.id}` : null }, h("legend", {}, g.title), g.fields.map((f) => {
        const id = fieldId(f.key);
        const inp = input(f);
        inputs.set(f.key, inp);
        const err = h("p", { class: "field-error", id: `${id}-err`, "data-key": f.key });
        errorEls.set(f.key, err);
        const off = f.notIn?.(mode()) ?? null;
        const help = off ?? f.helpIn?.(mode()) ?? f.help ?? "";
        return h("div", { class: `field field-${f.kind}${off ? " field-off" : ""}` },
          f.kind === "bool" ? h("label", { class: "check-label" }, inp, " ", f.label) : [h("label", { for: id }, f.label), inp],
          h("p", { class: off ? "help reason" : "help", id: `${id}-help` }, help), err);
      }))),
      notify ? h("fieldset", { id: "notify" }, h("legend", {}, "Desktop notifications"), NOTIFY.map(([k, label]) => {
        const i = h("input", { type: "checkbox", id: `n-${k}`, checked: notify![k], onchange: () => { notify![k] = i.checked; status.textContent = "Unsaved changes"; } });
        return h("div", { class: "field field-bool" }, h("label", { class: "check-label" }, i, " ", label));
      })) : null);
    showErrors();
  }

  function showErrors() {
    const all = [...local, ...remote.filter((r) => !local.some((l) => l.key === r.key))];
    for (const [key, err] of errorEls) {
      const e = all.find((x) => x.key === key);
      err.textContent = e ? e.message : "";
      const inp = inputs.get(key);
      if (e) inp?.setAttribute("aria-invalid", "true"); else inp?.removeAttribute("aria-invalid");
    }
    const stray = all.filter((e) => !errorEls.has(e.key));
    const n = all.length;
    saveBtn.disabled = local.length > 0;
    if (n) status.textContent = `${n} problem${n > 1 ? "s" : ""} to fix${stray.length ? ": " + stray.map((e) => `${e.key}: ${e.message}`).join("; ") : ""}`;
    status.className = `save-status ${n ? "bad" : ""}`;
  }

  function changed() {
    local = validateConfig(config);
    remote = remote.filter((r) => !errorEls.has(r.key) || local.some((l) => l.key === r.key));
    status.textContent = "Unsaved changes";
    showErrors();
    window.clearTimeout(timer);
    const mine = ++seq;
    timer = window.setTimeout(async () => {
      try { const r = await api.validateSettings(config); if (mine === seq) { remote = r.errors; showErrors(); } }
      catch { /* the local rules still apply; save reports the engine's verdict */ }
    }, 250);
  }

  async function load() {
    try {
      const s = await api.getSettings();
      config = structuredClone(s.config) as ConfigForm; path = s.path;
      notify = await api.getNotificationSettings().catch(() => null);
      local = validateConfig(config); remote = [];
      loaded = true;
      status.textContent = "";
      build();
      void secrets.load();
    } catch (e) { clear(form, h("p", { class: "banner banner-bad" }, `Could not read the settings: ${errorText(e)}`)); }
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    local = validateConfig(config);
    if (local.length) { showErrors(); errorEls.get(local[0].key)?.previousElementSibling?.previousElementSibling?.scrollIntoView({ block: "center" }); return; }
    saveBtn.disabled = true;
    status.textContent = "Saving…";
    try {
      const r = await api.saveSettings(config);
      if (notify) await api.setNotificationSettings(notify);
      remote = r.errors ?? [];
      if (r.ok) { status.textContent = r.restarted ? "Saved — the relay restarted with the new settings." : "Saved."; status.className = "save-status ok"; void secrets.load(); }
      else showErrors();
    } catch (e) { status.textContent = `Not saved: ${errorText(e)}`; status.className = "save-status bad"; }
    saveBtn.disabled = local.length > 0;
  });

  return { el, shown: () => { if (!loaded) void load(); } };
}
