//! The setup assistant (tray menu "Set up…", and the first start): seven
//! steps from "How should Postern send?" to the device card. It opens with
//! `setup_begin` (the shell snapshots the config and secrets), writes the
//! draft with `save_settings` after the Microsoft-side step, restores the
//! snapshot with `setup_cancel` on Cancel, and ends with `setup_finish`.
//! The draft starts from `get_settings` and the assistant sets only the keys
//! the chosen route needs (setup/draft.ts).

import { confirmDialog } from "../confirm";
import { clear, h } from "../dom";
import { api, errorText } from "../ipc";
import { deviceCard } from "../setup/device-card";
import { microsoftStep } from "../setup/step-microsoft";
import { routeStep } from "../setup/step-route";
import { secretsStep } from "../setup/step-secrets";
import { checkStep, signInStep, testStep } from "../setup/step-verify";
import { emptyState, type Ctx, type Step } from "../setup/wizard";
import type { Store } from "../store";
import type { Page } from "../types";
import type { PageView } from "./page";

type Phase = "idle" | "starting" | "running";

export function setupPage(store: Store, navigate: (p: Page) => void): PageView {
  let phase: Phase = "idle";
  let current = 0;
  let reached = 0;
  let busy = false;
  let banner: { tone: string; text: string } | null = null;
  const ctx: Ctx = { state: emptyState(), store, changed: () => drawNav(), cleanup: [] };
  /** Ends this run's listeners (before a new run, after cancel or finish). */
  const endRun = () => { for (const f of ctx.cleanup.splice(0)) f(); };
  const card = deviceCard();
  const lastStep: Step = {
    title: "Point your devices here",
    el: h("div", { class: "setup-step" }, h("p", { class: "no-print" }, "Type these into each scanner's or printer's SMTP settings. Copy them, or print the card for the device's admin page."), card.el),
    enter: () => void card.load(),
  };
  let steps: Step[] = [];

  const indicator = h("ol", { class: "wizard-steps no-print", id: "setup-steps", "aria-label": "Setup steps" });
  const heading = h("h2", { class: "step-title", id: "setup-step-title", tabindex: "-1" });
  const body = h("div", { class: "step-body", id: "setup-step-body" });
  const back = h("button", { class: "btn", type: "button", id: "setup-back", onclick: () => void move(-1) }, "Back");
  const next = h("button", { class: "btn primary", type: "button", id: "setup-next", onclick: () => void move(1) }, "Next");
  const finish = h("button", { class: "btn primary", type: "button", id: "setup-finish", onclick: () => void done() }, "Finish");
  const cancel = h("button", { class: "btn", type: "button", id: "setup-cancel", onclick: () => void cancelSetup() }, "Cancel");
  const foot = h("div", { class: "wizard-nav no-print" }, cancel, h("span", { class: "spacer" }), back, next, finish);
  const bannerEl = h("div", { class: "no-print", id: "setup-banner" });
  const wizard = h("div", { class: "wizard", id: "setup-wizard" }, indicator, h("div", { class: "wizard-main" }, heading, body), foot);
  const el = h("div", { class: "page page-setup" }, bannerEl, wizard);

  function drawBanner() {
    clear(bannerEl, banner ? h("p", { class: `banner banner-${banner.tone}`, role: "status" }, banner.text) : null,
      phase === "idle" ? h("div", { class: "actions" }, h("button", { class: "btn primary", type: "button", id: "setup-start", onclick: () => void begin() }, "Start the setup assistant")) : null);
    wizard.hidden = phase !== "running";
  }

  function drawIndicator() {
    clear(indicator, steps.map((st, i) => h("li", { class: i === current ? "current" : i <= reached ? "reached" : "" },
      h("button", { type: "button", class: "step-link", "data-step": String(i + 1), "aria-current": i === current ? "step" : null, disabled: i > reached || busy,
        onclick: () => void jump(i) }, h("span", { class: "step-num", "aria-hidden": "true" }, String(i + 1)), h("span", { class: "step-name" }, st.title)))));
  }

  function drawNav() {
    const st = steps[current];
    back.disabled = busy || current === 0;
    next.hidden = current === steps.length - 1;
    finish.hidden = current !== steps.length - 1;
    next.disabled = busy || (st?.canNext ? !st.canNext() : false);
    finish.disabled = busy;
    cancel.disabled = busy;
  }

  function show(i: number) {
    current = i;
    reached = Math.max(reached, i);
    const st = steps[i];
    heading.textContent = `${i + 1}. ${st.title}`;
    clear(body, st.el);
    body.dataset.step = String(i + 1);
    st.enter();
    drawIndicator(); drawNav();
    heading.focus();
  }

  async function move(d: number) {
    if (busy) return;
    if (d > 0) {
      const st = steps[current];
      if (st.canNext && !st.canNext()) return;
      busy = true; drawNav();
      let ok = true;
      try { ok = st.next ? await st.next() : true; } finally { busy = false; }
      if (!ok) { drawNav(); return; }
      // Later steps depend on this one's answers: changing it invalidates what was reached beyond.
      if (current <= 1) reached = current + 1;
    }
    show(Math.min(Math.max(current + d, 0), steps.length - 1));
  }

  async function jump(i: number) {
    if (i === current || i > reached) return;
    if (i < current) { show(i); return; }
    while (current < i) { const before = current; await move(1); if (current === before) return; }
  }

  async function begin() {
    if (phase !== "idle") return;
    phase = "starting"; banner = { tone: "warn", text: "Starting…" }; drawBanner();
    try {
      endRun();
      await api.setupBegin();
      const [settings, info] = await Promise.all([api.getSettings(), api.getSetup().catch(() => null)]);
      ctx.state = emptyState();
      ctx.state.config = structuredClone(settings.config);
      ctx.state.path = settings.path;
      steps = [routeStep(ctx), microsoftStep(ctx), secretsStep(ctx), signInStep(ctx), checkStep(ctx), testStep(ctx), lastStep];
      current = 0; reached = 0;
      phase = "running";
      banner = info?.first_run ? { tone: "ok", text: `Welcome to Postern. This assistant writes ${settings.path} and stores the secrets in the OS keychain; Cancel leaves everything as it was.` } : null;
      drawBanner();
      show(0);
    } catch (e) {
      phase = "idle"; banner = { tone: "bad", text: `The setup assistant could not start: ${errorText(e)}` }; drawBanner();
    }
  }

  async function cancelSetup() {
    if (!(await confirmDialog("Leave the setup assistant?", "The settings and secrets go back to how they were before the assistant started.", "Leave and restore"))) return;
    busy = true; drawNav();
    try {
      const r = await api.setupCancel();
      phase = "idle"; endRun();
      banner = { tone: "ok", text: r.restored ? "Setup cancelled: the previous settings and secrets are back." : "Setup cancelled; nothing had been changed." };
    } catch (e) { banner = { tone: "bad", text: `Could not cancel: ${errorText(e)}` }; }
    busy = false;
    drawBanner(); drawNav();
  }

  async function done() {
    busy = true; drawNav();
    try {
      await api.setupFinish();
      phase = "idle"; endRun();
      banner = { tone: "ok", text: "Postern is set up. Run the assistant again any time from the tray menu (Set up…)." };
      drawBanner();
      navigate("queue");
    } catch (e) { banner = { tone: "bad", text: `Could not finish: ${errorText(e)}` }; drawBanner(); }
    busy = false; drawNav();
  }

  drawBanner();
  return { el, shown: () => { if (phase === "idle") void begin(); } };
}
