// End-to-end tests of Graph mode in the built UI (mocked shell, the
// engine's fixtures): the Settings page offers Graph and its keys, the
// engine's verdict on a bad endpoint lands next to the field, saving sends
// the Graph keys; the Account page shows the app-only state, the granted
// permissions and a warning per missing one. Run: npm run test:e2e
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

/** The page at `#hash`; Playwright's clock installed, so the settings'
 * 250 ms validation delay passes when the test moves it, never on its own. */
async function open(hash, query = "") {
  page = await chrome.context.newPage();
  await page.clock.install();
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  await page.goto(`${server.url}${query}#${hash}`);
  page.setDefaultTimeout(8000);
  await page.locator("#queue-table tbody tr").first().waitFor({ state: "attached" });
  return page;
}
const calls = (cmd) => page.evaluate((c) => window.__mock.calls.filter((x) => x.cmd === c), cmd);
const text = (sel) => page.locator(sel).textContent();
/** Lets the settings page's validation delay run out, then waits for the engine's answer to land. */
async function engineValidates() {
  const n = (await calls("validate_settings")).length;
  await page.clock.runFor(300);
  await page.waitForFunction((k) => window.__mock.calls.filter((c) => c.cmd === "validate_settings").length > k, n, { polling: 50 });
}

describe("settings in Graph mode", () => {
  it("choosing Graph shows the Graph keys and sets the SMTP-only fields aside, with the reason", async () => {
    await open("settings");
    const mode = page.locator("#f-upstream-mode");
    await mode.waitFor();
    assert.deepEqual(await mode.locator("option").allTextContents(), ["submission", "relay", "direct-send", "graph"]);
    assert.equal(await page.locator("#group-graph").count(), 0, "no Graph keys outside Graph mode");
    assert.equal(await page.locator("#f-upstream-port").isDisabled(), false);

    await mode.selectOption("graph");
    await page.locator("#group-graph").waitFor();
    assert.equal(await page.locator("#f-graph-endpoint").inputValue(), "https://graph.microsoft.com");
    assert.equal(await page.locator("#f-graph-save_to_sent_items").isChecked(), true);
    // SMTP's host, port and domain do not apply: disabled, empty, and why.
    for (const key of ["host", "port", "domain"]) {
      const i = page.locator(`#f-upstream-${key}`);
      assert.equal(await i.isDisabled(), true, key);
      assert.equal(await i.inputValue(), "", key);
    }
    assert.match(await text("#f-upstream-port-help"), /HTTPS, no SMTP port/);
    assert.equal(await page.locator("#f-upstream-port").getAttribute("placeholder"), null, "Port shows nothing for Graph");
    // OAuth only (no password); the three flows the engine accepts for Graph.
    assert.deepEqual(await page.locator("#f-upstream-auth option").allTextContents(), ["oauth"]);
    assert.match(await text("#f-upstream-auth-help"), /only with OAuth: no password/);
    assert.deepEqual(await page.locator("#f-oauth-flow option").allTextContents(), ["interactive", "device-code", "client-credentials"]);
    assert.match(await text("#f-limits-max_connections-help"), /Graph allows 4/);

    // Back to submission: the SMTP fields return, the Graph keys go.
    await mode.selectOption("submission");
    await page.locator("#group-graph").waitFor({ state: "detached" });
    assert.equal(await page.locator("#f-upstream-port").isDisabled(), false);
    assert.deepEqual(await page.locator("#f-upstream-auth option").allTextContents(), ["oauth", "password", "none"]);
    await page.close();
  });

  it("a plain-http endpoint gets the engine's error next to the field; fixed, saving sends mode graph and the Graph keys", async () => {
    await open("settings");
    await page.locator("#f-upstream-mode").waitFor();
    await page.locator("#f-upstream-mode").selectOption("graph");
    const endpoint = page.locator("#f-graph-endpoint");
    const err = page.locator("#f-graph-endpoint-err");
    await endpoint.fill("http://example.com");
    assert.equal(await err.textContent(), "", "no verdict before the engine was asked");
    await engineValidates();
    await page.locator("#f-graph-endpoint-err:not(:empty)").waitFor();
    assert.equal(await err.textContent(), '"http://example.com" must use https (plain http is allowed only for a loopback host)');
    assert.equal(await endpoint.getAttribute("aria-invalid"), "true");
    const asked = (await calls("validate_settings")).at(-1).args.config;
    assert.equal(asked.upstream.mode, "graph");
    assert.equal(asked.graph.endpoint, "http://example.com");
    // Saving anyway: the engine refuses, the error stays at the field.
    await page.click("#save-settings");
    await page.locator("#save-status.bad").waitFor();
    assert.match(await err.textContent(), /must use https/);

    await endpoint.fill("https://graph.microsoft.us");
    await engineValidates();
    await page.locator("#f-graph-endpoint-err:empty").waitFor({ state: "attached" });
    assert.equal(await endpoint.getAttribute("aria-invalid"), null);
    await page.locator("#f-graph-save_to_sent_items").uncheck();
    await page.click("#save-settings");
    await page.locator("#save-status.ok").waitFor();
    const saves = await calls("save_settings");
    const saved = saves.at(-1).args.config;
    assert.equal(saved.upstream.mode, "graph");
    assert.deepEqual(saved.graph, { endpoint: "https://graph.microsoft.us", save_to_sent_items: false });
    assert.equal(saved.upstream.port, null);
    assert.equal(saved.upstream.host, "");
    assert.equal(saved.upstream.auth, "oauth");
    await page.close();
  });
});

describe("account in Graph mode, app-only", () => {
  it("names the app, tenant and mailbox; lists the granted permissions; warns that Mail.ReadWrite is missing", async () => {
    await open("account", "?scenario=graph");
    await page.locator("#app-only").waitFor();
    assert.equal(await text("#app-only"), "Signed in as the app 00000000-1111-2222-3333-444444444444 for tenant contoso.com; sends as scanner@contoso.com");
    assert.match(await text(".page-account"), /Microsoft Graph/);
    await page.locator("#granted li").first().waitFor();
    assert.deepEqual(await page.locator("#granted li").allTextContents(), ["Mail.Send"]);
    const warnings = page.locator("#permissions .warning");
    assert.equal(await warnings.count(), 1);
    assert.equal(await warnings.first().getAttribute("data-permission"), "Mail.ReadWrite");
    assert.match(await warnings.first().textContent(), /Mail.ReadWrite is not granted\..*big scans.*Grant admin consent/);
    // No sign-in buttons: the app signs in with its secret.
    assert.equal(await page.locator("#signin-browser").count(), 0);
    assert.equal((await calls("get_permissions")).length, 1);
    assert.doesNotMatch(await text(".page-account"), /eyJ/);
    await page.close();
  });

  it("no consent yet: Mail.Send missing first (nothing can be sent), then Mail.ReadWrite", async () => {
    await open("account", "?scenario=graph-no-consent");
    await page.locator("#permissions .warning").first().waitFor();
    assert.match(await text("#granted"), /None: Microsoft granted no permissions yet/);
    assert.deepEqual(await page.locator("#permissions .warning").evaluateAll((els) => els.map((e) => e.dataset.permission)), ["Mail.Send", "Mail.ReadWrite"]);
    assert.match(await page.locator("#permissions .warning").first().textContent(), /No mail can be sent/);
    await page.close();
  });

  it("an SMTP account nobody signed in to yet asks for no permissions", async () => {
    await open("account");
    await page.locator("#account-state").waitFor();
    assert.equal(await page.locator("#permissions").isHidden(), true);
    assert.equal((await calls("get_permissions")).length, 0);
    await page.close();
  });

  it("ran without page errors or CSP violations", () => {
    assert.deepEqual(errors, []);
  });
});
