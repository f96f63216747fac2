//! The secrets Postern keeps in the OS keychain, as the Settings and
//! Account pages show them: each one "stored" or "not stored", with a
//! write-only field to store or replace it and a button to remove it, and
//! (on Settings) the device users with their passwords. Nothing here ever
//! reads a secret back: no command returns one (`get_secrets` answers
//! booleans), and every field is cleared once its value is sent.

import { clear, h } from "./dom";
import { api, errorText } from "./ipc";
import type { SecretKind, SecretsState } from "./types";

export interface SecretsPanel { el: HTMLElement; load(): Promise<void> }

/** Which of the account's secrets apply, from the account's auth and flow. */
export interface Needs { auth: string; flow: string }

const KINDS: { kind: SecretKind; label: string; applies: (n: Needs) => boolean; stored: (s: SecretsState) => boolean }[] = [
  { kind: "client-secret", label: "Client secret (app-only sign-in)", applies: (n) => n.auth === "oauth" && n.flow === "client-credentials", stored: (s) => s.client_secret },
  { kind: "mailbox-password", label: "Mailbox password (legacy sign-in)", applies: (n) => n.auth === "password", stored: (s) => s.mailbox_password },
];

/** `deviceUsers`: show them (Settings); `changedUsers` runs after a device user was added or removed
 * (the shell wrote `listener.users` to the config file). */
export function secretsPanel(page: string, needs: () => Needs | null, opts: { deviceUsers: boolean; changedUsers?: () => Promise<void> }): SecretsPanel {
  /** Element ids are the page's own (every page is in the document at once). */
  const id = (x: string) => `${page}-${x}`;
  let secrets: SecretsState | null = null;
  let note: { ok: boolean; text: string } | null = null;
  const body = h("div", {});
  const el = h("section", { class: "panel secrets-panel", id: id("secrets-panel"), "aria-labelledby": id("secrets-title") },
    h("h3", { id: id("secrets-title") }, "Secrets in the OS keychain"), body);

  async function load() {
    try { secrets = await api.getSecrets(); } catch (e) { note = { ok: false, text: `Could not ask the keychain: ${errorText(e)}` }; }
    render();
  }

  async function act(what: () => Promise<unknown>, done: string) {
    try { await what(); note = { ok: true, text: done }; } catch (e) { note = { ok: false, text: errorText(e) }; }
    await load();
  }

  const pill = (stored: boolean, key: string) =>
    h("span", { class: `pill pill-${stored ? "ok" : "warn"}`, id: id(key), "data-stored": String(stored) }, stored ? "stored" : "not stored");

  /** A write-only field and its button; the value goes to `send` and the field is cleared. */
  function writeOnly(key: string, label: string, button: string, send: (value: string) => Promise<unknown>, done: string): HTMLElement {
    const input = h("input", { type: "password", id: id(key), autocomplete: "off", spellcheck: "false", "aria-label": label });
    const form = h("form", { class: "row secret-form", autocomplete: "off" }, input, h("button", { class: "btn", type: "submit", id: id(`${key}-store`) }, button));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const value = input.value;
      input.value = "";
      if (!value) { note = { ok: false, text: "Type it first." }; render(); return; }
      void act(() => send(value), done);
    });
    return form;
  }

  function render() {
    const n = needs();
    if (!secrets || !n) { clear(body, note ? h("p", { class: "banner banner-bad" }, note.text) : h("p", { class: "empty" }, "Loading…")); return; }
    const s = secrets;
    const rows: HTMLElement[] = [];
    for (const k of KINDS.filter((k) => k.applies(n))) {
      const stored = k.stored(s);
      rows.push(h("div", { class: "field" }, h("p", {}, k.label, ": ", pill(stored, `secret-${k.kind}-state`),
        stored ? h("button", { class: "btn danger small-btn gap-left", type: "button", id: id(`secret-${k.kind}-remove`),
          onclick: () => void act(() => api.removeSecret(k.kind), `${k.label} removed from the keychain.`) }, "Remove") : null),
        writeOnly(`secret-${k.kind}`, k.label, stored ? "Replace" : "Store", (v) => api.storeSecret(k.kind, v), `${k.label} stored in the keychain.`)));
    }
    if (n.auth === "oauth" && n.flow !== "client-credentials") {
      rows.push(h("div", { class: "field" }, h("p", {}, "Sign-in (refresh token): ", pill(s.refresh_token, "secret-refresh-token-state"),
        s.refresh_token ? h("button", { class: "btn danger small-btn gap-left", type: "button", id: id("secret-refresh-token-remove"),
          onclick: () => void act(() => api.removeSecret("refresh-token"), "The sign-in was removed from the keychain; sign in again on the Account page.") }, "Remove") : null),
        h("p", { class: "help" }, "Stored by signing in on the Account page; Microsoft renews it, Postern never shows it.")));
    }
    if (opts.deviceUsers) rows.push(deviceUsers(s));
    if (!rows.length) rows.push(h("p", { class: "muted" }, "This way of sending needs no secret."));
    clear(body, rows,
      note ? h("p", { class: `banner banner-${note.ok ? "ok" : "bad"}`, role: "status", id: id("secrets-note") }, note.text) : null);
  }

  /** Device users: each with its password's state, a new password, Remove; and a new user. */
  function deviceUsers(s: SecretsState): HTMLElement {
    const name = h("input", { type: "text", id: id("device-user-name"), autocomplete: "off", spellcheck: "false", placeholder: "scanner", "aria-label": "Device user name" });
    const pass = h("input", { type: "password", id: id("device-user-password"), autocomplete: "off", "aria-label": "Device user password" });
    const add = h("form", { class: "row" }, name, pass, h("button", { class: "btn", type: "submit", id: id("device-user-add") }, "Add device user"));
    add.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const n = name.value.trim(), p = pass.value;
      pass.value = "";
      if (!n || /\s/.test(n) || !p) { note = { ok: false, text: "A device user needs a name without spaces and a password." }; render(); return; }
      void act(() => api.addDeviceUser(n, p), `Device user ${n} added; its password is in the OS keychain.`).then(() => opts.changedUsers?.());
    });
    return h("div", { class: "field", id: id("device-users") },
      h("p", {}, h("strong", {}, "Device users"), h("span", { class: "muted" }, " — devices that log in (AUTH) with a name and password")),
      s.device_users.length ? h("ul", { class: "plain" }, s.device_users.map((u) => h("li", { class: "row", "data-user": u.name },
        h("span", { class: "mono" }, u.name), " ", pill(u.stored, `device-user-${u.name}-state`),
        writeOnly(`device-user-${u.name}-password`, `New password for ${u.name}`, "Set password", (v) => api.addDeviceUser(u.name, v), `The password of ${u.name} is stored in the keychain.`),
        h("button", { class: "btn danger small-btn", type: "button", id: id(`device-user-${u.name}-remove`),
          onclick: () => void act(() => api.removeDeviceUser(u.name), `Device user ${u.name} removed.`).then(() => opts.changedUsers?.()) }, "Remove")))) : h("p", { class: "muted" }, "None yet."),
      add);
  }

  return { el, load };
}
