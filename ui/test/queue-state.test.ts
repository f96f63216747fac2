import { describe, expect, it } from "vitest";
import { applyEvent, emptyQueue, filterMessages, loaded, touchesQueue } from "../src/queue-state";
import type { MessageInfo } from "../src/types";

const msg = (id: string, over: Partial<MessageInfo> = {}): MessageInfo => ({
  id, from: "scanner@contoso.com", to: ["a@contoso.com"], subject: `Scan ${id}`, size: 1000, received_at: 1000,
  client: { peer: "192.168.1.20", helo: "", auth_user: null, tls: null }, state: "queued", attempts: 0, recipients: [], updated_at: 1000, ...over,
});

describe("queue reducer", () => {
  it("loads newest first", () => {
    const s = loaded(emptyQueue, [msg("a", { received_at: 1 }), msg("b", { received_at: 2 })]);
    expect(s.messages.map((m) => m.id)).toEqual(["b", "a"]);
  });
  it("received adds a queued message once", () => {
    let s = applyEvent(emptyQueue, { event: "received", id: "x", from: "f@c.com", recipients: 1, bytes: 10 }, 5);
    expect(s.messages).toHaveLength(1);
    expect(s.messages[0]).toMatchObject({ id: "x", state: "queued", size: 10 });
    const again = applyEvent(s, { event: "received", id: "x", from: "f@c.com", recipients: 1, bytes: 10 }, 6);
    expect(again).toBe(s);
  });
  it("sent, deferred, failed and deleted patch the message", () => {
    let s = loaded(emptyQueue, [msg("a"), msg("b")]);
    s = applyEvent(s, { event: "deferred", id: "a", reason: "451 4.7.500 Server busy", next_attempt_unix: 2000 }, 10);
    expect(s.messages.find((m) => m.id === "a")).toMatchObject({ state: "deferred", attempts: 1, next_attempt: 2_000_000 });
    s = applyEvent(s, { event: "sent", id: "a", reply: "250 2.0.0 OK" }, 11);
    expect(s.messages.find((m) => m.id === "a")).toMatchObject({ state: "sent", attempts: 2, next_attempt: null });
    s = applyEvent(s, { event: "failed", id: "b", recipients: ["a@contoso.com"], reply: "550 5.7.60", summary: "No Send As", fix: "Grant it" }, 12);
    expect(s.messages.find((m) => m.id === "b")).toMatchObject({ state: "failed", summary: "No Send As", fix: "Grant it" });
    s = applyEvent(s, { event: "deleted", id: "b" }, 13);
    expect(s.messages.map((m) => m.id)).toEqual(["a"]);
  });
  it("ignores unknown ids and attention events", () => {
    const s = loaded(emptyQueue, [msg("a")]);
    expect(applyEvent(s, { event: "sent", id: "zz", reply: "250" }, 1)).toBe(s);
    expect(applyEvent(s, { event: "needs-attention", summary: "x", fix: "y" }, 1)).toBe(s);
    expect(touchesQueue({ event: "attention-cleared" })).toBe(false);
    expect(touchesQueue({ event: "sent", id: "a", reply: "" })).toBe(true);
  });
  it("tracks an upload's progress until the message is settled, without a re-fetch", () => {
    let s = loaded(emptyQueue, [msg("a", { state: "queued" }), msg("b")]);
    const p = { event: "progress", id: "a", bytes: 4_000_000, total: 10_000_000 } as const;
    expect(touchesQueue(p)).toBe(false);
    s = applyEvent(s, p, 1);
    expect(s.uploads).toEqual({ a: { bytes: 4_000_000, total: 10_000_000 } });
    expect(s.messages.find((m) => m.id === "a")!.state).toBe("sending");
    s = applyEvent(s, { ...p, bytes: 9_000_000 }, 2);
    expect(s.uploads.a.bytes).toBe(9_000_000);
    // A re-fetch keeps it while the message is still sending...
    s = loaded(s, [msg("a", { state: "sending" }), msg("b")]);
    expect(s.uploads.a.bytes).toBe(9_000_000);
    // ...and the outcome ends it.
    s = applyEvent(s, { event: "sent", id: "a", reply: "250 2.0.0 OK" }, 3);
    expect(s.uploads).toEqual({});
    s = applyEvent(s, { ...p, id: "b" }, 4);
    s = loaded(s, [msg("a", { state: "sent" }), msg("b", { state: "deferred" })]);
    expect(s.uploads).toEqual({});
  });
  it("filters by state and text", () => {
    const ms = [msg("a", { state: "sent" }), msg("b", { state: "failed", subject: "Invoice 42" }), msg("c", { state: "deferred" })];
    expect(filterMessages(ms, { state: "failed", text: "" }).map((m) => m.id)).toEqual(["b"]);
    expect(filterMessages(ms, { state: "active", text: "" }).map((m) => m.id)).toEqual(["c"]);
    expect(filterMessages(ms, { state: "all", text: "invoice" }).map((m) => m.id)).toEqual(["b"]);
  });
});
