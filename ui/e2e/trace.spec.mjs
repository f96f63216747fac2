// End-to-end tests of delivery tracking in the built UI (mocked shell,
// fixtures from the engine): the queue's marks of the message trace, the
// detail pane's per-recipient outcome, reason and fix, the refresh on
// `bounced` / `traced` events, the throttling page's tracking panel (on,
// unavailable, no engine) and the [tracking] settings. Run: npm run test:e2e
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "./server.mjs";
import { launch } from "./browser.mjs";

let server, chrome, page;
const errors = [];
/** The engine's traced message: delivered / bounced 5.1.10 / junk (fixtures_graph.rs). */
const TRACED = "019b8d2e6a000006";

before(async () => {
  server = await startServer();
  chrome = await launch();
});
after(async () => { await chrome?.close(); await server?.close(); });

async function open(hash, query = "", { clock = false } = {}) {
  page = await chrome.context.newPage();
  if (clock) await page.clock.install();
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  await page.goto(`${server.url}${query}#${hash}`);
  page.setDefaultTimeout(8000);
  await page.locator("#queue-table tbody tr").first().waitFor({ state: "attached" });
  return page;
}
const calls = (cmd) => page.evaluate((c) => window.__mock.calls.filter((x) => x.cmd === c), cmd);

describe("queue: the message trace", () => {
  it("marks the traced row with the counts, the worst outcome naming it; untracked rows have no mark", async () => {
    await open("queue", "?scenario=traced");
    const mark = page.locator(`tr[data-id="${TRACED}"] .trace-mark`);
    await mark.waitFor();
    assert.equal(await mark.getAttribute("data-trace"), "bounced");
    assert.equal(await mark.textContent(), "1 bounced · 1 spam · 1 delivered");
    assert.match(await mark.getAttribute("class"), /tone-bad/);
    // Sent over SMTP without tracking (the submission fixture): no mark.
    assert.equal(await page.locator('tr[data-id="019b8d2e6a000003"] .trace-mark').count(), 0);
    // The status strip does not say "all mail delivered" over a bounce.
    const strip = page.locator(".strip");
    await strip.filter({ hasText: "bounced after sending" }).waitFor();
    assert.doesNotMatch(await strip.textContent(), /All mail delivered/);
    await page.close();
  });

  it("the detail pane gives each recipient's outcome; the bounce with its code, Microsoft's reason, meaning and fix", async () => {
    await open("queue", "?scenario=traced");
    await page.locator(`tr[data-id="${TRACED}"]`).click();
    const bounced = page.locator('#message-detail li[data-address="old.supplier@fabrikam.com"] .trace');
    await bounced.waitFor();
    assert.equal(await bounced.getAttribute("data-trace"), "bounced");
    assert.match(await bounced.locator(".trace-head").textContent(), /bounced \(the trace says failed\)/);
    assert.match(await bounced.locator(".trace-reason").textContent(), /5\.1\.10 RESOLVER\.ADR\.RecipientNotFound; Recipient not found by SMTP address lookup/);
    assert.match(await bounced.locator(".trace-meaning").textContent(), /Microsoft 365 does not know this recipient address/);
    assert.match(await bounced.locator(".trace-fix").textContent(), /^Fix: Check the address for typos/);
    const spam = page.locator('#message-detail li[data-address="orders@northwind.example"] .trace');
    assert.equal(await spam.getAttribute("data-trace"), "spam");
    assert.match(await spam.locator(".trace-meaning").textContent(), /Junk Email folder/);
    const ok = page.locator('#message-detail li[data-address="accounts@contoso.com"] .trace');
    assert.equal(await ok.getAttribute("data-trace"), "delivered");
    assert.equal(await ok.locator(".trace-fix").count(), 0);
    assert.equal(await page.locator("#message-detail .detail-head .trace-mark").getAttribute("data-trace"), "bounced");
    await page.close();
  });

  it("follows traced and bounced events: tracking… until the trace tells, then the bounce, in the row and the detail", async () => {
    await open("queue", "?scenario=traced");
    // Back to before the trace had the message: all pending.
    await page.evaluate((id) => {
      const m = window.__mock.data.queue.find((x) => x.id === id);
      window.__saved = structuredClone(m.recipients);
      for (const r of m.recipients) r.trace = { outcome: "pending", checked_at: Date.now() };
      window.__mock.emit("engine-event", { event: "traced", id });
    }, TRACED);
    const mark = page.locator(`tr[data-id="${TRACED}"] .trace-mark`);
    await page.waitForFunction((id) => document.querySelector(`tr[data-id="${id}"] .trace-mark`)?.dataset.trace === "pending", TRACED);
    assert.equal(await mark.textContent(), "tracking…");
    await page.locator(`tr[data-id="${TRACED}"]`).click();
    await page.locator('#message-detail li[data-address="old.supplier@fabrikam.com"] .trace[data-trace="pending"]').waitFor();
    assert.match(await page.locator('#message-detail li[data-address="old.supplier@fabrikam.com"] .trace-head').textContent(), /not in Microsoft's message trace yet/);
    const before = (await calls("get_message")).length;
    await page.evaluate((id) => {
      const m = window.__mock.data.queue.find((x) => x.id === id);
      m.recipients = window.__saved;
      window.__mock.emit("engine-event", { event: "bounced", id, recipients: ["old.supplier@fabrikam.com"], reply: "5.1.10 Recipient not found", summary: "Microsoft 365 does not know this recipient address.", fix: "Check the address for typos." });
    }, TRACED);
    await page.locator('#message-detail li[data-address="old.supplier@fabrikam.com"] .trace[data-trace="bounced"]').waitFor();
    assert.equal(await mark.getAttribute("data-trace"), "bounced");
    assert.ok((await calls("get_message")).length > before, "the detail was read again");
    await page.close();
  });
});

describe("throttling: delivery tracking", () => {
  it("on: the state, last and next poll on the local clock, and the counters", async () => {
    await open("throttling", "?scenario=traced", { clock: true });
    const panel = page.locator("#tracking-panel");
    await panel.waitFor();
    assert.equal(await panel.getAttribute("data-state"), "on");
    assert.equal(await page.locator("#tracking-state").textContent(), "On");
    assert.equal(await page.locator("#tracking-last").textContent(), "just now");
    // The poll that settled every recipient leaves nothing followed.
    assert.equal(await page.locator("#tracking-followed").textContent(), "0");
    assert.equal(await page.locator("#tracking-requests").textContent(), "1 trace query, 1 details");
    assert.match(await page.locator("#tracking-budget").textContent(), /^89 details requests left/);
    assert.equal(await page.locator("#tracking-reason").count(), 0);
    await page.clock.runFor(11 * 60_000);
    assert.equal(await page.locator("#tracking-last").textContent(), "11 min ago");
    assert.equal((await calls("get_status")).length, 1, "the times move without asking the engine");
    await page.close();
  });

  it("unavailable: says why (client credentials) and what to do, without counters", async () => {
    await open("throttling");
    const panel = page.locator("#tracking-panel");
    await panel.waitFor();
    assert.equal(await panel.getAttribute("data-state"), "unavailable");
    assert.equal(await page.locator("#tracking-state").textContent(), "Unavailable");
    assert.match(await page.locator("#tracking-reason").textContent(), /needs the client-credentials sign-in/);
    assert.match(await page.locator("#tracking-fix").textContent(), /^Fix: .*ExchangeMessageTrace\.Read\.All.*Grant admin consent/);
    assert.equal(await page.locator("#tracking-facts").count(), 0);
    await page.close();
  });

  it("no engine running: says tracking is not known", async () => {
    await open("throttling", "?scenario=no-tracking");
    await page.locator("#tracking-absent").waitFor();
    assert.equal(await page.locator("#tracking-panel").getAttribute("data-state"), "absent");
    assert.match(await page.locator("#tracking-absent").textContent(), /relay is not running/);
    await page.close();
  });
});

describe("settings: [tracking]", () => {
  it("shows enabled, poll and for, and explains a value the engine refuses", async () => {
    await open("settings");
    const enabled = page.locator("#f-tracking-enabled");
    await enabled.waitFor();
    assert.equal(await enabled.isChecked(), true);
    assert.equal(await page.locator("#f-tracking-poll").inputValue(), "5m");
    assert.equal(await page.locator("#f-tracking-for").inputValue(), "2days");
    await page.locator("#f-tracking-for").fill("11d");
    await page.locator("#f-tracking-for-err:not(:empty)").waitFor();
    assert.match(await page.locator("#f-tracking-for-err").textContent(), /between 1s and 10 days/);
    assert.equal(await page.locator("#save-settings").isDisabled(), true);
    await page.locator("#f-tracking-for").fill("48h");
    await page.waitForFunction(() => document.querySelector("#f-tracking-for-err")?.textContent === "");
    await enabled.uncheck();
    await page.click("#save-settings");
    await page.locator("#save-status.ok").waitFor();
    assert.deepEqual(await page.evaluate(() => window.__mock.data.config.tracking), { enabled: false, poll: "5m", for: "48h" });
    await page.close();
  });

  it("ran without page errors or CSP violations", () => {
    assert.deepEqual(errors, []);
  });
});
