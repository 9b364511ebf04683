// The README's first steps in a real headless Chromium: the Activity page address and the
// viewer key that `veritrail serve --demo` printed (PAGE, KEY), used as a new user would.
// Started by crates/veritrail/tests/it/browser.rs; exits 0 when every check passed.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const { PAGE, KEY, ARTIFACTS, CHROMIUM } = process.env;
const browser = await chromium.launch({
  executablePath: CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run"],
});
function step(name) { console.log(`ok - demo: ${name}`); }

try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(PAGE);
  await page.getByLabel("API key").fill(KEY);
  await page.getByRole("button", { name: "Sign in" }).click();
  const rows = page.locator("table.events > tbody > tr");
  await rows.first().waitFor();
  assert.ok((await rows.count()) >= 40, "a page of events");
  assert.ok((await page.locator("figure.histogram a").count()) > 10, "a histogram");
  // Events carry their catalog names, and codes where the catalog has them (PrivX's audit events).
  const names = await page.locator("table.events .event-name").allTextContents();
  assert.ok(names.includes("User-logged-in"), `catalog names: ${names.slice(0, 5)}`);
  assert.ok((await page.locator("table.events .code").count()) > 0, "catalog codes");
  // Cerby-style integration lifecycle steps fold into operations.
  assert.ok((await page.locator("table.events details.operation").count()) > 0, "operations");
  await page.screenshot({ path: `${ARTIFACTS}/demo-1280.png` });
  step("signed in with the printed key: events with names and codes, a histogram");

  await page.getByLabel("Category").selectOption("Authentication");
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForURL(/category=Authentication/);
  const types = await page.locator("table.events > tbody > tr .type").allTextContents();
  const authentication = ["user.logged_in", "user.login_failed", "user.mfa_challenge_accepted"];
  assert.ok(types.length > 0 && types.every((t) => authentication.includes(t)), `only Authentication: ${types}`);
  step("filtered by category");

  await rows.first().locator("a").first().click();
  const badge = page.locator("dialog[data-drawer] [data-badge]");
  await badge.filter({ hasText: /^(verified|failed)$/ }).waitFor();
  assert.equal(await badge.textContent(), "verified");
  await page.screenshot({ path: `${ARTIFACTS}/demo-drawer-1280.png` });
  step("opened a record: verified");
} finally {
  await browser.close();
}
