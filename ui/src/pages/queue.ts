//! Queue page: the live table of messages (filter by state, search) and the
//! selected message's detail — the last reply explained, the redacted
//! transcript, and retry / delete / resend-as-the-mailbox. A sent message
//! shows how its recipients fared in Microsoft's message trace (trace.ts).

import { confirmDialog } from "../confirm";
import { clear, h } from "../dom";
import { explainReply, formatRelative, formatSize, formatTime } from "../format";
import { api, errorText } from "../ipc";
import { filterMessages, type QueueFilter, type Upload } from "../queue-state";
import type { Store } from "../store";
import { traceLines, traceMark, TRACE_TONE } from "../trace";
import { MSG_STATES, type MessageDetail, type MessageInfo, type Recipient } from "../types";
import type { PageView } from "./page";

const STATE_LABEL: Record<string, string> = { queued: "Queued", sending: "Sending", deferred: "Deferred", held: "Held", sent: "Sent", failed: "Failed" };

export function stateBadge(state: string): HTMLElement {
  return h("span", { class: `badge badge-${state}` }, STATE_LABEL[state] ?? state);
}

/** The row's mark of the trace: "delivered", "2 delivered · 1 bounced", "tracking…". */
export function traceBadge(m: MessageInfo): HTMLElement | null {
  const t = traceMark(m);
  if (!t) return null;
  return h("span", { class: `badge trace-mark tone-${t.tone}`, "data-trace": t.kind, title: "What Microsoft's message trace says became of it" }, t.text);
}

/** One recipient in the detail pane: its delivery state, then what the trace says. */
function recipientItem(r: Recipient): HTMLElement {
  const t = traceLines(r);
  return h("li", { "data-address": r.address }, r.address, " ", stateBadge(r.state), r.reply ? h("span", { class: "muted small" }, ` ${r.reply}`) : null,
    t ? h("div", { class: `trace trace-${t.outcome}`, "data-trace": t.outcome },
      h("p", { class: "trace-head" }, h("span", { class: `badge trace-mark tone-${TRACE_TONE[t.outcome]}` }, t.outcome), " ", h("span", { class: "muted small" }, t.head)),
      t.reason ? h("p", { class: "trace-reason mono small" }, t.reason) : null,
      t.meaning ? h("p", { class: "trace-meaning" }, t.meaning) : null,
      t.fix ? h("p", { class: "trace-fix" }, h("strong", {}, "Fix: "), t.fix) : null) : null);
}

/** Changes when the message or its trace does (the detail is then re-read). */
const detailKey = (m: MessageInfo | undefined, id: string) =>
  `${id}@${m?.updated_at ?? 0}/${m?.state}/${m?.recipients.map((r) => `${r.trace?.outcome}:${r.trace?.checked_at}`).join(",")}`;

export function queuePage(store: Store): PageView & { select(id: string): void } {
  const filter: QueueFilter = { state: "all", text: "" };
  let selected: string | null = null;
  let detail: MessageDetail | null = null;
  let detailError: string | null = null;
  let detailFor = "";
  let notice = "";

  const stateSel = h("select", { id: "queue-state", "aria-label": "Show messages in state", onchange: () => { filter.state = stateSel.value as QueueFilter["state"]; render(); } },
    h("option", { value: "all" }, "All messages"), h("option", { value: "active" }, "Not yet delivered"),
    MSG_STATES.map((s) => h("option", { value: s }, STATE_LABEL[s])));
  const search = h("input", { type: "search", id: "queue-search", placeholder: "Search sender, recipient, subject…", "aria-label": "Search the queue", oninput: () => { filter.text = search.value; render(); } });
  const pauseBtn = h("button", { class: "btn", onclick: async () => { try { await api.setPaused(!store.status?.paused); } catch (e) { notice = errorText(e); renderDetail(); } } });
  const retryAllBtn = h("button", { class: "btn", onclick: async () => { try { const r = await api.retryAll(); notice = `${r.retried} message(s) will be tried again now.`; } catch (e) { notice = errorText(e); } renderDetail(); } }, "Retry all");
  const counts = h("span", { class: "muted counts" });
  const tbody = h("tbody");
  const table = h("table", { class: "grid", id: "queue-table" },
    h("thead", {}, h("tr", {}, ["Received", "From", "To", "Subject", "Size", "State", "Tries", "Next attempt", "Last reply"].map((c) => h("th", { scope: "col" }, c)))),
    tbody);
  const empty = h("p", { class: "empty" });
  const pane = h("section", { class: "detail", id: "message-detail", "aria-label": "Selected message" });
  const el = h("div", { class: "page page-queue" },
    h("div", { class: "toolbar" }, stateSel, search, counts, h("span", { class: "spacer" }), retryAllBtn, pauseBtn),
    h("div", { class: "split" }, h("div", { class: "table-wrap" }, table, empty), pane));

  table.addEventListener("keydown", (ev) => {
    const rows = [...tbody.querySelectorAll<HTMLTableRowElement>("tr[data-id]")];
    const i = rows.findIndex((r) => r.dataset.id === selected);
    let next = -1;
    if (ev.key === "ArrowDown") next = Math.min(rows.length - 1, i + 1);
    else if (ev.key === "ArrowUp") next = Math.max(0, i - 1);
    else if (ev.key === "Home") next = 0;
    else if (ev.key === "End") next = rows.length - 1;
    else if (ev.key === "Delete" && selected) { void del(selected); return; }
    else return;
    ev.preventDefault();
    if (rows[next]) { select(rows[next].dataset.id!); tbody.querySelector<HTMLElement>(`tr[data-id="${CSS.escape(rows[next].dataset.id!)}"]`)?.focus(); }
  });

  function select(id: string) {
    selected = id;
    notice = "";
    render();
    void loadDetail();
  }

  async function loadDetail() {
    const id = selected;
    if (!id) return;
    const m = store.queue.messages.find((x) => x.id === id);
    detailFor = detailKey(m, id);
    try { const d = await api.getMessage(id); if (selected === id) { detail = d; detailError = null; } }
    catch (e) { if (selected === id) { detail = null; detailError = errorText(e); } }
    renderDetail();
  }

  async function act(what: string, f: () => Promise<unknown>, done: string) {
    try { await f(); notice = done; } catch (e) { notice = `${what} did not work: ${errorText(e)}`; }
    renderDetail();
  }

  async function del(id: string) {
    const m = store.queue.messages.find((x) => x.id === id);
    const ok = await confirmDialog("Delete this message?", `"${m?.subject || "(no subject)"}" from ${m?.from ?? "?"} will be removed for good and never delivered.`, "Delete");
    if (!ok) return;
    await act("Delete", () => api.deleteMessage(id), "Deleted.");
    if (selected === id) { selected = null; detail = null; render(); }
  }

  function row(m: MessageInfo, now: number): HTMLTableRowElement {
    const tr = h("tr", { "data-id": m.id, "data-state": m.state, tabindex: m.id === selected ? 0 : -1, "aria-selected": m.id === selected ? "true" : "false", class: m.id === selected ? "selected" : "", onclick: () => select(m.id) },
      h("td", { class: "nowrap", title: new Date(m.received_at).toLocaleString() }, formatTime(m.received_at, now)),
      h("td", { class: "ellipsis" }, m.from),
      h("td", { class: "ellipsis" }, m.to.length > 1 ? `${m.to[0]} +${m.to.length - 1}` : (m.to[0] ?? "")),
      h("td", { class: "ellipsis subject" }, m.subject || h("span", { class: "muted" }, "(no subject)")),
      h("td", { class: "num nowrap" }, formatSize(m.size)),
      h("td", { class: "nowrap" }, stateBadge(m.state), uploadBar(store.queue.uploads[m.id])),
      h("td", { class: "num" }, m.attempts),
      h("td", { class: "nowrap", "data-next": m.next_attempt ?? null }, m.next_attempt ? formatRelative(m.next_attempt, now) : ""),
      // A sent message's trace says more than Microsoft's 250 / 202: its mark first.
      h("td", { class: "ellipsis reply", title: m.last_reply ?? "" }, m.state === "sent" ? traceBadge(m) : null, " ", m.last_reply ?? ""));
    return tr;
  }

  /** A large message on its way to Microsoft: a bar and a percentage. */
  function uploadBar(u: Upload | undefined) {
    if (!u || u.total <= 0) return null;
    const pct = Math.min(100, Math.floor((u.bytes / u.total) * 100));
    return h("span", { class: "upload", title: `Uploading to Microsoft: ${formatSize(u.bytes)} of ${formatSize(u.total)}` },
      h("progress", { max: u.total, value: u.bytes, "aria-label": "Upload to Microsoft" }),
      h("span", { class: "upload-pct" }, `${pct} %`));
  }

  function render() {
    const now = Date.now();
    const all = store.queue.messages;
    const shown = filterMessages(all, filter);
    const focused = (document.activeElement as HTMLElement | null)?.closest?.("tr[data-id]") as HTMLElement | null;
    const refocus = focused && tbody.contains(focused) ? focused.dataset.id : null;
    clear(tbody, shown.map((m) => row(m, now)));
    if (refocus) tbody.querySelector<HTMLElement>(`tr[data-id="${CSS.escape(refocus)}"]`)?.focus();
    if (selected === null && shown.length) tbody.querySelector("tr")?.setAttribute("tabindex", "0");
    counts.textContent = shown.length === all.length ? `${all.length} messages` : `${shown.length} of ${all.length}`;
    empty.textContent = store.queueError ? `Could not read the queue: ${store.queueError}` : all.length === 0 ? "No messages yet. Mail that devices send to Postern appears here." : shown.length === 0 ? "No message matches." : "";
    empty.hidden = !empty.textContent;
    pauseBtn.textContent = store.status?.paused ? "Resume delivery" : "Pause delivery";
    const m = all.find((x) => x.id === selected);
    if (selected && m && detailKey(m, m.id) !== detailFor) void loadDetail();
    else renderDetail();
  }

  function renderDetail() {
    if (!selected) { clear(pane, h("p", { class: "empty" }, "Select a message to see what happened to it.")); return; }
    const m = detail && detail.id === selected ? detail : store.queue.messages.find((x) => x.id === selected);
    if (!m) { clear(pane, h("p", { class: "empty" }, detailError ?? "This message is no longer in the queue.")); return; }
    const ex = explainReply(m.last_reply, m.summary, m.fix);
    const tone = m.state === "failed" ? "bad" : m.state === "held" || m.state === "deferred" ? "warn" : "ok";
    const actions = h("div", { class: "actions" },
      m.state !== "sent" ? h("button", { class: "btn primary", id: "act-retry", onclick: () => act("Retry", () => api.retry(m.id), "It will be tried again now.") }, "Retry now") : null,
      m.state === "failed" ? h("button", { class: "btn", id: "act-resend", title: "Send it again with the mailbox as sender; the original sender becomes Reply-To", onclick: () => act("Resend", () => api.resendRewritten(m.id), "Queued again, to be sent as the mailbox.") }, "Resend as the mailbox") : null,
      h("button", { class: "btn danger", id: "act-delete", onclick: () => del(m.id) }, "Delete…"));
    clear(pane,
      h("header", { class: "detail-head" }, h("h2", {}, m.subject || "(no subject)"), h("span", { class: "detail-marks" }, stateBadge(m.state), traceBadge(m))),
      ex ? h("div", { class: `explain explain-${tone}`, id: "explanation" }, h("p", { class: "explain-summary" }, ex.summary), ex.fix ? h("p", { class: "explain-fix" }, h("strong", {}, "Fix: "), ex.fix) : null) : null,
      actions,
      notice ? h("p", { class: "notice", role: "status" }, notice) : null,
      h("dl", { class: "facts" },
        h("dt", {}, "From"), h("dd", {}, m.from),
        h("dt", {}, "To"), h("dd", {}, m.recipients.length ? h("ul", { class: "rcpts" }, m.recipients.map(recipientItem)) : m.to.join(", ")),
        h("dt", {}, "Received"), h("dd", {}, new Date(m.received_at).toLocaleString()),
        h("dt", {}, "Size"), h("dd", {}, formatSize(m.size)),
        h("dt", {}, "Device"), h("dd", {}, [m.client.peer, m.client.auth_user ? `user ${m.client.auth_user}` : null, m.client.tls ? "TLS" : null].filter(Boolean).join(" · ") || "—"),
        h("dt", {}, "Attempts"), h("dd", {}, String(m.attempts), m.next_attempt ? ` — next ${formatRelative(m.next_attempt, Date.now())}` : ""),
        m.rewrite_sender ? [h("dt", {}, "Sender"), h("dd", {}, "Sent as the mailbox (original sender in Reply-To)")] : null,
        h("dt", {}, "Last reply"), h("dd", { class: "mono" }, m.last_reply ?? "—"),
        h("dt", {}, "ID"), h("dd", { class: "mono small" }, m.id)),
      h("details", { class: "transcript", open: m.state === "failed" || m.state === "held" },
        h("summary", {}, "SMTP transcript (passwords and tokens removed)"),
        h("pre", { class: "mono", tabindex: 0 }, detail?.id === m.id ? (detail.transcript || "No conversation with Microsoft yet.") : "Loading…")));
  }

  store.subscribe(render);
  // The trace changed for the message shown: read its detail again.
  store.onEvent((e) => { if ((e.event === "bounced" || e.event === "traced") && e.id === selected) void loadDetail(); });
  store.onTick(() => {
    const now = Date.now();
    for (const td of tbody.querySelectorAll<HTMLElement>("td[data-next]")) td.textContent = formatRelative(Number(td.dataset.next), now);
  });
  render();
  return { el, select, shown: () => render() };
}
