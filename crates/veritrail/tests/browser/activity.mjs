// The Activity page in a real headless Chromium, as a person uses it. Started by
// crates/veritrail/tests/it/browser.rs against a real `veritrail serve` it has filled;
// reads what it needs from the environment, exits 0 when every check passed, and leaves
// screenshots in $ARTIFACTS.
import { chromium } from "playwright-core";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import assert from "node:assert/strict";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const { URL: base, OWNER, PUBLISHER, ARTIFACTS, CHROMIUM } = process.env;
mkdirSync(ARTIFACTS, { recursive: true });

const browser = await chromium.launch({
  executablePath: CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run"],
});
const checks = [];
function step(name) { checks.push(name); console.log(`ok - ${name}`); }

async function axe(page, what) {
  // Runtime evaluation is not subject to the page's CSP, which forbids inline scripts.
  await page.evaluate(axeSource);
  const results = await page.evaluate(() => axe.run(document, { resultTypes: ["violations"] }));
  const bad = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target).join(", ")})`), [], `axe on ${what}`);
}

async function signIn(context, key) {
  const page = await context.newPage();
  await page.goto(`${base}/activity`);
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForLoadState("domcontentloaded");
  return page;
}

try {
  // A publisher key is refused, with a page that says why.
  {
    const context = await browser.newContext();
    const page = await signIn(context, PUBLISHER);
    assert.match(await page.textContent("main"), /publisher key only sends events/);
    await axe(page, "the refusal page");
    await context.close();
    step("a publisher key is refused");
  }

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await signIn(context, OWNER);
  assert.equal(new URL(page.url()).pathname, "/activity");
  const rows = page.locator("table.events > tbody > tr");
  assert.ok((await rows.count()) > 10, "rows appear");
  step("sign in; rows appear");
  await axe(page, "the Activity page");
  step("axe-core finds no serious or critical violation on the Activity page");
  await page.screenshot({ path: `${ARTIFACTS}/activity-1280.png`, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${ARTIFACTS}/activity-390.png`, fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `no sideways scrolling at 390 px (${overflow} px too wide)`);
  await page.setViewportSize({ width: 1280, height: 900 });
  step("screenshots at 1280 and 390 px; readable at 390 px");

  // Dates in the browser's time zone, the exact UTC time on hover.
  {
    const tokyo = await browser.newContext({ timezoneId: "Asia/Tokyo", locale: "en-GB" });
    const local = await signIn(tokyo, OWNER);
    const time = local.locator("table.events > tbody > tr time").first();
    const utc = await time.getAttribute("datetime");
    const shown = await time.textContent();
    // Tokyo is 9 hours ahead of UTC: its hour and minute are never the UTC ones.
    const tokyoTime = new Date(utc).toLocaleTimeString("en-GB", { timeZone: "Asia/Tokyo", hour: "2-digit", minute: "2-digit" });
    assert.ok(shown.includes(tokyoTime), `the Tokyo time ${tokyoTime} is shown: ${shown} (UTC ${utc})`);
    assert.ok(!shown.includes(utc.slice(11, 16)), `not the UTC time ${utc.slice(11, 16)}: ${shown}`);
    assert.equal(await time.getAttribute("title"), `${utc} (UTC)`);
    await tokyo.close();
    step("dates in the browser's time zone, exact UTC on hover");
  }

  // Filtering by category: only matching rows, and the URL says so.
  await page.getByLabel("Category").fill("User Management");
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForURL(/category=User\+Management|category=User%20Management/);
  const types = await page.locator("table.events > tbody > tr .type").allTextContents();
  assert.ok(types.length > 0 && types.every((t) => t.startsWith("user.")), `only the category's types: ${types}`);
  step("filtering by category shows only matching rows and changes the URL");

  // Clicking a histogram bar narrows the range.
  const before = await rows.count();
  const bar = page.locator("figure.histogram a").first();
  await bar.click();
  await page.waitForURL(/from=.*to=/);
  const url = new URL(page.url());
  assert.ok(url.searchParams.get("from") && url.searchParams.get("to"), "the range is in the URL");
  assert.equal(url.searchParams.get("category"), "User Management", "the other filters stay");
  assert.ok((await rows.count()) <= before);
  assert.equal(await page.getByLabel("From (RFC 3339)").inputValue(), url.searchParams.get("from"));
  step("clicking a histogram bar narrows the date range");

  // Live mode: an event sent now appears at the top, and a reader who scrolled down
  // stays on the same rows.
  {
    await page.goto(`${base}/activity`);
    await page.getByRole("button", { name: "Live mode" }).click();
    await page.locator("[data-live-status]").filter({ hasText: /^On/ }).waitFor();
    await page.evaluate(() => window.scrollTo(0, 600));
    const anchor = await rows.nth(12).elementHandle();
    const anchorTop = await anchor.evaluate((row) => row.getBoundingClientRect().top);
    const sent = await fetch(`${base}/api/v1/events`, {
      method: "POST",
      headers: { authorization: `Bearer ${PUBLISHER}`, "content-type": "application/json" },
      body: JSON.stringify({ id: "live-1", type: "user.logged_in", actor: { id: "dave@example.com", email: "dave@example.com" } }),
    });
    assert.equal(sent.status, 200);
    await page.locator("table.events > tbody > tr").first().filter({ hasText: "dave@example.com" }).waitFor({ timeout: 10000 });
    const anchorAfter = await anchor.evaluate((row) => row.getBoundingClientRect().top);
    assert.ok(Math.abs(anchorAfter - anchorTop) <= 2, `the reader's rows stay put (${anchorTop} -> ${anchorAfter})`);
    step("live mode shows an event sent during the test, without moving the reader");
  }

  // Opening a record: the badge says verified once the page has checked the proof.
  await page.goto(`${base}/activity`);
  await rows.first().locator("a").first().click();
  const badge = page.locator("[data-badge]");
  await badge.filter({ hasText: /^(verified|failed)$/ }).waitFor();
  assert.equal(await badge.textContent(), "verified");
  await axe(page, "the record page");
  step("opening a record shows the badge verified");

  // A record whose proof is corrupted on the way shows failed, not verified.
  const recordUrl = page.url();
  await context.route("**/activity/events/*", async (route) => {
    const response = await route.fetch();
    let html = await response.text();
    html = html.replace(/data-proof="\[&#34;(.)/, (all, first) => all.slice(0, -1) + (first === "A" ? "B" : "A"));
    await route.fulfill({ response, body: html });
  });
  await page.goto(recordUrl);
  await badge.filter({ hasText: /^(verified|failed)$/ }).waitFor();
  assert.equal(await badge.textContent(), "failed");
  await context.unroute("**/activity/events/*");
  step("a record whose proof is corrupted shows failed");

  // A viewer token restricted to one actor shows only that actor, and the URL cannot widen it.
  const minted = await (await fetch(`${base}/api/v1/viewer-tokens`, {
    method: "POST",
    headers: { authorization: `Bearer ${OWNER}`, "content-type": "application/json" },
    body: JSON.stringify({ actor: "ann@example.com", ttl_seconds: 300 }),
  })).json();
  const embed = await context.newPage();
  await embed.goto(`${base}${minted.embed_path}&actor=bob@example.com`);
  const actors = await embed.locator("table.events > tbody > tr > td:nth-child(2)").allTextContents();
  assert.ok(actors.length > 0 && actors.every((a) => a.trim() === "ann@example.com"), `only ann: ${actors}`);
  await axe(embed, "the embedded view");
  step("a viewer token restricted to one actor shows only that actor and cannot be widened");

  await context.close();
  console.log(`${checks.length} checks passed`);
} finally {
  await browser.close();
}
