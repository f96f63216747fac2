//! Step 3, "Secrets": the client secret or the mailbox password, typed into
//! a write-only field and stored with `store_secret` into the OS keychain;
//! the field is cleared at once. Shows "stored / not stored" from
//! `get_secrets`; a secret is never read back (no command returns one).

import { clear, h } from "../dom";
import { api, errorText } from "../ipc";
import type { SecretKind, SecretsState } from "../types";
import type { Ctx, Step } from "./wizard";

const WHAT: Record<SecretKind, { label: string; help: string }> = {
  "client-secret": { label: "Client secret", help: "The Value of the client secret from Certificates & secrets (not its Secret ID)." },
  "mailbox-password": { label: "The mailbox's password", help: "Postern signs in with it as the mailbox; it is kept only in the OS keychain." },
};

/** Which secret this choice needs, if any. */
export function secretKind(ctx: Ctx): SecretKind | null {
  const c = ctx.state.choice;
  if (c?.mode === "graph") return "client-secret";
  if (c?.mode !== "submission") return null;
  return c.signIn === "client-credentials" ? "client-secret" : c.signIn === "password" ? "mailbox-password" : null;
}

export function secretsStep(ctx: Ctx): Step {
  let secrets: SecretsState | null = null;
  let note: { ok: boolean; text: string } | null = null;
  const el = h("div", { class: "setup-step" });

  async function refresh() {
    try { secrets = await api.getSecrets(); } catch (e) { note = { ok: false, text: `Could not ask the keychain: ${errorText(e)}` }; }
    render();
  }

  const isStored = (k: SecretKind) => (k === "client-secret" ? secrets?.client_secret : secrets?.mailbox_password) ?? false;

  function render() {
    const kind = secretKind(ctx);
    const c = ctx.state.choice;
    if (!kind) {
      clear(el, h("p", { id: "secret-none" }, c?.mode === "submission"
        ? "No secret to type for this sign-in: a person signs in at the next step, and Postern keeps what Microsoft gives it (a refresh token) in the OS keychain, never in the config file."
        : "No secret for this route: the connector or your tenant trusts the office's network, not a password."));
      return;
    }
    // Until the keychain answered: no field yet, so nothing typed into it
    // is wiped by the re-draw that answer brings.
    if (!secrets && !note) { clear(el, h("p", { class: "muted", id: "secret-loading" }, "Asking the keychain…")); return; }
    const w = WHAT[kind];
    const stored = isStored(kind);
    const input = h("input", { type: "password", id: "secret-input", name: "secret", autocomplete: "off", spellcheck: "false", "aria-describedby": "secret-help secret-state" });
    const store = h("button", { class: "btn primary", type: "submit", id: "secret-store" }, stored ? "Replace the stored one" : "Store in the keychain");
    const form = h("form", { class: "secret-form", autocomplete: "off" }, h("div", { class: "field" },
      h("label", { for: "secret-input" }, w.label), h("div", { class: "row" }, input, store),
      h("p", { class: "help", id: "secret-help" }, w.help, " It is written to the OS keychain and never shown again, here or anywhere.")));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const value = input.value;
      if (!value) { note = { ok: false, text: "Type the secret first." }; render(); return; }
      store.disabled = true;
      try { await api.storeSecret(kind, value); note = { ok: true, text: `${w.label} stored in the OS keychain.` }; }
      catch (e) { note = { ok: false, text: `Not stored: ${errorText(e)}` }; }
      input.value = "";
      await refresh();
    });
    clear(el, form,
      h("p", {}, "In the keychain: ", h("span", { class: `pill pill-${stored ? "ok" : "warn"}`, id: "secret-state", "data-stored": String(stored) }, stored ? "stored" : "not stored"),
        stored ? h("button", { class: "btn danger small-btn gap-left", type: "button", id: "secret-remove", onclick: async () => {
          try { await api.removeSecret(kind); note = { ok: true, text: `${w.label} removed from the keychain.` }; } catch (e) { note = { ok: false, text: errorText(e) }; }
          await refresh();
        } }, "Remove") : null),
      note ? h("p", { class: `banner banner-${note.ok ? "ok" : "bad"}`, role: "status", id: "secret-note" }, note.text) : null);
  }

  return { title: "Secrets", el, enter: () => { note = null; secrets = null; render(); void refresh(); } };
}
