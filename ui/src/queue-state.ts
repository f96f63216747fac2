//! The queue as the UI holds it, and how engine events change it. A pure
//! reducer: `get_queue` gives the truth, events patch it until the next
//! re-fetch (which every event also triggers — the UI never polls).

import type { EngineEvent, MessageInfo, MsgState } from "./types";

/** How far a large message's upload to Microsoft has got. */
export interface Upload { bytes: number; total: number }

export interface QueueState {
  messages: MessageInfo[];
  /** Uploads in progress, by message id (from `progress` events). */
  uploads: Record<string, Upload>;
  /** Bumped on every change, so views can skip redundant renders. */
  version: number;
}

export const emptyQueue: QueueState = { messages: [], uploads: {}, version: 0 };

export function loaded(s: QueueState, messages: MessageInfo[]): QueueState {
  const sorted = [...messages].sort((a, b) => b.received_at - a.received_at);
  // An upload goes on only while its message is being sent.
  const uploads = Object.fromEntries(Object.entries(s.uploads)
    .filter(([id]) => sorted.some((m) => m.id === id && m.state === "sending")));
  return { messages: sorted, uploads, version: s.version + 1 };
}

function patch(s: QueueState, id: string, f: (m: MessageInfo) => MessageInfo): QueueState {
  let hit = false;
  const messages = s.messages.map((m) => (m.id === id ? ((hit = true), f(m)) : m));
  const uploads = id in s.uploads ? withoutUpload(s.uploads, id) : s.uploads;
  return hit || uploads !== s.uploads ? { messages, uploads, version: s.version + 1 } : s;
}

function withoutUpload(uploads: Record<string, Upload>, id: string): Record<string, Upload> {
  const { [id]: _, ...rest } = uploads;
  return rest;
}

/** Applies one engine event; `now` is the local clock (unix ms). */
export function applyEvent(s: QueueState, e: EngineEvent, now: number): QueueState {
  switch (e.event) {
    case "received": {
      if (s.messages.some((m) => m.id === e.id)) return s;
      const m: MessageInfo = {
        id: e.id, from: e.from, to: [], subject: "", size: e.bytes, received_at: now,
        client: { peer: "", helo: "", auth_user: null, tls: null }, state: "queued", attempts: 0, recipients: [], updated_at: now,
      };
      return { ...s, messages: [m, ...s.messages], version: s.version + 1 };
    }
    case "sent":
      return patch(s, e.id, (m) => ({ ...m, state: "sent", last_reply: e.reply, attempts: m.attempts + 1, next_attempt: null, summary: null, fix: null, updated_at: now }));
    case "deferred":
      return patch(s, e.id, (m) => ({ ...m, state: "deferred", last_reply: e.reason, attempts: m.attempts + 1, next_attempt: e.next_attempt_unix * 1000, updated_at: now }));
    case "failed":
      return patch(s, e.id, (m) => ({ ...m, state: "failed", last_reply: e.reply, summary: e.summary, fix: e.fix, attempts: m.attempts + 1, next_attempt: null, updated_at: now }));
    case "deleted": {
      const messages = s.messages.filter((m) => m.id !== e.id);
      return messages.length === s.messages.length ? s : { messages, uploads: withoutUpload(s.uploads, e.id), version: s.version + 1 };
    }
    case "progress": {
      const uploads = { ...s.uploads, [e.id]: { bytes: e.bytes, total: e.total } };
      const messages = s.messages.map((m) => (m.id === e.id && m.state !== "sending" ? { ...m, state: "sending" as MsgState } : m));
      return { messages, uploads, version: s.version + 1 };
    }
    default:
      return s;
  }
}

/** Does this event change the queue (so `get_queue` should be re-fetched)? */
export function touchesQueue(e: EngineEvent): boolean {
  return e.event !== "needs-attention" && e.event !== "attention-cleared" && e.event !== "progress";
}

export interface QueueFilter { state: MsgState | "all" | "active"; text: string }

export function filterMessages(ms: MessageInfo[], f: QueueFilter): MessageInfo[] {
  const q = f.text.trim().toLowerCase();
  return ms.filter((m) => {
    if (f.state === "active" && (m.state === "sent" || m.state === "failed")) return false;
    if (f.state !== "all" && f.state !== "active" && m.state !== f.state) return false;
    if (!q) return true;
    return [m.from, m.subject, m.id, m.last_reply ?? "", ...m.to].some((x) => x.toLowerCase().includes(q));
  });
}
