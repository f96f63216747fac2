//! Throttling page: Microsoft's sending limits as Postern sees them — the
//! minute window, the 24-hour recipient budget, open connections, pauses for
//! quota or a busy server, when the queue will be drained, and 24 h history.
//! With several sending mailbox (`upstream.send_as = "sender"`), a table of
//! each mailbox's budget.

import { historyChart } from "../chart";
import { clear, h } from "../dom";
import { countdownLeft, formatCountdown, formatDuration } from "../format";
import { api, errorText } from "../ipc";
import { mailboxRows } from "../mailboxes";
import type { Store } from "../store";
import type { HistoryPoint } from "../types";
import type { PageView } from "./page";

function card(id: string, title: string, value: Node | string, sub: Node | string | null, meter?: { value: number; max: number }): HTMLElement {
  return h("section", { class: "card", id },
    h("h3", {}, title), h("p", { class: "big" }, value),
    meter ? h("meter", { min: 0, max: meter.max, value: Math.min(meter.value, meter.max), low: meter.max * 0.7, high: meter.max * 0.9, optimum: 0, "aria-label": title }) : null,
    sub ? h("p", { class: "muted" }, sub) : null);
}

export function throttlingPage(store: Store): PageView {
  const cards = h("div", { class: "cards" });
  const pauses = h("div", { class: "pauses" });
  const chartBox = h("div", { class: "chart-box", id: "throttle-chart" });
  const perMailbox = h("div", { id: "throttle-mailboxes" });
  let history: HistoryPoint[] = [];
  let historyError = "";
  const el = h("div", { class: "page page-throttling" }, pauses, cards, perMailbox,
    h("section", { class: "panel" }, h("h3", {}, "Last 24 hours"),
      h("p", { class: "legend" }, h("span", { class: "key key-bar" }), "messages sent per hour ", h("span", { class: "key key-line" }), "recipients per hour"), chartBox));

  async function loadHistory() {
    try { history = await api.getThrottleHistory(); historyError = ""; } catch (e) { historyError = errorText(e); }
    clear(chartBox, historyError ? h("p", { class: "empty" }, `Could not read the history: ${historyError}`) : history.length ? historyChart(history) : h("p", { class: "empty" }, "Nothing sent in the last 24 hours."));
  }

  function render() {
    const st = store.status;
    const t = st?.throttle;
    const now = Date.now();
    if (!st) { clear(cards, h("p", { class: "empty" }, "Waiting for Postern…")); clear(pauses); clear(perMailbox); return; }
    const left = (v: number | null | undefined) => countdownLeft(v, store.statusAt, now);
    const waiting = st.queue.queued + st.queue.sending + st.queue.deferred;
    clear(pauses,
      t?.quota_blocked_for_secs ? h("p", { class: "banner banner-bad", id: "quota-pause" }, `Microsoft says the mailbox's quota is used up (554 5.2.0). Postern stops sending for ${formatDuration(left(t.quota_blocked_for_secs)!)}, then tries again. Nothing bounces.`) : null,
      t?.busy_for_secs ? h("p", { class: "banner banner-warn", id: "busy-pause" }, `Microsoft is busy. Every connection stands back for ${formatDuration(left(t.busy_for_secs)!)}.`) : null,
      st.paused ? h("p", { class: "banner banner-warn" }, "Delivery is paused by you (Queue page → Resume delivery).") : null);
    const rows = t ? mailboxRows(t, left) : [];
    clear(perMailbox, rows.length ? h("section", { class: "panel" }, h("h3", {}, "Each sending mailbox"),
      h("p", { class: "muted" }, "Each sender sends from their own mailbox, and Microsoft counts each mailbox's limits separately."),
      h("table", { class: "mailboxes" },
        h("thead", {}, h("tr", {}, ...["Mailbox", "Messages this minute", "Recipients in 24 h", "Next slot", "State"].map((c) => h("th", {}, c)))),
        h("tbody", {}, ...rows.map((r) => h("tr", { class: `tone-${r.tone}` },
          h("td", {}, r.address), h("td", {}, r.minute), h("td", {}, r.budget), h("td", {}, r.next), h("td", {}, r.state)))))) : null);
    if (!t) {
      clear(cards, h("p", { class: "empty" }, `No sending limits apply in ${st.upstream.mode} mode.`),
        card("card-conns", "Open connections", `${st.connections}`, null));
      return;
    }
    const perMin = t.messages_per_minute;
    const perDay = t.recipients_per_day;
    const slot = left(t.next_slot_in_secs);
    clear(cards,
      card("card-minute", "Messages this minute", perMin ? `${t.messages_last_minute} / ${perMin}` : `${t.messages_last_minute}`,
        h("span", {}, "Next slot ", h("strong", { id: "next-slot" }, formatCountdown(slot))), perMin ? { value: t.messages_last_minute, max: perMin } : undefined),
      card("card-budget", "Recipients in 24 h", perDay ? `${t.recipients_in_window.toLocaleString("en-US")} / ${perDay.toLocaleString("en-US")}` : t.recipients_in_window.toLocaleString("en-US"),
        t.recipients_free_in_secs != null ? `${(t.recipients_left ?? 0).toLocaleString("en-US")} left; the oldest stop counting in ${formatDuration(left(t.recipients_free_in_secs)!)}` : `${(t.recipients_left ?? 0).toLocaleString("en-US")} left`,
        perDay ? { value: t.recipients_in_window, max: perDay } : undefined),
      card("card-conns", "Open connections", `${st.connections} / 3`, "Microsoft allows 3 per mailbox", { value: st.connections, max: 3 }),
      card("card-eta", "Queue drained", waiting === 0 ? "Now" : t.eta_secs != null ? formatCountdown(left(t.eta_secs)) : "—",
        waiting === 0 ? "Nothing waiting" : `${waiting} waiting${st.queue.held ? ` (${st.queue.held} held are not counted)` : ""}${t.eta_unix_ms ? ` · at ${new Date(t.eta_unix_ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}` : ""}`));
  }

  store.subscribe(render);
  // A sent message changes the hour's bar: re-read the history (only then, never on a timer).
  store.onEvent((e) => { if (e.event === "sent" && !el.hidden) void loadHistory(); });
  store.onTick(() => { if (!el.hidden) render(); });
  render();
  return { el, shown: () => { render(); void loadHistory(); } };
}
