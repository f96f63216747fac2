// Drives the setup assistant through the real page (mocked shell): answer
// the four questions, and one full walk through all seven steps. Shared by
// e2e/setup.spec.mjs and e2e/screenshots.mjs (which takes a picture at each
// step through `onStep`).

/** Clicks the four answers of step 1. */
export async function answer(page, { external, mailbox, connector, smtpAuth }) {
  await page.click(`#setup-answer-external-${external ? "yes" : "no"}`);
  await page.click(`#setup-answer-mailbox-${mailbox ? "yes" : "no"}`);
  await page.click(`#setup-answer-connector-${connector}`);
  await page.click(`#setup-answer-smtpauth-${smtpAuth ? "yes" : "no"}`);
}

export const stepIs = (page, n) => page.waitForFunction((n) => document.querySelector("#setup-step-body")?.dataset.step === String(n), n);

export const SECRET = "Zx8Q~client-secret-value.never-shown";
/** What the walk types in step 2 (so it does not depend on the fixtures' config). */
export const TYPED = { mailbox: "scanner@contoso.com", tenant: "contoso.com", client_id: "7f3c2a10-5b1e-4d2c-9a8e-2c1f0b9e6d44", object_id: "6a1b9e0c-2f4d-4c1a-8e7b-3d5f0a9c2e11" };

/** Step 2 for app-only client submission: the sign-in way and the fields. */
export async function fillAppOnly(page) {
  await page.click("#setup-signin-way-client-credentials");
  await page.locator("#setup-f-upstream-mailbox").fill(TYPED.mailbox);
  await page.locator("#setup-f-oauth-tenant").fill(TYPED.tenant);
  await page.locator("#setup-f-oauth-client_id").fill(TYPED.client_id);
  await page.locator("#setup-f-extra-sp_object_id").fill(TYPED.object_id);
}
export const TEST_ID = "01JH9TEST00"; // what the mocked send_test answers

/**
 * The whole assistant for an office with outside recipients, a licensed
 * mailbox and SMTP AUTH allowed (client submission, app-only sign-in).
 * `onStep(n)` runs once each step is ready (for screenshots / checks).
 */
export async function walkSetup(page, { onStep = async () => {} } = {}) {
  await stepIs(page, 1);
  await answer(page, { external: true, mailbox: true, connector: "no", smtpAuth: true });
  await page.locator("#setup-recommendation[data-mode=submission]").waitFor();
  await onStep(1);
  await page.click("#setup-next");

  await stepIs(page, 2);
  await fillAppOnly(page);
  await page.waitForFunction((t) => document.querySelector("#setup-ms-steps").textContent.includes(`New-ServicePrincipal -AppId ${t.client_id} -ObjectId ${t.object_id}`), TYPED);
  await onStep(2);
  await page.click("#setup-next");

  await stepIs(page, 3);
  await page.locator("#secret-input").fill(SECRET);
  await page.click("#secret-store");
  await page.locator('#secret-state[data-stored="true"]').waitFor();
  await onStep(3);
  await page.click("#setup-next");

  await stepIs(page, 4);
  await page.locator("#setup-token-verdict").waitFor();
  await onStep(4);
  await page.click("#setup-next");

  await stepIs(page, 5);
  await page.locator("#setup-checks li").first().waitFor();
  await onStep(5);
  await page.click("#setup-next");

  await stepIs(page, 6);
  await page.locator("#setup-test-to").fill("anna.berg@contoso.com");
  await page.click("#setup-send-test");
  await page.locator('#setup-test-result[data-outcome="received"]').waitFor();
  await page.evaluate((id) => window.__mock.emit("engine-event", { event: "sent", id, reply: "250 2.0.0 OK <DM6PR11MB…> [Hostname=AM0PR…]" }), TEST_ID);
  await page.locator('#setup-test-result[data-outcome="sent"]').waitFor();
  await onStep(6);
  await page.click("#setup-next");

  await stepIs(page, 7);
  await page.locator("#device-card #device-card-port").waitFor();
  await onStep(7);
}

/** Step 2 for Microsoft Graph (app-only): the fields. */
export async function fillGraph(page) {
  await page.locator("#setup-f-upstream-mailbox").fill(TYPED.mailbox);
  await page.locator("#setup-f-oauth-tenant").fill(TYPED.tenant);
  await page.locator("#setup-f-oauth-client_id").fill(TYPED.client_id);
  await page.locator("#setup-f-extra-sp_object_id").fill(TYPED.object_id);
}

/**
 * Steps 1–5 for an office with outside recipients, a licensed mailbox,
 * no connector and Security Defaults on: Microsoft Graph, app-only.
 * `onStep(n)` runs once each step is ready.
 */
export async function walkGraph(page, { onStep = async () => {} } = {}) {
  await stepIs(page, 1);
  await answer(page, { external: true, mailbox: true, connector: "no", smtpAuth: false });
  await page.locator("#setup-recommendation[data-mode=graph]").waitFor();
  await onStep(1);
  await page.click("#setup-next");

  await stepIs(page, 2);
  await fillGraph(page);
  await page.waitForFunction((t) => document.querySelector("#setup-ms-steps").textContent.includes(`New-ManagementRoleAssignment -App ${t.client_id} -Role "Application Mail.Send"`), TYPED);
  await onStep(2);
  await page.click("#setup-next");

  await stepIs(page, 3);
  await page.locator("#secret-input").fill(SECRET);
  await page.click("#secret-store");
  await page.locator('#secret-state[data-stored="true"]').waitFor();
  await onStep(3);
  await page.click("#setup-next");

  await stepIs(page, 4);
  await page.locator("#setup-token-verdict").waitFor();
  await onStep(4);
  await page.click("#setup-next");

  await stepIs(page, 5);
  await page.locator("#setup-checks li").first().waitFor();
  await onStep(5);
}
