// veritrail: shows each event's time in the browser's own time zone; the exact UTC time
// stays in the element's `datetime` and in its tooltip. Without script the page shows UTC.
"use strict";
for (const time of document.querySelectorAll("time[datetime]")) {
  const utc = time.getAttribute("datetime");
  const date = new Date(utc);
  if (Number.isNaN(date.getTime())) continue;
  time.textContent = date.toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
  });
  time.title = `${utc} (UTC)`;
}
