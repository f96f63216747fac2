//! A "Copy" button for commands and values: navigator.clipboard, with the
//! old select-and-copy as a fallback where the webview refuses it; says
//! "Copied" (or how to copy by hand) next to itself, for screen readers too.

import { h } from "../dom";

export async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = h("textarea", { class: "offscreen", "aria-hidden": "true", readonly: true });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch { ok = false; }
    ta.remove();
    return ok;
  }
}

/** A button copying `text()`; `what` names it for assistive technology ("Copy the PowerShell lines"). */
export function copyButton(text: () => string, what: string, id?: string): HTMLElement {
  const note = h("span", { class: "copy-note", role: "status" });
  const b = h("button", { class: "btn small-btn no-print", type: "button", id: id ?? null, "aria-label": `Copy ${what}`,
    onclick: async () => {
      const ok = await copyText(text());
      note.textContent = ok ? "Copied" : "Select it and press Ctrl+C";
      window.setTimeout(() => { note.textContent = ""; }, 2500);
    } }, "Copy");
  return h("span", { class: "copy" }, b, note);
}

/** A block of lines to copy, with its button. */
export function codeBlock(code: string, what: string, id?: string): HTMLElement {
  return h("div", { class: "code-block" }, h("pre", { class: "selectable" }, code), copyButton(() => code, what, id));
}
