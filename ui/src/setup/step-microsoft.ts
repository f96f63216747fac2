//! Step 2, "The Microsoft side": for the chosen route the exact steps to do
//! at Microsoft (microsoft.ts) with copy buttons, and the fields the route
//! needs, checked as you type by the config file's rules (validate.ts, then
//! `validate_settings` on the draft, debounced) plus the route's own
//! "needed" rules; each error under its field. Next writes the draft with
//! `save_settings`, so the later steps run against it.

import { clear, h } from "../dom";
import { api, errorText } from "../ipc";
import type { FieldError } from "../types";
import { validateConfig } from "../validate";
import { codeBlock } from "./copy";
import { applyChoice, extraError, fieldsFor, requiredErrors, SIGN_IN_TITLE, type FieldDef, type SignInWay } from "./draft";
import { microsoftSteps } from "./microsoft";
import type { Ctx, Step } from "./wizard";

export const setupFieldId = (key: string) => `setup-f-${key.replace(/\./g, "-")}`;
const WAYS: SignInWay[] = ["client-credentials", "interactive", "device-code", "password"];
const DEBOUNCE_MS = 250;

export function microsoftStep(ctx: Ctx): Step {
  const s = ctx.state;
  let local: FieldError[] = [];
  let remote: FieldError[] = [];
  const touched = new Set<string>();
  let tried = false;
  let timer = 0;
  let seq = 0;
  const errorEls = new Map<string, HTMLElement>();
  const inputs = new Map<string, HTMLInputElement | HTMLTextAreaElement>();
  const ways = h("div", {});
  const steps = h("ol", { class: "ms-steps", id: "setup-ms-steps" });
  const fields = h("fieldset", { class: "setup-fields", id: "setup-fields" });
  const other = h("div", { id: "setup-other-errors" });
  const status = h("p", { class: "save-status", role: "status", id: "setup-save-status" });
  const el = h("div", { class: "setup-step" }, ways, h("h3", { class: "sub" }, "At Microsoft"), steps, fields, other, status);

  const get = (f: FieldDef): string => {
    if (!f.saved) return s.extra[f.key] ?? "";
    const [sec, k] = f.key.split(".");
    const v = s.config[sec]?.[k];
    return Array.isArray(v) ? v.join("\n") : v == null ? "" : String(v);
  };
  const put = (f: FieldDef, raw: string) => {
    if (!f.saved) { s.extra[f.key] = raw.trim(); return; }
    const [sec, k] = f.key.split(".");
    const o = (s.config[sec] ??= {});
    if (f.kind === "list") o[k] = raw.split("\n").map((x) => x.trim()).filter((x) => x !== "");
    else if ((k === "client_cert" || k === "client_key") && raw.trim() === "") delete o[k];
    else o[k] = raw.trim();
  };

  function renderWays() {
    const c = s.choice!;
    if (c.mode === "graph") {
      clear(ways, h("p", { id: "setup-graph-signin" }, "Postern signs in to Microsoft Graph as the app itself (client credentials): nobody signs in, and the app's client secret is kept in the OS keychain."));
      return;
    }
    if (c.mode !== "submission") { clear(ways); return; }
    clear(ways, h("fieldset", { class: "question", id: "setup-signin-way" }, h("legend", {}, "How Postern signs in to the mailbox"),
      WAYS.map((w) => {
        const id = `setup-signin-way-${w}`;
        const i = h("input", { type: "radio", name: "setup-signin-way", id, value: w, checked: c.signIn === w,
          onchange: () => { c.signIn = w; s.config = applyChoice(s.config, c); s.saved = false; render(); } });
        return h("label", { class: "answer", for: id }, i, " ", SIGN_IN_TITLE[w], w === "client-credentials" ? h("span", { class: "pill pill-ok" }, "suggested") : null);
      })));
  }

  function renderSteps() {
    clear(steps, microsoftSteps(s.choice!, s.config, s.extra).map((st, n) => h("li", { class: "ms-step" },
      h("p", { class: "ms-step-title" }, st.title),
      st.text.map((t) => h("p", {}, t)),
      st.code ? codeBlock(st.code, st.codeLabel ?? "these lines", `setup-copy-${n + 1}`) : null)));
  }

  function renderFields() {
    errorEls.clear(); inputs.clear();
    clear(fields, h("legend", {}, "What Postern needs to know"), fieldsFor(s.choice!).map((f) => {
      const id = setupFieldId(f.key);
      const common = { id, name: f.key, spellcheck: "false", autocomplete: "off", placeholder: f.placeholder ?? null, "aria-describedby": `${id}-err ${id}-help`, "aria-required": f.required ? "true" : null,
        oninput: () => { put(f, inp.value); touched.add(f.key); s.saved = false; validate(); renderSteps(); } };
      const inp: HTMLInputElement | HTMLTextAreaElement = f.kind === "list" ? h("textarea", { ...common, rows: 2 }) : h("input", { ...common, type: "text" });
      inp.value = get(f);
      inputs.set(f.key, inp);
      const err = h("p", { class: "field-error", id: `${id}-err`, "data-key": f.key });
      errorEls.set(f.key, err);
      return h("div", { class: "field" }, h("label", { for: id }, f.label, f.required ? h("span", { class: "req", "aria-hidden": "true" }, " *") : null), inp,
        h("p", { class: "help", id: `${id}-help` }, f.help ?? ""), err);
    }));
  }

  function localErrors(): FieldError[] {
    const out: FieldError[] = [];
    for (const e of [...validateConfig(s.config), ...requiredErrors(s.config, s.choice!)]) if (!out.some((x) => x.key === e.key)) out.push(e);
    for (const f of fieldsFor(s.choice!)) if (!f.saved) { const m = extraError(f.key, s.extra[f.key] ?? ""); if (m) out.push({ key: f.key, message: m }); }
    return out;
  }

  function show() {
    const all = [...local, ...remote.filter((r) => !local.some((l) => l.key === r.key))];
    for (const [key, err] of errorEls) {
      const e = all.find((x) => x.key === key);
      const visible = e && (tried || touched.has(key) || !/is needed for this route|is required/.test(e.message));
      err.textContent = visible ? e.message : "";
      const i = inputs.get(key);
      if (visible) i?.setAttribute("aria-invalid", "true"); else i?.removeAttribute("aria-invalid");
    }
    const stray = all.filter((e) => !errorEls.has(e.key));
    clear(other, stray.length ? h("div", { class: "banner banner-bad" }, h("p", {}, "Elsewhere in the config file (fix these in Settings):"),
      h("ul", {}, stray.map((e) => h("li", {}, h("span", { class: "mono" }, e.key), ": ", e.message)))) : null);
  }

  function validate() {
    local = localErrors();
    remote = remote.filter((r) => !errorEls.has(r.key) || local.some((l) => l.key === r.key));
    show();
    window.clearTimeout(timer);
    const mine = ++seq;
    timer = window.setTimeout(async () => {
      try { const r = await api.validateSettings(s.config); if (mine === seq) { remote = r.errors; show(); } }
      catch { /* the local rules still apply; Next reports the engine's verdict */ }
    }, DEBOUNCE_MS);
  }

  function render() {
    renderWays(); renderSteps(); renderFields();
    status.textContent = s.saved ? `Saved in ${s.path}` : "";
    validate();
    ctx.changed();
  }

  return {
    title: "The Microsoft side",
    el,
    enter: render,
    next: async () => {
      tried = true;
      local = localErrors();
      show();
      if (local.length) {
        const first = local.find((e) => inputs.has(e.key));
        inputs.get(first?.key ?? "")?.focus();
        status.textContent = `${local.length} problem${local.length > 1 ? "s" : ""} to fix first`;
        status.className = "save-status bad";
        return false;
      }
      status.textContent = "Saving…"; status.className = "save-status";
      try {
        const r = await api.saveSettings(s.config);
        if (!r.ok) { remote = r.errors; show(); status.textContent = "Not saved: the engine found problems (shown above)."; status.className = "save-status bad"; return false; }
        s.saved = true; s.saves++;
        status.textContent = `Saved in ${s.path}${r.restarted ? "; Postern restarted with it" : ""}.`;
        status.className = "save-status ok";
        return true;
      } catch (e) { status.textContent = `Not saved: ${errorText(e)}`; status.className = "save-status bad"; return false; }
    },
  };
}
