// veritrail: shows each event's time in the browser's own time zone; the exact UTC time
// stays in the element's `datetime` and in its tooltip. Without script the page shows UTC.
"use strict";

// `utc` (RFC 3339) in the browser's time zone.
function localTime(utc) {
  const date = new Date(utc);
  return Number.isNaN(date.getTime()) ? utc : date.toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
  });
}

// The drawer, and the address of record `seq`'s page (the Activity page's, or the embedded
// view's with its token), which it says with a `{seq}` in its place.
const drawer = document.querySelector("dialog[data-drawer]");
function recordHref(seq) {
  const pattern = drawer ? drawer.dataset.recordHref : "/activity/events/{seq}";
  return pattern.replace("{seq}", encodeURIComponent(seq));
}

// Live mode: new events matching the page's filters, from the live tail, added at the top
// of the table without moving what the reader is looking at.
function cell(row, ...parts) {
  const td = document.createElement("td");
  for (const part of parts) td.append(part);
  row.append(td);
  return td;
}

function span(className, text) {
  const element = document.createElement("span");
  element.className = className;
  element.textContent = text;
  return element;
}

function addRow(record) {
  const tbody = document.querySelector("table.events > tbody");
  if (!tbody) return;
  const row = document.createElement("tr");
  row.dataset.seq = record.seq;
  const utc = record.occurred_at || record.received_at;
  const link = document.createElement("a");
  link.href = recordHref(record.seq);
  link.dataset.open = record.seq;
  const time = document.createElement("time");
  time.setAttribute("datetime", utc);
  time.title = `${utc} (UTC)`;
  time.textContent = localTime(utc);
  link.append(time, span("visually-hidden", `, event ${record.seq}: open the record and its proof`));
  cell(row, link);
  const actor = record.actor || {};
  cell(row, actor.email || actor.name || actor.id || "");
  const event = cell(row, span("event-name", record.name || record.type));
  if (record.code !== undefined && record.code !== null) event.append(" ", span("code", String(record.code)));
  event.append(document.createElement("br"), span("type", record.type));
  const target = (record.targets || [])[0] || {};
  cell(row, target.name || target.id || "");
  const outcome = record.outcome || "unknown";
  cell(row, span(`outcome ${outcome}`, outcome));
  // Keep the reader's place: the first row in view stays where it is on the screen. Browsers
  // with scroll anchoring (Chromium, Firefox) have kept it already and the difference is 0;
  // this is for those without.
  const anchor = window.scrollY > 0
    ? [...tbody.rows].find((each) => each.getBoundingClientRect().bottom > 0)
    : null;
  const top = anchor ? anchor.getBoundingClientRect().top : 0;
  tbody.prepend(row);
  if (anchor) window.scrollBy(0, anchor.getBoundingClientRect().top - top);
}

for (const time of document.querySelectorAll("time[datetime]")) {
  const utc = time.getAttribute("datetime");
  if (Number.isNaN(new Date(utc).getTime())) continue;
  time.textContent = localTime(utc);
  time.title = `${utc} (UTC)`;
}

const live = document.querySelector("[data-live]");
if (live) {
  const button = live.querySelector("button");
  const status = live.querySelector("[data-live-status]");
  let source = null;
  button.addEventListener("click", () => {
    if (source) {
      source.close();
      source = null;
      button.setAttribute("aria-pressed", "false");
      status.textContent = "Off: turn it on to see new events as they arrive.";
      return;
    }
    const params = new URLSearchParams(location.search);
    params.delete("after");
    if (live.dataset.after) params.set("after", live.dataset.after);
    source = new EventSource(`/activity/stream?${params}`);
    source.onopen = () => {
      status.textContent = "On: new events appear at the top.";
    };
    source.onmessage = (message) => {
      live.dataset.after = message.lastEventId;
      addRow(JSON.parse(message.data));
    };
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        // Refused (the session ended, say): the browser will not try again.
        source.close();
        source = null;
        button.setAttribute("aria-pressed", "false");
        status.textContent = "Stopped: the server ended live mode. Reload the page, or sign in again if your session has ended.";
      } else {
        status.textContent = "Connection lost: reconnecting… (no event is missed)";
      }
    };
    button.setAttribute("aria-pressed", "true");
    status.textContent = "Connecting…";
  });
}

// Loading: a filter, a histogram bar or the next page replaces the page, which can take a
// moment on a slow network; say so meanwhile.
const main = document.querySelector("main");
const pageStatus = document.querySelector("[data-page-status]");
function loading() {
  if (!pageStatus) return;
  pageStatus.textContent = "Loading events…";
  pageStatus.hidden = false;
  main.setAttribute("aria-busy", "true");
}
document.querySelector("form.filters")?.addEventListener("submit", loading);
for (const link of document.querySelectorAll("figure.histogram a, .paging a, .filters .ranges a")) {
  link.addEventListener("click", loading);
}
// Back to this page from the browser's cache: it is loaded.
window.addEventListener("pageshow", () => {
  if (!pageStatus) return;
  pageStatus.hidden = true;
  pageStatus.textContent = "";
  main.removeAttribute("aria-busy");
});

// The record drawer: a row (its link, or anywhere on it) opens the record beside the
// table, as the record page shows it, and verify.js checks its proof there. The address
// says which record is open (#event-<seq>), so it can be shared; Escape or Close puts the
// focus back on the row. Without script, the row's link opens the record page.
if (drawer) {
  const title = drawer.querySelector("#drawer-title");
  const body = drawer.querySelector("[data-drawer-body]");
  const pageLink = drawer.querySelector("[data-drawer-page]");
  let opener = null;
  let generation = 0;
  // The seq of the record shown (or being loaded).
  let shown = null;

  // The drawer's own live region (always in the page, so that what it says is heard) and,
  // for a failure, an alert in its body.
  const status = drawer.querySelector("[data-drawer-status]");
  const say = (text) => {
    status.textContent = text;
  };
  const fail = (text) => {
    const p = document.createElement("p");
    p.className = "problem";
    p.setAttribute("role", "alert");
    p.textContent = text;
    say("");
    body.replaceChildren(p);
  };

  const show = async (seq, from) => {
    // Opened by the address while open (back, forward): the focus still goes back to the
    // row that opened it first.
    if (from || !drawer.open) opener = from;
    shown = seq;
    const href = recordHref(seq);
    const mine = ++generation;
    title.textContent = `Event ${seq}`;
    pageLink.removeAttribute("href");
    body.replaceChildren();
    say("Loading the record…");
    if (!drawer.open) drawer.showModal();
    history.replaceState(history.state, "", `${location.pathname}${location.search}#event-${seq}`);
    let doc = null;
    try {
      const response = await fetch(href, { credentials: "same-origin", headers: { accept: "text/html" } });
      doc = new DOMParser().parseFromString(await response.text(), "text/html");
    } catch (err) {
      doc = null;
    }
    if (mine !== generation) return;
    const proof = doc && doc.querySelector("main section[data-proof]");
    if (!proof) {
      // A missing record, an ended session (the sign-in page), a server that cannot answer.
      const why = doc && doc.querySelector("main [role=alert]");
      const signIn = doc && doc.querySelector("form[action='/ui/sign-in']");
      pageLink.href = href;
      fail(why ? why.textContent : signIn
        ? "Your session has ended: reload the page to sign in again."
        : "The record could not be loaded. Check the connection and try again.");
      return;
    }
    const heading = doc.querySelector("main h1");
    if (heading) title.textContent = heading.textContent;
    const sections = [...doc.querySelectorAll("main section.card")].map((section) => document.adoptNode(section));
    // The drawer's title is its h2: the sections' headings go one level down.
    for (const h2 of sections.flatMap((section) => [...section.querySelectorAll("h2")])) {
      const h3 = document.createElement("h3");
      h3.id = h2.id;
      h3.textContent = h2.textContent;
      h2.replaceWith(h3);
    }
    body.replaceChildren(...sections);
    pageLink.href = href;
    say("");
    checkPage(body.querySelector("section[data-proof]"));
  };

  drawer.querySelector("[data-drawer-close]").addEventListener("click", () => drawer.close());
  // A click on the backdrop, outside the panel, closes it too (a click on the panel's own
  // padding also has the dialog as its target: only where it lands tells them apart).
  drawer.addEventListener("click", (event) => {
    if (event.target !== drawer) return;
    const panel = drawer.getBoundingClientRect();
    const inside = event.clientX >= panel.left && event.clientX <= panel.right &&
      event.clientY >= panel.top && event.clientY <= panel.bottom;
    if (!inside) drawer.close();
  });
  drawer.addEventListener("close", () => {
    // The event comes a moment after the closing: a record opened meanwhile stays open.
    if (drawer.open) return;
    generation++;
    body.replaceChildren();
    say("");
    // The address stops naming the record, unless it names another one by now.
    if (location.hash === `#event-${shown}`) {
      history.replaceState(history.state, "", `${location.pathname}${location.search}`);
    }
    shown = null;
    if (opener && opener.isConnected) opener.focus();
    opener = null;
  });

  document.querySelector("table.events")?.addEventListener("click", (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey ||
      event.shiftKey || event.altKey) return;
    const link = event.target.closest("a");
    if (link && link.dataset.open) {
      event.preventDefault();
      show(link.dataset.open, link);
      return;
    }
    // Elsewhere on a row (not on another link, an operation's steps, or text being selected).
    if (link || event.target.closest("details, button") || String(getSelection())) return;
    const row = event.target.closest("tbody > tr");
    const first = row && row.querySelector("a[data-open]");
    if (first) show(first.dataset.open, first);
  });

  // An address naming a record opens it: when the page loads, and when only its fragment
  // changes (a link to #event-<seq>, the browser's back and forward).
  const follow = (address) => {
    const wanted = /#event-(\d+)$/.exec(address);
    if (wanted) {
      if (wanted[1] !== shown || !drawer.open) show(wanted[1], null);
    } else if (drawer.open) drawer.close();
  };
  window.addEventListener("hashchange", (event) => follow(new URL(event.newURL).hash));
  follow(location.hash);
}
