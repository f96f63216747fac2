// The secrets in the window (Settings and Account): stored / not stored,
// stored write-only, replaced, removed; device users with their passwords.
// Debian's chromium, the Tauri IPC mocked (e2e/harness.ts + setup-mocks.ts).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "./server.mjs";
import { launch } from "./browser.mjs";

let server, chrome, page;
const SECRET = "s3cr3t-Value~from-Entra";

before(async () => { server = await startServer(); chrome = await launch(); });
after(async () => { await chrome?.close(); await server?.close(); });

let pre = "";
async function open(hash) {
  page = await chrome.context.newPage();
  page.setDefaultTimeout(8000);
  await page.goto(`${server.url}#${hash}`);
  pre = hash;
  await page.locator(`#${pre}-secrets-panel`).waitFor();
  return page;
}
const stored = (id) => page.locator(`#${pre}-${id}`).getAttribute("data-stored");
const waitStored = (id, v) => page.waitForFunction(([i, s]) => document.querySelector(`#${i}`)?.dataset.stored === s, [`${pre}-${id}`, String(v)]);
const note = (re) => page.waitForFunction(([i, r]) => new RegExp(r).test(document.querySelector(`#${i}`)?.textContent ?? ""), [`${pre}-secrets-note`, re.source]);

describe("secrets in the window", () => {
  it("Settings: the client secret is stored write-only, replaced and removed; never shown", async () => {
    await open("settings");
    await page.locator(`#${pre}-secret-client-secret-state`).waitFor();
    assert.equal(await stored("secret-client-secret-state"), "false");
    await page.fill(`#${pre}-secret-client-secret`, SECRET);
    await page.click(`#${pre}-secret-client-secret-store`);
    await waitStored("secret-client-secret-state", true);
    assert.equal(await page.inputValue(`#${pre}-secret-client-secret`), "", "the field is cleared");
    assert.match(await page.locator(`#${pre}-secret-client-secret-store`).textContent(), /Replace/);
    await note(/stored in the keychain/);
    const text = await page.evaluate(() => document.body.innerText + document.body.innerHTML);
    assert.ok(!text.includes(SECRET), "the secret is nowhere on the page");
    const replies = await page.evaluate(() => JSON.stringify(window.__mock.calls.filter((c) => c.cmd !== "store_secret")));
    assert.ok(!replies.includes(SECRET), "only store_secret carried it");
    await page.click(`#${pre}-secret-client-secret-remove`);
    await waitStored("secret-client-secret-state", false);
    await page.close();
  });

  it("Settings: device users are added with a password, get a new one, and are removed; the form keeps the list", async () => {
    await open("settings");
    await page.locator(`#${pre}-device-users`).waitFor();
    await page.fill(`#${pre}-device-user-name`, "erp");
    await page.fill(`#${pre}-device-user-password`, "pw-1");
    await page.click(`#${pre}-device-user-add`);
    await waitStored("device-user-erp-state", true);
    assert.equal(await page.inputValue(`#${pre}-device-user-password`), "");
    const users = await page.inputValue("#f-listener-users").catch(() => null);
    if (users !== null) assert.match(users, /^erp$/m, "the form shows the user the shell added");
    await page.fill(`#${pre}-device-user-erp-password`, "pw-2");
    await page.click(`#${pre}-device-user-erp-password-store`);
    await note(/password of erp is stored/);
    await page.click(`#${pre}-device-user-erp-remove`);
    await page.waitForFunction((i) => !document.querySelector(`#${i}`), `${pre}-device-user-erp-state`);
    // A name with a space is refused before anything is sent.
    await page.fill(`#${pre}-device-user-name`, "two words");
    await page.fill(`#${pre}-device-user-password`, "x");
    await page.click(`#${pre}-device-user-add`);
    await note(/name without spaces/);
    await page.close();
  });

  it("Account: the secret its sign-in needs, stored or not", async () => {
    await open("account");
    const acct = await page.evaluate(() => window.__mock.data.account);
    if (acct.flow === "client-credentials") {
      await page.locator(`#${pre}-secret-client-secret-state`).waitFor();
    } else {
      await page.locator(`#${pre}-secret-refresh-token-state`).waitFor();
      assert.equal(await page.locator(`#${pre}-secret-client-secret-state`).count(), 0, "no client secret for a delegated sign-in");
    }
    await page.close();
  });
});
