//! The "Point a device here" card: what to type into a scanner's SMTP
//! settings (this PC's LAN addresses, the port, the security choice in
//! plain words, whether a login is needed), from `get_device_card`; with the
//! admin's consent, per network, `listen_on_lan`. Copyable as text and
//! printable (styles.css @media print). Used by the assistant's last step
//! and by the Devices page.

import { clear, h } from "../dom";
import { api, errorText } from "../ipc";
import type { DeviceCard } from "../types";
import { copyButton } from "./copy";

const LOOPBACK = /^(127\.|::1\/|0:0:0:0:0:0:0:1)/;
const netId = (n: string) => `lan-allow-${n.replace(/[^0-9a-zA-Z]+/g, "-")}`;

/** Networks of this PC's interfaces that may not send yet (or cannot reach Postern). */
export function networksToAllow(c: DeviceCard): string[] {
  const nets = [...new Set(c.addresses.map((a) => a.network))];
  return nets.filter((n) => !c.lan || !c.allow.includes(n));
}

/** The security setting to pick on the device, and a hint in plain words. */
export function securityAdvice(c: DeviceCard): { choice: string; hint: string } {
  const tls = c.tls_ports.length ? ` or SSL/TLS on port ${c.tls_ports.join(" / ")}` : "";
  if (c.starttls) return {
    choice: `STARTTLS on port ${c.port}${tls}; "None" works too`,
    hint: `If the device offers STARTTLS (sometimes called "TLS" or "Explicit"), pick it. A device that only knows "SSL" uses ${c.tls_ports.length ? `port ${c.tls_ports[0]}` : "implicit TLS, which is not switched on here"}. If it offers neither, choose "None": the mail then crosses only your office network in plain text, and Postern sends it on to Microsoft encrypted.`,
  };
  return {
    choice: `None on port ${c.port}${tls}`,
    hint: "Choose \"None\" (no SSL/TLS): the mail crosses only your office network in plain text, and Postern sends it on to Microsoft encrypted.",
  };
}

/** Who may send without logging in, in plain words. */
export function loginAdvice(c: DeviceCard): string {
  const users = c.users.length ? c.users.join(", ") : "none set up yet: Settings → Device users";
  if (c.login_needed) return `Yes: every device logs in as a device user (${users}), with that user's password.`;
  const lan = c.allow.filter((n) => !LOOPBACK.test(n));
  if (!lan.length) return `Devices on your network are not allowed yet: use the button below. Until then a device must log in as a device user (${users}).`;
  return `No, for devices on ${lan.join(", ")}. Any other device must log in as a device user (${users}).`;
}

/** The card as plain text (what Copy puts on the clipboard). */
export function cardText(c: DeviceCard): string {
  const sec = securityAdvice(c);
  const servers = c.addresses.map((a) => a.address);
  return [
    "Point a device at Postern (scan to email / SMTP settings)",
    `SMTP server: ${servers.length ? servers.join(" or ") : "(no network address found)"}${c.hostname ? ` (or the PC's name: ${c.hostname})` : ""}`,
    `Port: ${c.port}`,
    `Security: ${sec.choice}`,
    `Login: ${loginAdvice(c)}`,
    "Sender (From): an address the mailbox may send as.",
  ].join("\n");
}

export interface DeviceCardView { el: HTMLElement; load(): Promise<void> }

export function deviceCard(): DeviceCardView {
  let card: DeviceCard | null = null;
  let note: { ok: boolean; text: string } | null = null;
  /** The device users' box stays as the admin left it across re-draws. */
  let usersOpen: boolean | null = null;
  const body = h("div", { class: "device-card-body" });
  const el = h("section", { class: "panel device-card", id: "device-card", "aria-labelledby": "device-card-title" },
    h("h2", { class: "device-card-title", id: "device-card-title" }, "Point a device here"), body);

  async function load() {
    try { card = await api.getDeviceCard(); render(); }
    catch (e) { clear(body, h("p", { class: "banner banner-bad" }, `Could not read this PC's addresses: ${errorText(e)}`)); }
  }

  async function allow(network: string, btn: HTMLButtonElement) {
    btn.disabled = true;
    try {
      const r = await api.listenOnLan(network);
      note = r.ok
        ? { ok: true, text: `Postern now listens on your network (port ${card?.port}) and lets devices on ${network} send${r.restarted ? "; it restarted with the new settings" : ""}.` }
        : { ok: false, text: `Not changed: ${r.errors.map((e) => `${e.key}: ${e.message}`).join("; ")}` };
    } catch (e) { note = { ok: false, text: `Not changed: ${errorText(e)}` }; }
    await load();
  }

  function render() {
    const c = card!;
    const sec = securityAdvice(c);
    const pending = networksToAllow(c);
    clear(body,
      h("p", { class: "muted no-print" }, "In the device's \"scan to email\" or SMTP settings, enter:"),
      h("dl", { class: "facts wide card-facts" },
        h("dt", {}, "SMTP server"), h("dd", { id: "device-card-servers" },
          c.addresses.length ? h("ul", { class: "plain" }, c.addresses.map((a) => h("li", {}, h("strong", { class: "mono selectable" }, a.address), h("span", { class: "muted" }, ` (${a.interface}, ${a.network})`)))) : h("span", { class: "muted" }, "No network address found on this PC."),
          c.hostname ? h("p", { class: "muted" }, "or the PC's name: ", h("span", { class: "mono selectable" }, c.hostname)) : null),
        h("dt", {}, "Port"), h("dd", { class: "mono", id: "device-card-port" }, String(c.port)),
        h("dt", {}, "Security"), h("dd", { id: "device-card-security" }, h("strong", {}, sec.choice), h("p", { class: "muted" }, sec.hint)),
        h("dt", {}, "Login"), h("dd", { id: "device-card-login" }, loginAdvice(c)),
        h("dt", {}, "Sender (From)"), h("dd", {}, "An address the mailbox may send as.")),
      !c.lan ? h("p", { class: "banner banner-warn", id: "device-card-local" }, "Postern listens only on this PC for now: devices on your network cannot reach it until you allow their network below.") : null,
      pending.length ? h("div", { class: "actions no-print", id: "device-card-allow" }, pending.map((n) => {
        const b: HTMLButtonElement = h("button", { class: "btn primary", type: "button", id: netId(n), "data-network": n, onclick: () => void allow(n, b) }, `Let devices on ${n} send through Postern`);
        return b;
      })) : null,
      note ? h("p", { class: `banner banner-${note.ok ? "ok" : "bad"} no-print`, role: "status", id: "device-card-note" }, note.text) : null,
      usersBox(c),
      h("div", { class: "actions no-print" },
        copyButton(() => cardText(c), "the device settings", "device-card-copy"),
        h("button", { class: "btn small-btn", type: "button", id: "device-card-print", onclick: () => window.print() }, "Print")));
  }

  /** Device users (AUTH PLAIN/LOGIN): add one with its password (write-only, `add_device_user`), or remove one. */
  function usersBox(c: DeviceCard): HTMLElement {
    const name = h("input", { type: "text", id: "device-user-name", autocomplete: "off", spellcheck: "false", placeholder: "scanner" });
    const pass = h("input", { type: "password", id: "device-user-password", autocomplete: "off" });
    const form = h("form", { class: "row" },
      h("label", { for: "device-user-name" }, "Name"), name, h("label", { for: "device-user-password" }, "Password"), pass,
      h("button", { class: "btn", type: "submit", id: "device-user-add" }, "Add"));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const n = name.value.trim(), p = pass.value;
      pass.value = "";
      if (!n || /\s/.test(n) || !p) { note = { ok: false, text: "A device user needs a name without spaces and a password." }; render(); return; }
      try { await api.addDeviceUser(n, p); note = { ok: true, text: `Device user ${n} added; its password is in the OS keychain.` }; }
      catch (e) { note = { ok: false, text: `Not added: ${errorText(e)}` }; }
      await load();
    });
    const box = h("details", { class: "device-users no-print", id: "device-users", open: usersOpen ?? c.login_needed },
      h("summary", {}, `Devices that log in (device users: ${c.users.length ? c.users.join(", ") : "none"})`),
      h("p", { class: "muted" }, "A device outside the allowed networks, or every device when a login is required, logs in with a device user's name and password."),
      c.users.length ? h("ul", { class: "plain" }, c.users.map((u) => h("li", { class: "row" }, h("span", { class: "mono" }, u),
        h("button", { class: "btn danger small-btn", type: "button", "data-user": u, onclick: async () => {
          try { await api.removeDeviceUser(u); note = { ok: true, text: `Device user ${u} removed.` }; } catch (e) { note = { ok: false, text: errorText(e) }; }
          await load();
        } }, "Remove")))) : null,
      form);
    box.addEventListener("toggle", () => { usersOpen = box.open; });
    return box;
  }

  clear(body, h("p", { class: "empty" }, "Loading…"));
  return { el, load };
}
