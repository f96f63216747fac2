//! The one-line status strip at the top: "12 queued — next slot in 14 s", or
//! what needs attention and its fix, in a warning style.

import { h, clear } from "./dom";
import { countdownLeft, formatCountdown, formatDuration, plural } from "./format";
import type { Store } from "./store";
import type { Status } from "./types";

export interface StripText { tone: "ok" | "busy" | "warn" | "bad"; text: string; fix?: string }

export function stripText(st: Status | null, statusAt: number, now: number): StripText {
  if (!st) return { tone: "busy", text: "Connecting to Postern…" };
  if (st.attention) return { tone: "bad", text: st.attention.summary, fix: st.attention.fix };
  if (!st.running) return { tone: "warn", text: "The relay is not running." };
  const q = st.queue;
  const waiting = q.queued + q.sending + q.deferred + q.held;
  if (st.paused) return { tone: "warn", text: `Delivery is paused — ${plural(waiting, "message")} waiting.`, fix: "Resume delivery from the Queue page." };
  if (st.account.state === "signed-out") return { tone: "warn", text: "Not signed in yet: mail is kept until Postern is signed in to Microsoft 365.", fix: "Open Account and sign in." };
  if (st.account.state === "sign-in-needed") return { tone: "bad", text: "Sign-in needed: Microsoft no longer accepts the saved sign-in.", fix: "Open Account and sign in again." };
  // A secret missing from the keychain (the engine says which) is not a missing mailbox or client id.
  if (st.account.state === "not-configured" && /^No .* in the keychain/.test(st.account.reason))
    return { tone: "warn", text: `${st.account.reason.split(":")[0]}: mail is kept until it is stored.`, fix: "Open Set up and store it at step 3 (Secrets)." };
  if (st.account.state === "not-configured") return { tone: "warn", text: "No mailbox or app registration is configured; mail is kept until one is.", fix: "Open Settings and fill in the mailbox and client id." };
  const t = st.throttle;
  const bounced = q.bounced ? ` · ${q.bounced} bounced after sending` : "";
  const failed = (q.failed ? ` · ${q.failed} failed` : "") + bounced;
  if (waiting === 0 && bounced) return { tone: "warn", text: `All mail handed to Microsoft — nothing waiting${failed}.`, fix: "The queue shows which recipients bounced, why, and the fix." };
  if (waiting === 0) return { tone: "ok", text: `All mail delivered — nothing waiting${failed}.` };
  let tail = "";
  if (t?.quota_blocked_for_secs) tail = ` — Microsoft's quota is used up, sending resumes in ${formatDuration(countdownLeft(t.quota_blocked_for_secs, statusAt, now)!)}`;
  else if (t?.busy_for_secs) tail = ` — Microsoft is busy, backing off for ${formatDuration(countdownLeft(t.busy_for_secs, statusAt, now)!)}`;
  else if (t) tail = ` — next slot ${formatCountdown(countdownLeft(t.next_slot_in_secs, statusAt, now))}`;
  return { tone: failed ? "warn" : "busy", text: `${q.queued + q.sending + q.deferred} queued${q.held ? `, ${q.held} held` : ""}${failed}${tail}` };
}

export function statusStrip(store: Store): HTMLElement {
  const el = h("div", { class: "strip", role: "status", "aria-live": "polite" });
  const render = () => {
    const t = stripText(store.status, store.statusAt, Date.now());
    el.className = `strip strip-${t.tone}`;
    clear(el, h("span", { class: "strip-dot", "aria-hidden": "true" }), h("span", { class: "strip-text" }, t.text), t.fix ? h("span", { class: "strip-fix" }, t.fix) : null);
  };
  store.subscribe(render);
  store.onTick(render);
  render();
  return el;
}
