//! The setup assistant's draft config: which route and sign-in the admin
//! chose (`Choice`), the config keys that choice sets (`applyChoice`, starting
//! from the current config and touching nothing else), the fields the
//! Microsoft-side step asks for, and the assistant's own "required for this
//! route" rules on top of the config file's (validate.ts). Pure: no DOM, no IPC.

import type { ConfigForm, FieldError } from "../types";
import { emailError } from "../validate";
import type { Answers, Mode, Recommendation } from "./recommend";

export type Flow = "client-credentials" | "interactive" | "device-code";
/** How Postern signs in for client submission: an OAuth flow, or the legacy password. */
export type SignInWay = Flow | "password";

export interface Choice {
  mode: Mode;
  /** Submission; Graph always signs in as the app (client-credentials) in the assistant. */
  signIn: SignInWay | null;
  /** Relay only: what the connector trusts. */
  connectorAuth: "ip" | "cert" | null;
}

export const SIGN_IN_TITLE: Record<SignInWay, string> = {
  "client-credentials": "App-only (client-credentials): nobody signs in; a client secret is kept in the keychain",
  interactive: "A person signs in once, in the browser on this PC (interactive)",
  "device-code": "A person signs in once, with a code on another device (device-code)",
  password: "The mailbox's password (legacy: Microsoft turns basic authentication off by default at the end of December 2026)",
};

const str = (v: unknown): string => (v == null ? "" : String(v));

/** What the current config already says about a route, or null. */
function currentSignIn(config: ConfigForm): SignInWay | null {
  const u = config.upstream ?? {}, o = config.oauth ?? {};
  if (str(u.mode || "submission") !== "submission") return null;
  if (u.auth === "password") return "password";
  if (str(u.auth || "oauth") !== "oauth") return null;
  // No app registration yet (a first start): the flow is only the default, not a choice.
  if (!str(o.client_id).trim()) return null;
  const f = str(o.flow || "interactive");
  return f === "client-credentials" || f === "device-code" || f === "interactive" ? f : null;
}

/**
 * The choice for a route: the recommendation's own, or the route the admin
 * picked instead. A submission keeps the sign-in the config already uses
 * (re-running the assistant on a working setup changes nothing), else the
 * suggested app-only flow; a relay trusts the certificate only when the
 * admin said there is one.
 */
export function choiceFor(route: Mode, rec: Recommendation, answers: Answers, config: ConfigForm): Choice {
  if (route === "submission") return { mode: route, signIn: currentSignIn(config) ?? rec.flow ?? "client-credentials", connectorAuth: null };
  if (route === "relay") return { mode: route, signIn: null, connectorAuth: answers.connector === "cert" ? "cert" : "ip" };
  if (route === "graph") return { mode: route, signIn: "client-credentials", connectorAuth: null };
  return { mode: route, signIn: null, connectorAuth: null };
}

/**
 * The config with the keys this choice needs, and no other change. Keys
 * that belong only to another route are removed (back to their defaults)
 * when the route changes, so nothing stale is left that a hand-written
 * config for this route would not hold: the host and port (each mode has its
 * own default), the connector's certificate, the Direct Send domains.
 */
export function applyChoice(config: ConfigForm, choice: Choice): ConfigForm {
  const c = structuredClone(config);
  const u = (c.upstream ??= {});
  const prev = str(u.mode || "submission");
  if (prev !== choice.mode) {
    delete u.host; delete u.port;
    if (choice.mode === "submission" || choice.mode === "graph") { delete u.domain; delete u.accepted_domains; }
  }
  if (prev === "graph" && choice.mode !== "graph") delete c.graph;
  if (choice.mode !== "relay" || choice.connectorAuth !== "cert") { delete u.client_cert; delete u.client_key; }
  if (choice.mode !== "direct-send") delete u.accepted_domains;
  u.mode = choice.mode;
  if (choice.mode === "submission") {
    u.auth = choice.signIn === "password" ? "password" : "oauth";
    if (choice.signIn && choice.signIn !== "password") (c.oauth ??= {}).flow = choice.signIn;
  } else if (choice.mode === "graph") {
    // The app signs in itself (its secret in the keychain); Graph's endpoint at its default.
    u.auth = "oauth";
    (c.oauth ??= {}).flow = "client-credentials";
    const g = (c.graph ??= {});
    if (!str(g.endpoint).trim()) g.endpoint = GRAPH_ENDPOINT;
  } else {
    u.auth = "none";
    const mailDomain = str(u.mailbox).split("@")[1] ?? "";
    if (!str(u.domain) && mailDomain) u.domain = mailDomain;
  }
  return c;
}

/** `graph.endpoint`'s default (the engine's too). */
export const GRAPH_ENDPOINT = "https://graph.microsoft.com";

export type FieldKind = "text" | "list";
export interface FieldDef {
  key: string;
  label: string;
  kind: FieldKind;
  help?: string;
  placeholder?: string;
  /** false: only fills in the commands shown; never written to the config. */
  saved: boolean;
  required?: boolean;
}

/** The fields the Microsoft-side step asks for, for this choice. */
export function fieldsFor(choice: Choice): FieldDef[] {
  if (choice.mode === "graph") return [
    { key: "upstream.mailbox", label: "Mailbox Postern sends from", kind: "text", placeholder: "scanner@contoso.com", saved: true, required: true, help: "A mailbox of your tenant (a shared mailbox needs no licence); devices' mail goes out from it." },
    { key: "oauth.tenant", label: "Tenant", kind: "text", placeholder: "contoso.com", saved: true, required: true, help: "Your domain, or the Directory (tenant) ID from the app registration's overview." },
    { key: "oauth.client_id", label: "Application (client) ID", kind: "text", placeholder: "00000000-1111-2222-3333-444444444444", saved: true, required: true, help: "From the app registration's overview page." },
    { key: "extra.sp_object_id", label: "Enterprise application's Object ID (for the optional PowerShell lines below; not saved)", kind: "text", placeholder: "Entra → Enterprise applications → Postern → Object ID", saved: false },
  ];
  if (choice.mode === "submission") {
    const mailbox: FieldDef = { key: "upstream.mailbox", label: "Mailbox Postern sends as", kind: "text", placeholder: "scanner@contoso.com", saved: true, required: true, help: "A licensed mailbox; devices' mail goes out from it." };
    if (choice.signIn === "password") return [mailbox];
    const f: FieldDef[] = [
      mailbox,
      { key: "oauth.tenant", label: "Tenant", kind: "text", placeholder: "contoso.com", saved: true, required: true, help: "Your domain, or the Directory (tenant) ID from the app registration's overview." },
      { key: "oauth.client_id", label: "Application (client) ID", kind: "text", placeholder: "00000000-1111-2222-3333-444444444444", saved: true, required: true, help: "From the app registration's overview page." },
    ];
    if (choice.signIn === "client-credentials")
      f.push({ key: "extra.sp_object_id", label: "Enterprise application's Object ID (for the PowerShell lines below; not saved)", kind: "text", placeholder: "Entra → Enterprise applications → Postern → Object ID", saved: false });
    return f;
  }
  const domain: FieldDef = { key: "upstream.domain", label: "Your domain", kind: "text", placeholder: "contoso.com", saved: true, required: true, help: "Its MX record names the Microsoft endpoint Postern delivers to." };
  const host: FieldDef = { key: "upstream.host", label: "Endpoint (optional)", kind: "text", placeholder: "contoso-com.mail.protection.outlook.com", saved: true, help: "Leave empty to use your domain's MX record." };
  const ip: FieldDef = { key: "extra.public_ip", label: "The office's public IP (for the commands below; not saved)", kind: "text", placeholder: "203.0.113.7", saved: false };
  if (choice.mode === "relay") {
    if (choice.connectorAuth === "cert") return [domain, host,
      { key: "upstream.client_cert", label: "Certificate (PEM file on this PC)", kind: "text", placeholder: "/etc/postern/relay-cert.pem", saved: true, required: true, help: "Its subject (CN or SAN) holds one of your accepted domains." },
      { key: "upstream.client_key", label: "Its private key (PEM file, readable only by you: chmod 600)", kind: "text", placeholder: "/etc/postern/relay-key.pem", saved: true, required: true }];
    return [domain, host, ip];
  }
  return [domain,
    { key: "upstream.accepted_domains", label: "Domains counted as internal", kind: "list", placeholder: "contoso.com", saved: true, help: "One per line; empty means just your domain. Mail to any other domain is refused on this route." },
    host, ip];
}

/** The assistant's own rules: a field this route needs is filled in. */
export function requiredErrors(config: ConfigForm, choice: Choice): FieldError[] {
  const errs: FieldError[] = [];
  for (const f of fieldsFor(choice)) {
    if (!f.required || !f.saved) continue;
    const [s, k] = f.key.split(".");
    const v = config[s]?.[k];
    if (v == null || str(v).trim() === "") errs.push({ key: f.key, message: `${f.label} is needed for this route` });
  }
  const t = str(config.oauth?.tenant).trim().toLowerCase();
  if (choice.signIn === "client-credentials" && (t === "organizations" || t === "common"))
    errs.push({ key: "oauth.tenant", message: `app-only sign-in needs your own tenant (your domain or tenant id), not "${t}"` });
  return errs;
}

/** Errors of the extra (unsaved) fields: only shape checks, never blocking the save. */
export function extraError(key: string, value: string): string | null {
  if (!value) return null;
  if (key === "extra.public_ip" && !/^\d{1,3}(\.\d{1,3}){3}$/.test(value)) return `"${value}" is not an IPv4 address`;
  return null;
}

/** The test message's default recipient: the mailbox, else nobody. */
export function defaultTestRecipient(config: ConfigForm): string {
  const m = str(config.upstream?.mailbox);
  return m && !emailError(m) ? m : "";
}
