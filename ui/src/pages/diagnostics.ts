//! Diagnostics page: runs `run_diagnostics` (as `postern diagnose`) and
//! shows each check with its verdict, what was found and what to do.

import { clear, h } from "../dom";
import { api, errorText } from "../ipc";
import type { Check } from "../types";
import type { PageView } from "./page";

const VERDICT: Record<string, string> = { ok: "OK", warn: "Warning", fail: "Failed", skip: "Skipped" };

export function diagnosticsPage(): PageView {
  const list = h("ol", { class: "checks", id: "checks" });
  const summary = h("p", { class: "muted", role: "status" }, "Checks the configuration, keychain, listener, DNS, the path to Microsoft, TLS and sign-in. No mail is sent.");
  const run = h("button", { class: "btn primary", id: "run-diagnostics", onclick: () => void go() }, "Run diagnostics");
  const el = h("div", { class: "page page-diagnostics" }, h("div", { class: "toolbar" }, run, summary), list);

  async function go() {
    run.disabled = true;
    summary.textContent = "Running checks…";
    clear(list);
    let checks: Check[] = [];
    try { checks = await api.runDiagnostics(); }
    catch (e) { summary.textContent = `Diagnostics could not run: ${errorText(e)}`; run.disabled = false; return; }
    run.disabled = false;
    const n = (v: string) => checks.filter((c) => c.verdict === v).length;
    summary.textContent = n("fail") ? `${n("fail")} check(s) failed, ${n("warn")} warning(s).` : n("warn") ? `All passed, with ${n("warn")} warning(s).` : "Everything checks out.";
    clear(list, checks.map((c) => h("li", { class: `check check-${c.verdict}`, "data-id": c.id },
      h("span", { class: `verdict verdict-${c.verdict}` }, VERDICT[c.verdict] ?? c.verdict),
      h("div", {}, h("p", { class: "check-title" }, c.title), h("p", { class: "muted" }, c.found),
        c.fix && (c.verdict === "warn" || c.verdict === "fail") ? h("p", { class: "check-fix" }, h("strong", {}, "Fix: "), h("span", { class: "selectable" }, c.fix)) : null))));
  }
  return { el };
}
