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
  link.href = `/activity/events/${record.seq}`;
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
for (const link of document.querySelectorAll("figure.histogram a, .paging a")) {
  link.addEventListener("click", loading);
}
// Back to this page from the browser's cache: it is loaded.
window.addEventListener("pageshow", () => {
  if (!pageStatus) return;
  pageStatus.hidden = true;
  pageStatus.textContent = "";
  main.removeAttribute("aria-busy");
});
