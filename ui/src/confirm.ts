//! A modal confirmation using <dialog> (the webview's window.confirm may be
//! disabled); resolves true when the person confirms.

import { h } from "./dom";

export function confirmDialog(title: string, text: string, action: string): Promise<boolean> {
  return new Promise((resolve) => {
    const ok = h("button", { class: "btn danger", value: "ok" }, action);
    const cancel = h("button", { class: "btn", value: "cancel", autofocus: true }, "Cancel");
    const form = h("form", { method: "dialog" }, h("h2", {}, title), h("p", {}, text), h("div", { class: "dialog-actions" }, cancel, ok));
    const d = h("dialog", { class: "confirm", "aria-label": title }, form);
    d.addEventListener("close", () => { resolve(d.returnValue === "ok"); d.remove(); });
    document.body.append(d);
    d.showModal();
    cancel.focus();
  });
}
