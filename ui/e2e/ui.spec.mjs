// End-to-end tests of the built UI in Debian's chromium, with the Tauri IPC
// mocked (e2e/harness.ts). Run: npm run test:e2e
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "./server.mjs";
import { launch } from "./browser.mjs";

let server, chrome, page;
const errors = [];

before(async () => {
  server = await startServer();
  chrome = await launch();
});
after(async () => { await chrome?.close(); await server?.close(); });

async function open(hash = "queue", query = "", { clock = false } = {}) {
  page = await chrome.context.newPage();
  // A test that watches time pass installs Playwright's clock and moves it
  // itself: no test waits on the machine's real clock.
  if (clock) await page.clock.install();
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  await page.goto(`${server.url}${query}#${hash}`);
  page.setDefaultTimeout(8000);
  await page.locator("#queue-table tbody tr").first().waitFor({ state: "attached" });
  return page;
}
const calls = (cmd) => page.evaluate((c) => window.__mock.calls.filter((x) => x.cmd === c), cmd);

describe("queue", () => {
  it("updates from engine-event and status-changed without polling: a message appears, then turns sent", async () => {
    await open();
    const before = (await calls("get_queue")).length;
    await page.evaluate(() => {
      const m = { ...window.__mock.data.queue[0], id: "01NEWMSG0001", subject: "Fresh scan from the lobby", state: "queued", attempts: 0, received_at: Date.now(), updated_at: Date.now(), last_reply: null };
      window.__mock.data.queue.unshift(m);
      window.__mock.data.status.queue.queued += 1;
      window.__mock.emit("engine-event", { event: "received", id: m.id, from: m.from, recipients: 1, bytes: m.size });
      window.__mock.emit("status-changed", window.__mock.data.status);
    });
    const row = page.locator('tr[data-id="01NEWMSG0001"]');
    await row.waitFor();
    assert.equal(await row.getAttribute("data-state"), "queued");
    assert.match(await row.textContent(), /Fresh scan from the lobby/);
    assert.match(await page.locator(".strip").textContent(), /4 queued/);
    await page.evaluate(() => {
      const m = window.__mock.data.queue.find((x) => x.id === "01NEWMSG0001");
      Object.assign(m, { state: "sent", attempts: 1, last_reply: "250 2.0.0 OK", updated_at: Date.now() });
      window.__mock.emit("engine-event", { event: "sent", id: m.id, reply: "250 2.0.0 OK" });
    });
    await page.waitForFunction(() => document.querySelector('tr[data-id="01NEWMSG0001"]')?.getAttribute("data-state") === "sent");
    assert.match(await row.locator(".badge").textContent(), /Sent/);
    assert.ok((await calls("get_queue")).length > before, "the queue was re-fetched after the event");
    // No polling: nothing is asked again while nothing happens.
    const n = (await page.evaluate(() => window.__mock.calls.length));
    await page.waitForTimeout(2500);
    assert.equal(await page.evaluate(() => window.__mock.calls.length), n, "no commands while idle");
    await page.close();
  });

  it("the failed message shows summary + fix, and resend calls resend_rewritten", async () => {
    await open();
    await page.selectOption("#queue-state", "failed");
    await page.locator('tr[data-id="019b8d2e6a000001"]').click();
    const ex = page.locator("#explanation");
    await ex.waitFor();
    // The engine's own explanation of Microsoft's 5.7.60 (fixtures from the real engine).
    assert.match(await ex.locator(".explain-summary").textContent(), /not allowed to send as this sender/);
    assert.match(await ex.locator(".explain-fix").textContent(), /Fix: In the Exchange admin center grant the mailbox Send As/);
    assert.match(await page.locator(".transcript pre").textContent(), /S: 550 5\.7\.60 SMTP; Client does not have permissions/);
    await page.click("#act-resend");
    await page.locator(".notice").waitFor();
    assert.deepEqual((await calls("resend_rewritten")).map((c) => c.args), [{ id: "019b8d2e6a000001" }]);
    await page.close();
  });

  it("a window opened by a notification click shows that message (take_pending)", async () => {
    await open("logs", "?open=019b8d2e6a000001");
    await page.waitForFunction(() => document.querySelector('tr[data-id="019b8d2e6a000001"]')?.getAttribute("aria-selected") === "true");
    assert.equal(await page.locator("#page-queue").isHidden(), false, "the queue page is shown");
    await page.locator("#explanation").waitFor();
    assert.match(await page.locator("#explanation .explain-summary").textContent(), /not allowed to send as this sender/);
    const order = await page.evaluate(() => window.__mock.calls.map((c) => c.cmd));
    assert.equal(order.filter((c) => c === "take_pending").length, 1);
    await page.close();
  });

  it("a long upload shows its progress in the row, and the bar goes when it is sent", async () => {
    await open();
    const id = "019b8d2e6a000004";
    await page.evaluate((id) => window.__mock.emit("engine-event", { event: "progress", id, bytes: 10_500_000, total: 25_000_000 }), id);
    const bar = page.locator(`tr[data-id="${id}"] .upload`);
    await bar.waitFor();
    assert.equal(await page.locator(`tr[data-id="${id}"]`).getAttribute("data-state"), "sending");
    assert.match(await bar.textContent(), /42 %/);
    assert.equal(await bar.locator("progress").getAttribute("value"), "10500000");
    await page.evaluate((id) => window.__mock.emit("engine-event", { event: "progress", id, bytes: 20_000_000, total: 25_000_000 }), id);
    await page.waitForFunction((id) => /80 %/.test(document.querySelector(`tr[data-id="${id}"] .upload`)?.textContent ?? ""), id);
    await page.evaluate((id) => {
      const m = window.__mock.data.queue.find((x) => x.id === id);
      Object.assign(m, { state: "sent", last_reply: "250 2.0.0 OK", updated_at: Date.now() });
      window.__mock.emit("engine-event", { event: "sent", id, reply: "250 2.0.0 OK" });
    }, id);
    await page.waitForFunction((id) => document.querySelector(`tr[data-id="${id}"]`)?.getAttribute("data-state") === "sent", id);
    assert.equal(await bar.count(), 0);
    await page.close();
  });

  it("delete asks first, then calls delete_message", async () => {
    await open();
    await page.locator('tr[data-id="019b8d2e6a000003"]').click();
    await page.click("#act-delete");
    await page.locator("dialog.confirm").waitFor();
    await page.click('dialog.confirm button[value="ok"]');
    await page.waitForFunction(() => window.__mock.calls.some((c) => c.cmd === "delete_message"));
    assert.deepEqual((await calls("delete_message"))[0].args, { id: "019b8d2e6a000003" });
    await page.close();
  });
});

describe("throttling", () => {
  it("shows used/limit, a countdown that runs on the local clock, and the 24 h chart", async () => {
    await open("throttling", "", { clock: true });
    const minute = page.locator("#card-minute");
    await minute.waitFor();
    // The engine's fixture: a mailbox limited to 2 a minute, both used.
    assert.match(await minute.locator(".big").textContent(), /2 \/ 2/);
    assert.match(await page.locator("#card-budget .big").textContent(), /2 \/ 10,000/);
    const first = await page.locator("#next-slot").textContent();
    assert.match(first, /^in (1 min|59 s)$/);
    // The display redraws on a one-second tick, so after 3 s it shows the
    // slot as of the last tick: 57 or 58 s left of the engine's 60.
    await page.clock.runFor(3000);
    const later = await page.locator("#next-slot").textContent();
    assert.match(later, /^in 5[78] s$/, `countdown moved on (${first} → ${later})`);
    assert.equal((await calls("get_status")).length, 1, "the countdown does not ask the engine");
    await page.locator("#throttle-chart svg.chart").waitFor();
    assert.equal(await page.locator("#throttle-chart rect.bar").count(), 24);
    assert.equal(await page.locator("#throttle-chart path.rcpt-line").count(), 1);
    assert.equal(await page.locator("#throttle-mailboxes table").count(), 0, "one mailbox: no table");
    await page.close();
  });
  it("shows each sending mailbox's budget with send_as = \"sender\"", async () => {
    await open("throttling", "?scenario=send-as");
    const rows = page.locator("#throttle-mailboxes tbody tr");
    await rows.first().waitFor();
    const text = await rows.allTextContents();
    assert.equal(text.length, 3, text.join("\n"));
    assert.match(text[0], /^scanner@contoso\.com2 \/ 23 \/ 10,000/);
    assert.match(text[1], /^alice@contoso\.com1 \/ 23 \/ 10,000/);
    assert.match(text[2], /^bob@contoso\.com1 \/ 21 \/ 10,000.*Microsoft asked it to wait/);
    assert.equal(await page.locator("#throttle-mailboxes tr.tone-warn").count(), 1);
    await page.close();
  });
});

describe("settings", () => {
  it("explains a bad CIDR next to the field and clears it when fixed", async () => {
    await open("settings");
    const allow = page.locator("#f-listener-allow");
    await allow.waitFor();
    const err = page.locator("#f-listener-allow-err");
    assert.equal(await err.textContent(), "");
    await allow.fill("192.168.1.0/24\n10.0.0.0/33");
    await page.waitForFunction(() => document.querySelector("#f-listener-allow-err").textContent !== "");
    assert.match(await err.textContent(), /\/33 is too long for IPv4/);
    assert.equal(await allow.getAttribute("aria-invalid"), "true");
    assert.equal(await page.locator("#save-settings").isDisabled(), true);
    await page.waitForFunction(() => window.__mock.calls.some((c) => c.cmd === "validate_settings"));
    await allow.fill("192.168.1.0/24\n10.0.0.0/8");
    await page.waitForFunction(() => document.querySelector("#f-listener-allow-err").textContent === "");
    assert.equal(await allow.getAttribute("aria-invalid"), null);
    await page.waitForTimeout(400);
    assert.equal(await err.textContent(), "", "the engine's verdict agrees");
    await page.click("#save-settings");
    await page.waitForFunction(() => /Saved/.test(document.querySelector("#save-status").textContent));
    assert.deepEqual((await calls("save_settings"))[0].args.config.listener.allow, ["192.168.1.0/24", "10.0.0.0/8"]);
    await page.close();
  });

  it("a bad listen port and mailbox are explained too", async () => {
    await open("settings");
    await page.locator("#f-listener-listen").fill("0.0.0.0:99999");
    await page.locator("#f-upstream-mailbox").fill("scanner");
    await page.waitForFunction(() => document.querySelector("#f-upstream-mailbox-err").textContent !== "");
    assert.match(await page.locator("#f-listener-listen-err").textContent(), /out of range/);
    assert.match(await page.locator("#f-upstream-mailbox-err").textContent(), /not an email address/);
    await page.close();
  });
});

describe("first start and a first-time user", () => {
  it("the engine's untouched config is saveable once the mailbox is set; Port shows the mode's default", async () => {
    await open("settings", "?scenario=first-start");
    const port = page.locator("#f-upstream-port");
    await port.waitFor();
    assert.equal(await port.inputValue(), "", "no port 0");
    assert.match(await port.getAttribute("placeholder"), /587 for submission, 25 for relay/);
    assert.equal(await page.locator("#f-upstream-port-err").textContent(), "");
    assert.equal(await page.locator("#f-upstream-auth").inputValue(), "oauth");
    await page.locator("#f-upstream-mailbox").fill("scanner@contoso.com");
    await page.waitForFunction(() => !document.querySelector("#save-settings").disabled);
    await page.click("#save-settings");
    await page.waitForFunction(() => /Saved/.test(document.querySelector("#save-status").textContent));
    const saved = (await calls("save_settings"))[0].args.config;
    assert.equal(saved.upstream.port, null);
    assert.equal(saved.upstream.auth, "oauth");
    await page.close();
  });

  it("the Account page of an interactive OAuth setup offers both sign-ins, and says 'not signed in yet'", async () => {
    await open("account");
    await page.locator("#signin-browser").waitFor();
    assert.match(await page.locator("#signin-browser").textContent(), /Sign in with the browser/);
    assert.match(await page.locator("#signin-device").textContent(), /Sign in with a code on another device/);
    assert.equal(await page.locator("#account-state").textContent(), "Not signed in yet");
    assert.doesNotMatch(await page.locator(".page-account").textContent(), /no longer accepts/);
    assert.match(await page.locator(".page-account").textContent(), /OAuth, interactive/);
    await page.close();
  });
});

describe("account, diagnostics, logs, strip", () => {
  it("device-code sign-in shows the code and reacts to signin-finished", async () => {
    await open("account");
    await page.click("#signin-device");
    assert.equal(await page.locator("#device-code").textContent(), "FQK7-XW2P");
    await page.evaluate(() => window.__mock.emit("signin-finished", { ok: true, message: "Signed in as scanner@contoso.com." }));
    await page.locator("#signin-flow .banner-ok").waitFor();
    assert.equal(await page.locator("#device-code").count(), 0);
    await page.close();
  });

  it("diagnostics show verdicts and fixes", async () => {
    await open("diagnostics");
    await page.click("#run-diagnostics");
    await page.locator("#checks li").first().waitFor();
    assert.equal(await page.locator("#checks li.check-fail").count(), 1);
    assert.match(await page.locator("#checks li.check-fail .check-fix").textContent(), /Set-CASMailbox/);
    await page.close();
  });

  it("logs append log-line events and filter by level", async () => {
    await open("logs");
    await page.locator("#log .line").first().waitFor();
    await page.evaluate(() => window.__mock.emit("log-line", { seq: 999, time: Date.now(), level: "ERROR", message: "delivery: brand new failure" }));
    await page.waitForFunction(() => /brand new failure/.test(document.querySelector("#log").textContent));
    await page.selectOption("#log-level", "0");
    assert.equal(await page.locator("#log .line").count(), await page.locator("#log .lvl-error").count());
    await page.close();
  });

  it("the status strip shows attention with its fix in the warning style", async () => {
    await open("queue", "?scenario=attention");
    const strip = page.locator(".strip");
    assert.match(await strip.getAttribute("class"), /strip-bad/);
    assert.match(await strip.textContent(), /SMTP AUTH is turned off.*Set-CASMailbox/);
    await page.evaluate(() => { window.__mock.data.status.attention = null; window.__mock.emit("status-changed", window.__mock.data.status); });
    await page.waitForFunction(() => !document.querySelector(".strip").className.includes("strip-bad"));
    await page.close();
  });

  it("keyboard: arrows move through the navigation", async () => {
    await open("queue");
    await page.focus('.nav-item[data-page="queue"]');
    await page.keyboard.press("ArrowDown");
    assert.equal(await page.locator("#page-title").textContent(), "Throttling");
    await page.keyboard.press("Control+4");
    assert.equal(await page.locator("#page-title").textContent(), "Settings");
    await page.close();
  });

  it("ran without page errors or CSP violations", () => {
    assert.deepEqual(errors, []);
  });
});
