// The Activity page in a real headless Chromium, as a person uses it. Started by
// crates/veritrail/tests/it/browser.rs against a real `veritrail serve` it has filled;
// reads what it needs from the environment, exits 0 when every check passed, and leaves
// screenshots in $ARTIFACTS.
import { chromium } from "playwright-core";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:http";
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
  await page.screenshot({ path: `${ARTIFACTS}/activity-390-top.png` });
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
  const categories = await page.getByLabel("Category").locator("option").allTextContents();
  assert.ok(categories.some((c) => /^User Management \(\d+\)$/.test(c)), `the tenant's categories with counts: ${categories}`);
  await page.getByLabel("Category").selectOption("User Management");
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForURL(/category=User\+Management|category=User%20Management/);
  const types = await page.locator("table.events > tbody > tr .type").allTextContents();
  assert.ok(types.length > 0 && types.every((t) => t.startsWith("user.")), `only the category's types: ${types}`);
  step("filtering by category shows only matching rows and changes the URL");

  // Clicking a histogram bar narrows the range.
  const before = await rows.count();
  const bar = page.locator("figure.histogram a").first();
  await bar.click();
  await page.waitForURL(/from=\d.*to=\d/);
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

  // Opening a row: the record drawer shows the whole record, and its badge says verified
  // once this browser has checked the proof and the checkpoint's signature.
  const drawer = page.locator("dialog[data-drawer]");
  const badge = drawer.locator("[data-badge]");
  const checked = () => badge.filter({ hasText: /^(verified|failed|not checked)$/ }).waitFor();
  await page.goto(`${base}/activity`);
  const link = rows.first().locator("a").first();
  const recordPath = await link.getAttribute("href");
  const seq = recordPath.split("/").pop();
  await link.click();
  await checked();
  assert.equal(await badge.textContent(), "verified");
  assert.match(await drawer.locator("[data-badge-detail]").textContent(), /signature verifies under veritrail\.local\+[0-9a-f]{8} \(pin it on the Integrity page/);
  assert.match(await drawer.locator("pre.record").textContent(), new RegExp(`"seq": ${seq}`));
  assert.equal(new URL(page.url()).hash, `#event-${seq}`, "the address names the open record");
  assert.equal(new URL(page.url()).pathname, "/activity", "the table stays");
  await page.screenshot({ path: `${ARTIFACTS}/drawer-1280.png` });
  // At 390 px the drawer takes the whole width, and nothing in it scrolls sideways.
  await page.setViewportSize({ width: 390, height: 844 });
  const drawerOverflow = await drawer.evaluate((d) => d.scrollWidth - d.clientWidth);
  assert.ok(drawerOverflow <= 1, `no sideways scrolling in the drawer at 390 px (${drawerOverflow} px)`);
  await page.screenshot({ path: `${ARTIFACTS}/drawer-390.png` });
  await page.setViewportSize({ width: 1280, height: 900 });
  await axe(page, "the Activity page with the record drawer open");
  // A click on the panel, even on its bare padding, keeps it open.
  const panel = await drawer.boundingBox();
  await page.mouse.click(panel.x + 4, panel.y + panel.height - 4);
  assert.ok(await drawer.isVisible(), "a click inside the panel keeps it open");
  await page.keyboard.press("Escape");
  await drawer.waitFor({ state: "hidden" });
  // The dialog's close event, which tidies up, comes a moment after it closed.
  await page.waitForFunction(() => location.hash === "", null, { timeout: 2000 })
    .catch(() => assert.fail(`closed: the address still names the record (${page.url()})`));
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute("href")), recordPath, "the focus is back on the row");
  // Anywhere on a row opens it, and a shared address opens the record it names.
  await rows.nth(1).locator("td").nth(1).click();
  await checked();
  assert.equal(await badge.textContent(), "verified");
  await drawer.getByRole("button", { name: "Close" }).click();
  await page.goto(`${base}/activity#event-${seq}`);
  await checked();
  assert.equal(await badge.textContent(), "verified");
  // A click on the dimmed page beside it closes it.
  await page.mouse.click(40, 450);
  await drawer.waitFor({ state: "hidden" });
  step("opening a row shows the record in the drawer with the badge verified");

  // The record page (the row's link without script, or opened in a tab) checks the same.
  const recordPage = await context.newPage();
  await recordPage.goto(`${base}${recordPath}`);
  const pageBadge = recordPage.locator("[data-badge]");
  await pageBadge.filter({ hasText: /^(verified|failed)$/ }).waitFor();
  assert.equal(await pageBadge.textContent(), "verified");
  await axe(recordPage, "the record page");
  await recordPage.close();
  step("the record page shows the badge verified");

  // Records whose proof or checkpoint signature is corrupted on the way show failed, in
  // the drawer and on the record page.
  const corrupt = (change) => async (route) => {
    const response = await route.fetch();
    await route.fulfill({ response, body: change(await response.text()) });
  };
  const flipFirst = (all, first) => all.slice(0, -1) + (first === "A" ? "B" : "A");
  const cases = [
    ["proof", (html) => html.replace(/data-proof="\[&#34;(.)/, flipFirst)],
    // The signature's first base64 character after the key name.
    ["signature", (html) => html.replace(/(\u2014|&#8212;) veritrail\.local (.)/, (all, dash, first) => flipFirst(all, first))],
    // Another tenant's page: its record, proof and signed checkpoint are genuine, but of
    // tenant acme's log.
    ["tenant", (html) => html.replace('data-tenant="acme"', 'data-tenant="other"')],
  ];
  for (const [what, change] of cases) {
    const handler = corrupt(change);
    await context.route("**/activity/events/*", handler);
    await page.goto(`${base}/activity`);
    await rows.first().locator("a").first().click();
    await checked();
    assert.equal(await badge.textContent(), "failed", `a corrupted ${what} fails in the drawer`);
    await page.keyboard.press("Escape");
    const tab = await context.newPage();
    await tab.goto(`${base}${recordPath}`);
    await tab.locator("[data-badge]").filter({ hasText: /^(verified|failed)$/ }).waitFor();
    assert.equal(await tab.locator("[data-badge]").textContent(), "failed", `a corrupted ${what} fails on the page`);
    await tab.close();
    await context.unroute("**/activity/events/*", handler);
  }
  step("a record whose proof or checkpoint signature is corrupted, or whose checkpoint is another tenant's, shows failed");

  // Pinning the log's key in this browser: later checks require it, and a checkpoint
  // signed by any other key fails (here: another deployment's key, pinned by hand).
  {
    await page.goto(`${base}/activity/integrity`);
    await page.getByRole("button", { name: "Pin this key in this browser" }).click();
    await page.locator("[data-pin-status]").filter({ hasText: /has pinned this key/ }).waitFor();
    await axe(page, "the integrity page");
    await page.goto(`${base}/activity#event-${seq}`);
    await checked();
    assert.equal(await badge.textContent(), "verified");
    assert.match(await drawer.locator("[data-badge-detail]").textContent(), /the key this browser pinned/);
    await page.evaluate(() => localStorage.setItem("veritrail.pinned-verifier-key",
      "other.example+31d48fb2+AepKbGPinFIKvvVQexMuxfmVR3auvr57kkIe6mkURtIs"));
    await page.reload();
    await checked();
    assert.equal(await badge.textContent(), "failed");
    assert.match(await drawer.locator("[data-badge-detail]").textContent(), /not the key this browser pinned/);
    await page.goto(`${base}/activity/integrity`);
    await page.locator("[data-pin-status]").filter({ hasText: /pinned another key/ }).waitFor();
    await page.getByRole("button", { name: "Pin this key instead" }).click();
    await page.getByRole("button", { name: "Forget the pinned key" }).click();
    await page.locator("[data-pin-status]").filter({ hasText: /has not pinned/ }).waitFor();
    step("a pinned key is required by later checks; another key fails");
  }

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

  // Embedded as the README says, in another site's iframe: the rows open their records in
  // the drawer, verified there too.
  {
    // The product's page, from another origin (CSP's `frame-ancestors *` admits network
    // origins, not about:blank): a server of this script's on another loopback port.
    const product = createServer((request, response) => {
      response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      response.end(`<!doctype html><title>Your account</title><h1>Your account</h1><iframe src="${base}${minted.embed_path}" title="Activity" width="1100" height="800"></iframe>`);
    });
    await new Promise((resolve) => product.listen(0, "127.0.0.1", resolve));
    const host = await context.newPage();
    await host.goto(`http://127.0.0.1:${product.address().port}/account`);
    const frame = host.frameLocator("iframe");
    const framedRows = frame.locator("table.events > tbody > tr");
    await framedRows.first().waitFor();
    await framedRows.first().locator("a").first().click();
    const framedBadge = frame.locator("dialog[data-drawer] [data-badge]");
    await framedBadge.filter({ hasText: /^(verified|failed|not checked)$/ }).waitFor();
    assert.equal(await framedBadge.textContent(), "verified");
    assert.match(await frame.locator("dialog[data-drawer] pre.record").textContent(), /"email": "ann@example.com"/);
    // It has no Integrity page to pin the key on, so its check does not point there.
    assert.doesNotMatch(await frame.locator("dialog[data-drawer] [data-badge-detail]").textContent(), /Integrity/);
    await host.screenshot({ path: `${ARTIFACTS}/embedded-drawer.png` });
    await host.close();
    await new Promise((resolve) => product.close(resolve));
    await embed.goto(`${base}${minted.embed_path}`);
    await embed.locator("table.events > tbody > tr").first().locator("a").first().click();
    await embed.locator("dialog[data-drawer] [data-badge]").filter({ hasText: /^(verified|failed)$/ }).waitFor();
    await axe(embed, "the embedded view with its drawer open");
    step("the embedded view, in another site's iframe, opens its records verified");
  }

  // Empty, loading and error states say what is happening.
  {
    await page.goto(`${base}/activity?q=nosuchwordanywhere`);
    assert.match(await page.textContent("main"), /No events match/);
    assert.equal(await rows.count(), 0);
    const bad = await page.goto(`${base}/activity?from=yesterday`);
    assert.equal(bad.status(), 400);
    assert.match(await page.getByRole("alert").textContent(), /from/);
    // A record that does not exist: a problem page with a way back.
    const missing = await page.goto(`${base}/activity/events/99999999`);
    assert.equal(missing.status(), 404);
    await page.getByRole("link", { name: /Back to the Activity page/ }).waitFor();
    await axe(page, "the problem page");
    // A slow answer: the page says it is loading and dims what it is replacing. What the
    // old page shows once the form is sent is kept in sessionStorage, since reading the old
    // page while a navigation runs races with it on a busy machine.
    await page.goto(`${base}/activity`);
    const slow = async (route) => {
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await route.continue();
    };
    await page.route(/\/activity\?/, slow);
    await page.evaluate(() => {
      // After the page's own submit handler, which was there first.
      document.querySelector("form.filters").addEventListener("submit", () => {
        const status = document.querySelector("[data-page-status]");
        sessionStorage.setItem("shown", JSON.stringify({
          text: status.textContent, hidden: status.hidden,
          busy: document.querySelector("main").getAttribute("aria-busy"),
          dimmed: getComputedStyle(document.querySelector("table.events")).opacity,
        }));
      });
    });
    await page.getByLabel("Outcome").selectOption("failure");
    await page.getByRole("button", { name: "Apply" }).click();
    await page.waitForURL(/outcome=failure/);
    const shown = JSON.parse(await page.evaluate(() => sessionStorage.getItem("shown")));
    assert.deepEqual(shown, { text: "Loading events…", hidden: false, busy: "true", dimmed: "0.5" });
    await page.unroute(/\/activity\?/, slow);
    assert.ok(await page.locator("[data-page-status]").isHidden(), "loaded: no loading status");
    // Live mode refused (a session that ended): it stops and says so.
    const refuse = (route) => route.fulfill({ status: 401, contentType: "text/plain", body: "sign in first" });
    await page.route("**/activity/stream*", refuse);
    await page.getByRole("button", { name: "Live mode" }).click();
    await page.locator("[data-live-status]").filter({ hasText: /^Stopped/ }).waitFor();
    assert.equal(await page.getByRole("button", { name: "Live mode" }).getAttribute("aria-pressed"), "false");
    await page.unroute("**/activity/stream*", refuse);
    step("empty, loading and error states say what is happening");
  }

  // Keyboard only: sign in, filter, narrow by a bar, open a record; focus always visible.
  {
    const keyboard = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const kb = await keyboard.newPage();
    await kb.goto(`${base}/activity`);
    // Tabs until `selector` has the focus, and checks that the focus can be seen.
    const tabTo = async (selector) => {
      for (let i = 0; i < 60; i++) {
        await kb.keyboard.press("Tab");
        const focus = await kb.evaluate((wanted) => {
          const element = document.activeElement;
          if (!element || !element.matches(wanted)) return null;
          const style = getComputedStyle(element);
          return { outline: style.outlineStyle, width: parseFloat(style.outlineWidth) };
        }, selector);
        if (focus) {
          assert.ok(focus.outline !== "none" && focus.width >= 2, `a visible focus ring on ${selector}: ${JSON.stringify(focus)}`);
          return;
        }
      }
      throw new Error(`the Tab key never reached ${selector}`);
    };
    await tabTo("input[name=key]");
    await kb.keyboard.type(OWNER);
    await kb.keyboard.press("Enter");
    // The sign-in form is at /activity too: wait for the Activity page itself.
    await kb.locator("#f-category").waitFor();
    await tabTo("#f-category");
    // A drop-down: typing chooses the option that starts so; then to Apply.
    await kb.keyboard.type("User M");
    await tabTo("form.filters button[type=submit]");
    await kb.keyboard.press("Enter");
    await kb.waitForURL(/category=User/);
    await tabTo("figure.histogram a");
    await kb.keyboard.press("Enter");
    // The form sent empty `from=` and `to=`: wait for the bar's dates.
    await kb.waitForURL(/from=\d.*to=\d/);
    await tabTo("[data-live] button");
    await kb.keyboard.press("Space");
    assert.equal(await kb.locator("[data-live] button").getAttribute("aria-pressed"), "true");
    await tabTo("table.events a");
    const opened = await kb.evaluate(() => document.activeElement.getAttribute("href"));
    await kb.keyboard.press("Enter");
    const kbBadge = kb.locator("dialog[data-drawer] [data-badge]");
    await kbBadge.filter({ hasText: /^(verified|failed)$/ }).waitFor();
    assert.equal(await kbBadge.textContent(), "verified");
    // The drawer has the focus (its Close button, ringed), and Escape gives it back.
    const inside = await kb.evaluate(() => {
      const element = document.activeElement;
      const style = getComputedStyle(element);
      return { inDrawer: !!element.closest("dialog[data-drawer]"), outline: style.outlineStyle };
    });
    assert.deepEqual(inside, { inDrawer: true, outline: "solid" });
    await kb.keyboard.press("Escape");
    await kb.locator("dialog[data-drawer]").waitFor({ state: "hidden" });
    assert.equal(await kb.evaluate(() => document.activeElement.getAttribute("href")), opened);
    await keyboard.close();
    step("keyboard only: sign in, filter, narrow by a bar, live mode, open and close a record; focus visible throughout");
  }

  await context.close();
  console.log(`${checks.length} checks passed`);
} finally {
  await browser.close();
}
