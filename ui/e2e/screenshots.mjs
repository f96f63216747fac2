// Regenerates docs/screenshots/*.png: every page, light and dark, at 100 %
// and 150 % scaling, from the built UI with the mocked shell and fixtures.
// Run: npm --prefix ui run screenshots
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { startServer } from "./server.mjs";
import { launch } from "./browser.mjs";

const out = fileURLToPath(new URL("../../docs/screenshots/", import.meta.url));
mkdirSync(out, { recursive: true });
const PAGES = ["queue", "throttling", "account", "settings", "diagnostics", "logs"];

/** What to do on a page before taking its picture. */
const PREPARE = {
  queue: async (p) => { await p.locator('tr[data-id="019b8d2e6a000001"]').click(); await p.locator("#explanation").waitFor(); },
  throttling: async (p) => { await p.locator("#throttle-chart svg").waitFor(); },
  account: async (p) => { await p.locator("#account-state").waitFor(); await p.click("#signin-device"); await p.locator("#device-code").waitFor(); },
  settings: async (p) => { await p.locator("#f-listener-allow").fill("192.168.1.0/24\n10.0.0.0/33"); await p.locator("#f-listener-allow-err:not(:empty)").waitFor(); },
  diagnostics: async (p) => { await p.click("#run-diagnostics"); await p.locator("#checks li").first().waitFor(); },
  logs: async (p) => { await p.locator("#log .line").first().waitFor(); },
};

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
    } finally { await chrome.close(); }
  }
} finally { await server.close(); }
console.log(`${n} screenshots in ${out}`);
