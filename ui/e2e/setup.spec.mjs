// End-to-end tests of the setup assistant and the device card in Debian's
// chromium, with the Tauri IPC mocked (e2e/harness.ts + e2e/setup-mocks.ts).
// Run: npm run test:e2e
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "./server.mjs";
import { launch } from "./browser.mjs";
import { answer, fillAppOnly, SECRET, stepIs, TEST_ID, TYPED, walkGraph, walkSetup } from "./setup-walk.mjs";
import { readFileSync } from "node:fs";

const fixture = (name) => JSON.parse(readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url), "utf8"));
// The engine's own answers (written by `cargo test -p postern --lib fixtures`).
const permissionsGraph = fixture("permissions-graph");
const permissionsNoConsent = fixture("permissions-graph-no-consent");
import { CASES } from "../test/recommend-cases.mjs";

let server, chrome, page;
const errors = [];

before(async () => {
  server = await startServer();
  chrome = await launch();
  await chrome.context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.url.replace(/\/$/, "") });
});
after(async () => { await chrome?.close(); await server?.close(); });

async function open(hash = "setup", query = "") {
  page = await chrome.context.newPage();
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.setDefaultTimeout(8000);
  await page.goto(`${server.url}${query}${hash ? "#" + hash : ""}`);
  await page.locator("#queue-table tbody tr").first().waitFor({ state: "attached" });
  return page;
}
const calls = (cmd) => page.evaluate((c) => window.__mock.calls.filter((x) => x.cmd === c), cmd);
const cmds = () => page.evaluate(() => window.__mock.calls.map((c) => c.cmd));

describe("step 1: the route for every combination of answers", () => {
  it("each of the 24 combinations, clicked on the page, shows the mode and reason of Microsoft's comparison", async () => {
    await open();
    await stepIs(page, 1);
    assert.equal(await page.locator("#setup-next").isDisabled(), true, "Next waits for the answers");
    assert.equal(CASES.length, 24);
    for (const c of CASES) {
      await answer(page, c.answers);
      const rec = page.locator("#setup-recommendation");
      const label = JSON.stringify(c.answers);
      await page.waitForFunction(([m, r]) => { const e = document.querySelector("#setup-recommendation"); return e?.dataset.mode === m && e?.dataset.reason === r; }, [c.mode, c.reasonId]);
      assert.equal(await rec.getAttribute("data-mode"), c.mode, label);
      assert.match(await page.locator("#setup-reason").textContent(), c.says, label);
      // The recommended route is the one selected; Graph is a choice like the others.
      assert.equal(await page.locator(`#setup-route-${c.mode}`).isChecked(), true, label);
      assert.equal(await page.locator("#setup-route-graph").isDisabled(), false);
      assert.equal(await page.locator("#setup-tradeoffs dd").count(), 4, label);
      assert.equal(await page.locator("#setup-next").isDisabled(), false);
    }
    assert.doesNotMatch(await page.locator("#setup-step-body").textContent(), /later version/);
    await page.close();
  });

  it("keyboard: the answers are radio groups reachable with Tab and arrows, Next with Enter", async () => {
    await open();
    await stepIs(page, 1);
    await page.focus("#setup-answer-external-yes");
    await page.keyboard.press("Space");
    await page.keyboard.press("ArrowRight");
    assert.equal(await page.locator("#setup-answer-external-no").isChecked(), true);
    await page.keyboard.press("Tab");
    await page.keyboard.press("Space");
    assert.equal(await page.locator("#setup-answer-mailbox-yes").isChecked(), true);
    await page.keyboard.press("Tab");
    await page.keyboard.press("Space");
    await page.keyboard.press("Tab");
    await page.keyboard.press("Space");
    await page.locator("#setup-recommendation").waitFor();
    await page.focus("#setup-next");
    await page.keyboard.press("Enter");
    await stepIs(page, 2);
    assert.equal(await page.evaluate(() => document.activeElement?.id), "setup-step-title", "focus moves to the new step's title");
    await page.close();
  });
});

describe("Microsoft Graph", () => {
  it("recommended with Security Defaults on: the Entra steps, the config written, the secret, the permissions from the engine", async () => {
    await open();
    await walkGraph(page, { onStep: async (n) => {
      if (n === 1) {
        assert.equal(await page.locator("#setup-route-graph").isChecked(), true);
        assert.match(await page.locator('label[for="setup-route-graph"]').textContent(), /Microsoft Graph.*recommended/);
        assert.match(await page.locator("#setup-warnings").textContent(), /Mail\.Send and Mail\.ReadWrite/);
      }
      if (n === 2) {
        const ms = await page.locator("#setup-ms-steps").textContent();
        assert.match(ms, /App registrations → New registration/);
        assert.match(ms, /Microsoft Graph → Application permissions → Mail\.Send and Mail\.ReadWrite/);
        assert.match(ms, /over about 3 MB/);
        assert.match(ms, /Grant admin consent/);
        assert.match(ms, /New client secret/);
        assert.doesNotMatch(ms, /SMTP AUTH|SendAsApp/);
        assert.equal(await page.locator("#setup-signin-way").count(), 0, "no sign-in ways: the app signs in");
        assert.match(await page.locator("#setup-graph-signin").textContent(), /client credentials/);
        // The RBAC lines are copyable, filled with what was typed.
        const copy = page.locator("#setup-ms-steps .code-block button").last();
        await copy.click();
        const clip = await page.evaluate(() => navigator.clipboard.readText());
        assert.match(clip, new RegExp(`New-ServicePrincipal -AppId ${TYPED.client_id} -ObjectId ${TYPED.object_id}`));
        assert.match(clip, /Test-ServicePrincipalAuthorization -Identity .* -Resource scanner@contoso\.com/);
      }
      if (n === 4) {
        // The engine's answer (e2e/fixtures/permissions-graph.json): Mail.Send granted, Mail.ReadWrite missing.
        const v = page.locator("#setup-token-verdict");
        assert.equal(await v.getAttribute("data-send"), "true");
        assert.equal(await v.getAttribute("data-missing"), "1");
        assert.deepEqual(await page.locator("#setup-roles li").allTextContents(), permissionsGraph.granted);
        const missing = page.locator("#setup-missing li");
        assert.equal(await missing.count(), 1);
        assert.equal(await missing.getAttribute("data-permission"), "Mail.ReadWrite");
        assert.ok((await missing.textContent()).includes(permissionsGraph.missing[0].fix), "the engine's fix is shown");
        assert.ok((await missing.textContent()).includes(permissionsGraph.missing[0].effect));
      }
    } });
    const saved = (await calls("save_settings")).at(-1).args.config;
    assert.equal(saved.upstream.mode, "graph");
    assert.equal(saved.upstream.auth, "oauth");
    assert.equal(saved.upstream.mailbox, TYPED.mailbox);
    assert.equal(saved.oauth.flow, "client-credentials");
    assert.equal(saved.oauth.tenant, TYPED.tenant);
    assert.equal(saved.oauth.client_id, TYPED.client_id);
    assert.equal(saved.graph.endpoint, "https://graph.microsoft.com");
    for (const k of ["host", "port", "domain", "accepted_domains", "client_cert", "client_key"]) assert.equal(k in saved.upstream, false, k);
    assert.equal(JSON.stringify(saved).includes(TYPED.object_id), false, "the helper-only object id is not saved");
    assert.deepEqual((await calls("store_secret")).map((c) => c.args), [{ kind: "client-secret", value: SECRET }]);
    assert.ok((await calls("get_permissions")).length >= 1);
    assert.equal((await calls("check_app_token")).length, 0, "Graph asks the engine for Graph's permissions, not SMTP's");
    assert.equal(await page.evaluate((s) => document.documentElement.outerHTML.includes(s), SECRET), false, "the secret is not in the page");
    assert.equal((await calls("run_diagnostics")).length, 1);
    await page.close();
  });

  it("no admin consent: each missing permission with the engine's fix, and Fetch again asks again", async () => {
    await open("setup", "?scenario=graph-no-consent");
    await stepIs(page, 1);
    await answer(page, { external: true, mailbox: false, connector: "no", smtpAuth: false });
    await page.locator("#setup-recommendation[data-mode=graph][data-reason=graph-no-mailbox]").waitFor();
    assert.match(await page.locator("#setup-warnings").textContent(), /shared mailbox/);
    await page.click("#setup-next");
    await stepIs(page, 2);
    await page.locator("#setup-f-upstream-mailbox").fill(TYPED.mailbox);
    await page.locator("#setup-f-oauth-tenant").fill(TYPED.tenant);
    await page.locator("#setup-f-oauth-client_id").fill(TYPED.client_id);
    await page.click("#setup-next");
    await stepIs(page, 3);
    await page.locator('#secret-state[data-stored="true"]').waitFor();
    await page.click("#setup-next");
    await stepIs(page, 4);
    const v = page.locator("#setup-token-verdict");
    await v.waitFor();
    assert.equal(await v.getAttribute("data-send"), "false");
    assert.match(await v.textContent(), /Mail\.Send is missing/);
    assert.match(await page.locator("#setup-roles").textContent(), /none/);
    const items = page.locator("#setup-missing li");
    assert.deepEqual(await items.evaluateAll((l) => l.map((e) => e.dataset.permission)), permissionsNoConsent.missing.map((m) => m.permission));
    for (const [n, m] of permissionsNoConsent.missing.entries()) assert.ok((await items.nth(n).textContent()).includes(m.fix));
    const before = (await calls("get_permissions")).length;
    await page.click("#setup-check-token");
    await page.waitForFunction((b) => window.__mock.calls.filter((x) => x.cmd === "get_permissions").length > b, before);
    await v.waitFor();
    await page.close();
  });
});

describe("the whole assistant", () => {
  it("walks all seven steps with the mocked commands, writing only the keys the route needs", async () => {
    await open();
    const before = await page.evaluate(() => structuredClone(window.__mock.data.config));
    await walkSetup(page);
    const order = await cmds();
    assert.ok(order.indexOf("setup_begin") >= 0 && order.indexOf("setup_begin") < order.indexOf("get_settings"), "setup_begin first, then the current config");

    // Step 2 wrote the draft: the route's keys, and nothing else changed.
    const saved = (await calls("save_settings")).at(-1).args.config;
    assert.equal(saved.upstream.mode, "submission");
    assert.equal(saved.upstream.auth, "oauth");
    assert.equal(saved.oauth.flow, "client-credentials");
    assert.equal(saved.oauth.tenant, TYPED.tenant);
    const expected = structuredClone(before);
    expected.upstream ??= {}; expected.oauth ??= {};
    Object.assign(expected.upstream, { mode: "submission", auth: "oauth", mailbox: TYPED.mailbox });
    Object.assign(expected.oauth, { flow: "client-credentials", tenant: TYPED.tenant, client_id: TYPED.client_id });
    for (const k of ["accepted_domains", "client_cert", "client_key", ...(before.upstream?.mode && before.upstream.mode !== "submission" ? ["host", "port", "domain"] : [])]) delete expected.upstream[k];
    assert.deepEqual(saved, expected, "only the route's keys changed (and other routes' keys left at their defaults)");
    assert.equal(JSON.stringify(saved).includes("6a1b9e0c"), false, "the helper-only object id is not saved");
    assert.ok(order.indexOf("save_settings") < order.indexOf("store_secret"), "saved before the secret is stored");
    assert.ok((await calls("validate_settings")).length > 0, "validated as typed");

    // Step 3: the secret went to store_secret, and nowhere else.
    assert.deepEqual((await calls("store_secret")).map((c) => c.args), [{ kind: "client-secret", value: SECRET }]);
    assert.equal(await page.evaluate((s) => document.documentElement.outerHTML.includes(s), SECRET), false, "the secret is not in the page");
    assert.ok((await calls("get_secrets")).length >= 2, "stored / not stored asked again after storing");

    // Step 4..6 ran against the saved config.
    assert.ok(order.lastIndexOf("check_app_token") > order.indexOf("store_secret"));
    assert.equal((await calls("run_diagnostics")).length, 1);
    assert.deepEqual((await calls("send_test")).map((c) => c.args), [{ to: "anna.berg@contoso.com" }]);

    // Step 7: listen on the LAN with consent.
    await page.click("#lan-allow-10-20-0-0-16");
    await page.locator("#device-card-note.banner-ok").waitFor();
    assert.deepEqual((await calls("listen_on_lan")).map((c) => c.args), [{ network: "10.20.0.0/16" }]);
    assert.equal(await page.locator("#lan-allow-10-20-0-0-16").count(), 0, "the network is allowed now");
    const allowBefore = before.listener?.allow ?? ["127.0.0.0/8", "::1/128"];
    assert.deepEqual(await page.evaluate(() => window.__mock.data.config.listener.allow), [...allowBefore.filter((n) => n !== "10.20.0.0/16"), "10.20.0.0/16"]);
    assert.match(await page.locator("#device-card-login").textContent(), /No, for devices on .*10\.20\.0\.0\/16\./);

    await page.click("#setup-finish");
    await page.waitForFunction(() => document.querySelector("#page-title").textContent === "Queue");
    assert.equal((await calls("setup_finish")).length, 1);
    assert.equal((await calls("setup_cancel")).length, 0);
    await page.close();
  });

  it("step 3: the secret field is write-only and cleared after storing; Remove calls remove_secret", async () => {
    await open();
    await walkTo3();
    const input = page.locator("#secret-input");
    assert.equal(await input.getAttribute("type"), "password");
    assert.equal(await input.getAttribute("autocomplete"), "off");
    assert.equal(await page.locator("#secret-state").textContent(), "not stored");
    await input.fill("another-secret");
    await input.press("Enter");
    await page.locator('#secret-state[data-stored="true"]').waitFor();
    assert.equal(await page.locator("#secret-input").inputValue(), "", "cleared after storing");
    await page.click("#secret-remove");
    await page.locator('#secret-state[data-stored="false"]').waitFor();
    assert.deepEqual((await calls("remove_secret")).map((c) => c.args), [{ kind: "client-secret" }]);
    await page.close();
  });

  it("step 4: a token without SMTP.SendAsApp says what is missing and how to grant it", async () => {
    await open("setup", "?scenario=no-consent");
    await walkTo3();
    await page.locator("#secret-input").fill("s");
    await page.click("#secret-store");
    await page.locator('#secret-state[data-stored="true"]').waitFor();
    await page.click("#setup-next");
    await stepIs(page, 4);
    const v = page.locator("#setup-token-verdict");
    await v.waitFor();
    assert.equal(await v.getAttribute("data-send"), "false");
    assert.match(await v.textContent(), /SMTP\.SendAsApp is missing.*Grant admin consent/);
    await page.close();
  });

  it("step 4: a person signs in with a code; signin-finished shows the result and the account state", async () => {
    await open();
    await stepIs(page, 1);
    await answer(page, { external: false, mailbox: true, connector: "no", smtpAuth: true });
    await page.click("#setup-next");
    await stepIs(page, 2);
    await fillAppOnly(page);
    await page.click("#setup-signin-way-device-code");
    await page.click("#setup-next");
    await stepIs(page, 3);
    assert.match(await page.locator("#secret-none").textContent(), /No secret to type for this sign-in/);
    assert.equal((await calls("save_settings")).at(-1).args.config.oauth.flow, "device-code");
    await page.click("#setup-next");
    await stepIs(page, 4);
    assert.match(await page.locator("#setup-signin-device").getAttribute("class"), /primary/, "the chosen flow's button comes first");
    await page.click("#setup-signin-device");
    assert.equal(await page.locator("#setup-device-code").textContent(), "FQK7-XW2P");
    assert.deepEqual((await calls("sign_in")).map((c) => c.args), [{ deviceCode: true }]);
    const accountCalls = (await calls("get_account")).length;
    await page.evaluate(() => window.__mock.emit("signin-finished", { ok: true, message: "Signed in as scanner@contoso.com." }));
    await page.locator("#setup-signin-result.banner-ok").waitFor();
    assert.equal(await page.locator("#setup-device-code").count(), 0);
    await page.waitForFunction((n) => window.__mock.calls.filter((c) => c.cmd === "get_account").length > n, accountCalls);
    await page.locator("#setup-account-state").waitFor();
    await page.close();
  });

  it("step 6: a failed test message shows its summary and fix; a deferred one says when it is tried again", async () => {
    await open();
    await walkTo3();
    for (let n = 4; n <= 6; n++) { await page.click("#setup-next"); await stepIs(page, n); }
    assert.equal(await page.locator("#setup-test-to").inputValue(), TYPED.mailbox, "the mailbox by default");
    await page.locator("#setup-test-to").fill("not an address");
    await page.click("#setup-send-test");
    assert.match(await page.locator("#setup-test-to-err").textContent(), /not an email address/);
    assert.equal((await calls("send_test")).length, 0);
    await page.locator("#setup-test-to").fill("customer@fabrikam.com");
    await page.click("#setup-send-test");
    await page.locator('#setup-test-result[data-outcome="received"]').waitFor();
    // Another message's event changes nothing.
    await page.evaluate(() => window.__mock.emit("engine-event", { event: "sent", id: "01OTHER", reply: "250 OK" }));
    await page.evaluate((id) => window.__mock.emit("engine-event", { event: "deferred", id, reason: "451 4.7.500 Server busy.", next_attempt_unix: Date.now() + 120_000 }), TEST_ID);
    await page.locator('#setup-test-result[data-outcome="deferred"]').waitFor();
    assert.match(await page.locator("#setup-test-outcome").textContent(), /Not sent yet: 451 4\.7\.500 Server busy\. Postern tries again in 2 min/);
    await page.evaluate((id) => window.__mock.emit("engine-event", { event: "failed", id, recipients: ["customer@fabrikam.com"], reply: "550 5.7.60 SMTP; Client does not have permissions to send as this sender", summary: "The mailbox scanner@contoso.com may not send as the test's sender.", fix: "Grant Send As, or turn on upstream.rewrite_sender." }), TEST_ID);
    await page.locator('#setup-test-result[data-outcome="failed"]').waitFor();
    assert.match(await page.locator("#setup-test-outcome .explain-summary").textContent(), /may not send as/);
    assert.match(await page.locator("#setup-test-outcome .explain-fix").textContent(), /Fix: Grant Send As/);
    await page.close();
  });

  it("step 2: errors are explained under their fields as you type, and Next does not save while they stand", async () => {
    await open();
    await stepIs(page, 1);
    await answer(page, { external: true, mailbox: true, connector: "no", smtpAuth: true });
    await page.click("#setup-next");
    await stepIs(page, 2);
    await page.click("#setup-signin-way-client-credentials");
    await page.locator("#setup-f-upstream-mailbox").fill("scanner");
    await page.locator("#setup-f-oauth-tenant").fill("organizations");
    await page.locator("#setup-f-oauth-client_id").fill("x");
    await page.locator("#setup-f-oauth-client_id").fill("");
    assert.match(await page.locator("#setup-f-upstream-mailbox-err").textContent(), /not an email address/);
    assert.match(await page.locator("#setup-f-oauth-tenant-err").textContent(), /needs your own tenant/);
    assert.match(await page.locator("#setup-f-oauth-client_id-err").textContent(), /Application \(client\) ID is needed for this route/i);
    assert.equal(await page.locator("#setup-f-upstream-mailbox").getAttribute("aria-invalid"), "true");
    await page.waitForFunction(() => window.__mock.calls.some((c) => c.cmd === "validate_settings" && c.args.config.upstream.mailbox === "scanner"));
    const saves = (await calls("save_settings")).length;
    await page.click("#setup-next");
    await page.waitForFunction(() => /problems? to fix/.test(document.querySelector("#setup-save-status").textContent));
    assert.equal((await calls("save_settings")).length, saves, "not saved");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "setup-f-upstream-mailbox", "focus on the first bad field");
    await page.locator("#setup-f-upstream-mailbox").fill("scanner@contoso.com");
    await page.locator("#setup-f-oauth-tenant").fill("contoso.com");
    await page.locator("#setup-f-oauth-client_id").fill("7f3c2a10-5b1e-4d2c-9a8e-2c1f0b9e6d44");
    await page.waitForFunction(() => [...document.querySelectorAll("#setup-fields .field-error")].every((e) => e.textContent === ""));
    await page.click("#setup-next");
    await stepIs(page, 3);
    await page.close();
  });

  it("a connector relay with a certificate asks for the PEM files and writes a relay config", async () => {
    await open();
    await stepIs(page, 1);
    await answer(page, { external: true, mailbox: false, connector: "cert", smtpAuth: false });
    await page.locator("#setup-recommendation[data-mode=relay]").waitFor();
    await page.click("#setup-next");
    await stepIs(page, 2);
    const mailDomain = await page.evaluate(() => String(window.__mock.data.config.upstream?.mailbox ?? "").split("@")[1] ?? "");
    assert.equal(await page.locator("#setup-f-upstream-domain").inputValue(), mailDomain, "the mailbox's domain, filled in");
    await page.locator("#setup-f-upstream-domain").fill("contoso.com");
    assert.match(await page.locator("#setup-ms-steps").textContent(), /New-InboundConnector -Name "Postern" -ConnectorType OnPremises -SenderDomains \* -RequireTls \$true -TlsSenderCertificateName contoso\.com/);
    await page.click("#setup-next");
    await page.locator("#setup-f-upstream-client_cert-err:not(:empty)").waitFor();
    await page.locator("#setup-f-upstream-client_cert").fill("/etc/postern/relay-cert.pem");
    await page.locator("#setup-f-upstream-client_key").fill("/etc/postern/relay-key.pem");
    await page.click("#setup-next");
    await stepIs(page, 3);
    const c = (await calls("save_settings")).at(-1).args.config;
    assert.equal(c.upstream.mode, "relay");
    assert.equal(c.upstream.auth, "none");
    assert.equal(c.upstream.domain, "contoso.com");
    assert.equal(c.upstream.client_cert, "/etc/postern/relay-cert.pem");
    assert.equal("port" in c.upstream, false, "the submission port is not carried over to port-25 relay");
    assert.equal("host" in c.upstream, false);
    assert.match(await page.locator("#secret-none").textContent(), /No secret for this route/);
    await page.close();
  });

  it("Cancel asks first, then setup_cancel brings the old config back", async () => {
    await open();
    const before = await page.evaluate(() => structuredClone(window.__mock.data.config));
    await walkTo3();
    assert.notDeepEqual(await page.evaluate(() => window.__mock.data.config), before, "step 2 saved the draft");
    await page.click("#setup-cancel");
    await page.locator("dialog.confirm").waitFor();
    await page.click('dialog.confirm button[value="ok"]');
    await page.locator("#setup-start").waitFor();
    assert.equal((await calls("setup_cancel")).length, 1);
    assert.match(await page.locator("#setup-banner").textContent(), /previous settings and secrets are back/);
    assert.deepEqual(await page.evaluate(() => window.__mock.data.config), before);
    assert.equal(await page.locator("#setup-wizard").isHidden(), true);
    await page.click("#setup-start");
    await stepIs(page, 1);
    assert.equal((await calls("setup_begin")).length, 2);
    await page.close();
  });

  it("a double click on Cancel opens one confirmation, never two stacked", async () => {
    await open();
    await walkTo3();
    await page.dblclick("#setup-cancel");
    await page.locator("dialog.confirm").waitFor();
    assert.equal(await page.locator("dialog.confirm").count(), 1);
    await page.click('dialog.confirm button[value="cancel"]');
    await page.locator("dialog.confirm").waitFor({ state: "detached" });
    // Two clicks in the same task, before the first dialog is even painted.
    await page.evaluate(() => { const b = document.querySelector("#setup-cancel"); b.click(); b.click(); });
    await page.locator("dialog.confirm").waitFor();
    assert.equal(await page.locator("dialog.confirm").count(), 1);
    assert.equal(await page.locator("dialog.confirm[open]").count(), 1);
    await page.click('dialog.confirm button[value="cancel"]');
    await page.locator("dialog.confirm").waitFor({ state: "detached" });
    assert.equal((await calls("setup_cancel")).length, 0, "cancelled twice: the assistant goes on");
    await stepIs(page, 3);
    await page.close();
  });

  it("on the first start the window opens on the assistant", async () => {
    await open("", "?scenario=first-run");
    await page.waitForFunction(() => document.querySelector("#page-title").textContent === "Set up");
    await stepIs(page, 1);
    assert.match(await page.locator("#setup-banner").textContent(), /Welcome to Postern/);
    await page.close();
  });
});

describe("the device card", () => {
  it("the devices page shows the addresses, port, security and login, and copies them as text", async () => {
    await open("devices");
    const card = page.locator("#page-devices #device-card");
    await card.locator("#device-card-port").waitFor();
    assert.match(await card.locator("#device-card-servers").textContent(), /192\.168\.1\.23.*eth0.*10\.20\.0\.7/);
    const port = await page.evaluate(() => String(window.__mock.data.config.listener?.listen?.[0] ?? "127.0.0.1:2525").split(":").pop());
    assert.equal(await card.locator("#device-card-port").textContent(), port);
    assert.match(await card.locator("#device-card-security").textContent(), new RegExp(`STARTTLS on port ${port}`));
    await card.locator("#device-card-copy").click();
    await page.locator("#page-devices .copy-note:not(:empty)").waitFor();
    const text = await page.evaluate(() => navigator.clipboard.readText());
    assert.match(text, new RegExp(`SMTP server: 192\\.168\\.1\\.23 or 10\\.20\\.0\\.7 \\(or the PC's name: office-pc\\)\nPort: ${port}\nSecurity: STARTTLS`));
    await page.close();
  });

  it("a device user is added with a write-only password and removed again", async () => {
    await open("devices");
    const card = page.locator("#page-devices");
    await card.locator("#device-card-port").waitFor();
    await card.locator("#device-users summary").click();
    await card.locator("#device-user-name").fill("ricoh");
    await card.locator("#device-user-password").fill("pa55-device");
    assert.equal(await card.locator("#device-user-password").getAttribute("type"), "password");
    await card.locator("#device-user-add").click();
    await card.locator("#device-card-note.banner-ok").waitFor();
    assert.deepEqual((await calls("add_device_user")).map((c) => c.args), [{ name: "ricoh", password: "pa55-device" }]);
    assert.match(await card.locator("#device-card-login").textContent(), /device user \((.*, )?ricoh\)/);
    assert.equal(await page.evaluate(() => document.documentElement.outerHTML.includes("pa55-device")), false);
    await card.locator('#device-users button[data-user="ricoh"]').click();
    await page.waitForFunction(() => !/ricoh/.test(document.querySelector("#page-devices #device-card-login").textContent));
    assert.deepEqual((await calls("remove_device_user")).map((c) => c.args), [{ name: "ricoh" }]);
    await page.close();
  });

  it("prints as the card alone", async () => {
    await open("devices");
    await page.locator("#page-devices #device-card-port").waitFor();
    await page.emulateMedia({ media: "print" });
    assert.equal(await page.locator(".nav").isVisible(), false);
    assert.equal(await page.locator(".strip").isVisible(), false);
    assert.equal(await page.locator("#page-devices #device-card-print").isVisible(), false);
    assert.equal(await page.locator("#page-devices #device-card").isVisible(), true);
    await page.close();
  });

  it("the sidebar lists Devices and Set up at the bottom, and navigate reaches both", async () => {
    await open("queue");
    assert.deepEqual(await page.locator(".nav-bottom .nav-item").evaluateAll((b) => b.map((x) => x.dataset.page)), ["devices", "setup"]);
    await page.evaluate(() => window.__mock.emit("navigate", { page: "devices" }));
    await page.waitForFunction(() => document.querySelector("#page-title").textContent === "Point a device here");
    await page.evaluate(() => window.__mock.emit("navigate", { page: "setup" }));
    await page.waitForFunction(() => document.querySelector("#page-title").textContent === "Set up");
    await page.close();
  });

  it("ran without page errors or CSP violations", () => {
    assert.deepEqual(errors, []);
  });
});

async function walkTo3() {
  await stepIs(page, 1);
  await answer(page, { external: true, mailbox: true, connector: "no", smtpAuth: true });
  await page.click("#setup-next");
  await stepIs(page, 2);
  await fillAppOnly(page);
  await page.click("#setup-next");
  await stepIs(page, 3);
}
