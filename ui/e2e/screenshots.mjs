// Regenerates docs/screenshots/*.png: every page, light and dark, at 100 %
// and 150 % scaling, from the built UI with the mocked shell and fixtures;
// each step of the setup assistant (setup-N-light/dark.png, and steps 1–4
// in Graph mode as setup-graph-N-light/dark.png; the window made
// as tall as the step), the printed device card, and delivery tracking
// (queue-traced-*, throttling-traced-*).
// Run: npm --prefix ui run screenshots
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { startServer } from "./server.mjs";
import { launch } from "./browser.mjs";
import { walkGraph, walkSetup } from "./setup-walk.mjs";

const out = fileURLToPath(new URL("../../docs/screenshots/", import.meta.url));
mkdirSync(out, { recursive: true });
const PAGES = ["queue", "throttling", "account", "settings", "diagnostics", "logs", "devices"];

/** What to do on a page before taking its picture. */
const PREPARE = {
  queue: async (p) => { await p.locator('tr[data-id="019b8d2e6a000001"]').click(); await p.locator("#explanation").waitFor(); },
  throttling: async (p) => { await p.locator("#throttle-chart svg").waitFor(); },
  account: async (p) => { await p.locator("#account-state").waitFor(); await p.click("#signin-device"); await p.locator("#device-code").waitFor(); },
  settings: async (p) => { await p.locator("#f-listener-allow").fill("192.168.1.0/24\n10.0.0.0/33"); await p.locator("#f-listener-allow-err:not(:empty)").waitFor(); },
  diagnostics: async (p) => { await p.click("#run-diagnostics"); await p.locator("#checks li").first().waitFor(); },
  logs: async (p) => { await p.locator("#log .line").first().waitFor(); },
  devices: async (p) => { await p.locator("#page-devices #device-card-port").waitFor(); },
};

/** The whole window, as tall as the page's content (for the setup steps). */
async function tall(page, path) {
  await page.evaluate(() => document.activeElement?.blur?.());
  const h = await page.evaluate(() => document.querySelector("#content").scrollHeight + document.querySelector(".strip").offsetHeight + 4);
  await page.setViewportSize({ width: 1200, height: Math.max(760, h) });
  await page.waitForTimeout(100);
  await page.screenshot({ path });
  await page.setViewportSize({ width: 1200, height: 760 });
}

const server = await startServer();
let n = 0;
try {
  for (const scale of [1, 1.5]) {
    const chrome = await launch({ deviceScaleFactor: scale, viewport: { width: 1200, height: 760 } });
    try {
      for (const scheme of ["light", "dark"]) {
        for (const name of PAGES) {
          const page = await chrome.context.newPage();
          page.setDefaultTimeout(8000);
          await page.emulateMedia({ colorScheme: scheme });
          await page.goto(`${server.url}#${name}`);
          await page.locator("#queue-table tbody tr").first().waitFor({ state: "attached" });
          await PREPARE[name](page);
          await page.evaluate(() => document.activeElement?.blur?.());
          await page.waitForTimeout(150);
          const file = `${name}-${scheme}${scale === 1 ? "" : "@1.5x"}.png`;
          await page.screenshot({ path: out + file });
          n++;
          await page.close();
        }
      }
      // The attention state of the strip, once per scale, light.
      const page = await chrome.context.newPage();
      await page.goto(`${server.url}?scenario=attention#queue`);
      await page.locator(".strip-bad").waitFor();
      await page.screenshot({ path: out + `attention-light${scale === 1 ? "" : "@1.5x"}.png` });
      n++;
      await page.close();
      // Graph mode: Settings with the Graph keys (the engine refusing a
      // plain-http endpoint), and the app-only Account page.
      for (const scheme of ["light", "dark"]) {
        const suffix = `${scheme}${scale === 1 ? "" : "@1.5x"}`;
        const s = await chrome.context.newPage();
        s.setDefaultTimeout(8000);
        await s.emulateMedia({ colorScheme: scheme });
        await s.goto(`${server.url}#settings`);
        await s.locator("#f-upstream-mode").selectOption("graph");
        await s.locator("#f-graph-endpoint").fill("http://example.com");
        await s.locator("#f-graph-endpoint-err:not(:empty)").waitFor();
        await s.locator("#f-upstream-mailbox").scrollIntoViewIfNeeded();
        await s.evaluate(() => document.activeElement?.blur?.());
        await s.screenshot({ path: out + `settings-graph-${suffix}.png` });
        await s.locator("#group-graph").scrollIntoViewIfNeeded();
        await s.screenshot({ path: out + `settings-graph-keys-${suffix}.png` });
        n += 2;
        await s.close();
        const a = await chrome.context.newPage();
        a.setDefaultTimeout(8000);
        await a.emulateMedia({ colorScheme: scheme });
        await a.goto(`${server.url}?scenario=graph#account`);
        await a.locator("#permissions .warning").first().waitFor();
        await a.screenshot({ path: out + `account-graph-${suffix}.png` });
        n++;
        await a.close();
        // Delivery tracking: the traced message (delivered / bounced / junk)
        // selected in the queue, and the throttling page's tracking panel.
        const q = await chrome.context.newPage();
        q.setDefaultTimeout(8000);
        await q.emulateMedia({ colorScheme: scheme });
        await q.goto(`${server.url}?scenario=traced#queue`);
        await q.locator('tr[data-id="019b8d2e6a000006"]').click();
        await q.locator("#message-detail .trace-bounced").waitFor();
        await q.evaluate(() => document.activeElement?.blur?.());
        await q.screenshot({ path: out + `queue-traced-${suffix}.png` });
        await q.goto(`${server.url}?scenario=traced#throttling`);
        await q.locator("#tracking-facts").waitFor();
        await q.locator("#tracking-panel").scrollIntoViewIfNeeded();
        await q.screenshot({ path: out + `throttling-traced-${suffix}.png` });
        n += 2;
        await q.close();
      }
      if (scale === 1) {
        for (const scheme of ["light", "dark"]) {
          const page = await chrome.context.newPage();
          page.setDefaultTimeout(8000);
          await page.emulateMedia({ colorScheme: scheme });
          await page.goto(`${server.url}#setup`);
          await walkSetup(page, { onStep: async (step) => { await tall(page, out + `setup-${step}-${scheme}.png`); n++; } });
          if (scheme === "light") {
            await page.emulateMedia({ media: "print", colorScheme: "light" });
            await page.screenshot({ path: out + "device-card-print.png" });
            n++;
          }
          await page.close();
          // Microsoft Graph: outside recipients, a mailbox, SMTP AUTH off (Security Defaults), no connector.
          // Playwright's clock at an hour before the fixture token's expiry (e2e/fixtures/permissions-graph.json).
          const graph = await chrome.context.newPage();
          graph.setDefaultTimeout(8000);
          await graph.clock.install({ time: new Date(1767610500000 - 3_600_000) });
          await graph.emulateMedia({ colorScheme: scheme });
          // ?scenario=graph: the account answers as the Graph app (signed in once the secret is stored).
          await graph.goto(`${server.url}?scenario=graph#setup`);
          // Steps 1–4 only: the mocked diagnostics of step 5 are the SMTP ones (no Graph diagnostics fixture from the engine yet).
          await walkGraph(graph, { onStep: async (step) => { if (step <= 4) { await tall(graph, out + `setup-graph-${step}-${scheme}.png`); n++; } } });
          await graph.close();
        }
      }
    } finally { await chrome.close(); }
  }
} finally { await server.close(); }
console.log(`${n} screenshots in ${out}`);
