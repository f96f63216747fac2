//! A modal confirmation using <dialog> (the webview's window.confirm may be
//! disabled); resolves true when the person confirms. One at a time: while
//! a confirmation is open, another request (a double click on the button
//! that asked) resolves false at once instead of stacking a second dialog
//! under the first, which would stay behind it after the first is answered.

import { h } from "./dom";

let open = false;

export function confirmDialog(title: string, text: string, action: string): Promise<boolean> {
  if (open) return Promise.resolve(false);
  open = true;
  return new Promise((resolve) => {
    const ok = h("button", { class: "btn danger", value: "ok" }, action);
    const cancel = h("button", { class: "btn", value: "cancel", autofocus: true }, "Cancel");
    const form = h("form", { method: "dialog" }, h("h2", {}, title), h("p", {}, text), h("div", { class: "dialog-actions" }, cancel, ok));
    const d = h("dialog", { class: "confirm", "aria-label": title }, form);
    d.addEventListener("close", () => { open = false; resolve(d.returnValue === "ok"); d.remove(); });
    document.body.append(d);
    d.showModal();
    cancel.focus();
  });
}
