//! Mocks of the setup assistant's NEW commands (SPEC-issue11.md) for the
//! mocked shell of e2e/harness.ts: each answers with exactly the spec's
//! shape. Secrets are kept as "stored or not" only — the mock throws the
//! value away, as the real shell hands it to the keychain. The state is on
//! `window.__setup` for tests; `?scenario=first-run`, `?scenario=no-consent`
//! (a token without SMTP.SendAsApp) and `?scenario=lan` (already on the LAN)
//! change the starting point.

import type { ConfigForm } from "../src/types";

type Args = Record<string, any>;
interface Data { config: ConfigForm }

const params = new URLSearchParams(location.search);
const scenarios = params.getAll("scenario");

export const setupMock = {
  first_run: scenarios.includes("first-run"),
  begun: 0,
  snapshot: null as null | { config: ConfigForm; secrets: { client_secret: boolean; mailbox_password: boolean } },
  secrets: { client_secret: false, mailbox_password: false, refresh_token: false },
  roles: scenarios.includes("no-consent") ? [] as string[] : ["SMTP.SendAsApp"],
};

const ADDRESSES = [
  { interface: "eth0", address: "192.168.1.23", network: "192.168.1.0/24" },
  { interface: "wlan0", address: "10.20.0.7", network: "10.20.0.0/16" },
];

function card(config: ConfigForm) {
  const l = config.listener ?? {};
  const listen = (l.listen as string[] | undefined) ?? ["127.0.0.1:2525"];
  const tls = (l.tls_listen as string[] | undefined) ?? [];
  const port = Number(String(listen[0] ?? "127.0.0.1:2525").split(":").pop());
  return {
    addresses: structuredClone(ADDRESSES),
    port,
    lan: listen.some((a) => !a.startsWith("127.") && !a.startsWith("[::1]")),
    starttls: true,
    tls_ports: tls.map((a) => Number(a.split(":").pop())),
    login_needed: Boolean(l.require_auth),
    users: ((l.users as string[] | undefined) ?? []).slice(),
    allow: ((l.allow as string[] | undefined) ?? ["127.0.0.0/8", "::1/128"]).slice(),
    hostname: "office-pc",
  };
}

/** The answer to a new command, or undefined when `cmd` is not one of them. */
export function setupCommand(cmd: string, a: Args, data: Data, validate: (c: ConfigForm) => { key: string; message: string }[]): unknown {
  const m = setupMock;
  switch (cmd) {
    case "get_setup": return { first_run: m.first_run, config_path: "/home/office/.config/postern/postern.toml" };
    case "setup_begin": m.begun++; m.snapshot = { config: structuredClone(data.config), secrets: { client_secret: m.secrets.client_secret, mailbox_password: m.secrets.mailbox_password } }; return {};
    case "setup_cancel": {
      if (!m.snapshot) return { restored: false };
      data.config = m.snapshot.config; Object.assign(m.secrets, m.snapshot.secrets); m.snapshot = null;
      return { restored: true };
    }
    case "setup_finish": m.snapshot = null; m.first_run = false; return {};
    case "get_secrets": {
      const users = ((data.config.listener?.users as string[] | undefined) ?? []);
      return { client_secret: m.secrets.client_secret, mailbox_password: m.secrets.mailbox_password, refresh_token: m.secrets.refresh_token, device_users: users.map((name) => ({ name, stored: true })) };
    }
    case "store_secret": {
      if (a.kind !== "client-secret" && a.kind !== "mailbox-password") throw `unknown secret kind ${a.kind}`;
      if (!a.value) throw "The secret is empty.";
      if (a.kind === "client-secret") m.secrets.client_secret = true; else m.secrets.mailbox_password = true;
      return { stored: true };
    }
    case "remove_secret": {
      if (a.kind === "client-secret") m.secrets.client_secret = false;
      else if (a.kind === "mailbox-password") m.secrets.mailbox_password = false;
      else if (a.kind === "refresh-token") m.secrets.refresh_token = false;
      else throw `unknown secret kind ${a.kind}`;
      return { removed: true };
    }
    case "add_device_user": {
      const l = (data.config.listener ??= {});
      const users = ((l.users as string[] | undefined) ?? []).filter((u) => u !== a.name);
      l.users = [...users, String(a.name)];
      return { stored: true };
    }
    case "remove_device_user": {
      const l = (data.config.listener ??= {});
      l.users = ((l.users as string[] | undefined) ?? []).filter((u) => u !== a.name);
      return { removed: true };
    }
    case "check_app_token": {
      if (!m.secrets.client_secret) throw "No client secret is stored for this app yet: store it first (AADSTS7000215 means the secret is wrong).";
      return { roles: m.roles.slice(), expires_at: Date.now() + 3599_000, audience: "https://outlook.office365.com" };
    }
    case "get_device_card": return card(data.config);
    case "listen_on_lan": {
      const next = structuredClone(data.config);
      const l = (next.listener ??= {});
      const c = card(data.config);
      l.listen = [`0.0.0.0:${c.port}`];
      const allow = ((l.allow as string[] | undefined) ?? ["127.0.0.0/8", "::1/128"]);
      if (!allow.includes(a.network)) l.allow = [...allow, String(a.network)];
      const errors = validate(next);
      if (errors.length) return { ok: false, errors, restarted: false };
      data.config = next;
      return { ok: true, errors: [], restarted: true };
    }
    default: return undefined;
  }
}

declare global { interface Window { __setup: typeof setupMock } }
window.__setup = setupMock;
