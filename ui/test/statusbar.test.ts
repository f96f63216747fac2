import { describe, expect, it } from "vitest";
import { stripText } from "../src/statusbar";
import type { Status } from "../src/types";

const base = (): Status => ({
  running: true, paused: false, queue: { queued: 12, sending: 0, deferred: 0, held: 0, sent: 40, failed: 0, bounced: 0 }, attention: null, connections: 1,
  throttle: { messages_per_minute: 30, messages_last_minute: 30, next_slot_in_secs: 14, recipients_per_day: 10000, recipient_window_secs: 86400, recipients_in_window: 50, recipients_left: 9950, recipients_free_in_secs: 100, quota_blocked_for_secs: null, busy_for_secs: null, eta_secs: 30, eta_unix_ms: null, concurrent_per_mailbox: 3, mailboxes: [] },
  tracking: null,
  account: { state: "signed-in", access_token_expires_at: 0 }, upstream: { mode: "submission", host: "smtp.office365.com", port: 587, mailbox: "s@c.com", auth: "oauth" }, listening: [], spool: "",
});

describe("status strip", () => {
  it("queued with a countdown from the status's arrival", () => {
    expect(stripText(base(), 0, 0)).toEqual({ tone: "busy", text: "12 queued — next slot in 14 s" });
    expect(stripText(base(), 0, 4000).text).toBe("12 queued — next slot in 10 s");
  });
  it("attention wins, with its fix", () => {
    const s = base(); s.attention = { summary: "Sign-in needed.", fix: "Open Account.", cause: "", recheck_at: 0 };
    expect(stripText(s, 0, 0)).toEqual({ tone: "bad", text: "Sign-in needed.", fix: "Open Account." });
  });
  it("all delivered, quota pause, paused, not connected", () => {
    const s = base(); s.queue.queued = 0;
    expect(stripText(s, 0, 0).tone).toBe("ok");
    const q = base(); q.throttle!.quota_blocked_for_secs = 600;
    expect(stripText(q, 0, 0).text).toMatch(/quota is used up, sending resumes in 10 min/);
    const p = base(); p.paused = true;
    expect(stripText(p, 0, 0).tone).toBe("warn");
    expect(stripText(null, 0, 0).text).toMatch(/Connecting/);
  });
  it("a bounce after sending is not \"all mail delivered\"", () => {
    const s = base(); s.queue.queued = 0; s.queue.bounced = 1;
    expect(stripText(s, 0, 0)).toEqual({ tone: "warn", text: "All mail handed to Microsoft — nothing waiting · 1 bounced after sending.", fix: "The queue shows which recipients bounced, why, and the fix." });
  });
  it("never signed in is not a refused sign-in", () => {
    const s = base(); s.account = { state: "signed-out", reason: "Not signed in yet." };
    const t = stripText(s, 0, 0);
    expect(t.text).toMatch(/Not signed in yet/);
    expect(t.text).not.toMatch(/no longer accepts/);
    expect(t.fix).toBe("Open Account and sign in.");
    const r = base(); r.account = { state: "sign-in-needed", reason: "AADSTS50173" };
    expect(stripText(r, 0, 0)).toMatchObject({ tone: "bad", text: expect.stringMatching(/no longer accepts the saved sign-in/) });
  });
  it("a secret missing from the keychain is named, not taken for a missing mailbox", () => {
    const st = base(); st.queue.queued = 0;
    st.account = { state: "not-configured", reason: "No client secret in the keychain: run `postern account set-secret`." };
    expect(stripText(st, 0, 0)).toEqual({ tone: "warn", text: "No client secret in the keychain: mail is kept until it is stored.", fix: "Open Set up and store it at step 3 (Secrets)." });
    st.account = { state: "not-configured", reason: "upstream.mailbox is not set" };
    expect(stripText(st, 0, 0).text).toMatch(/^No mailbox or app registration/);
  });
});
