// parley dashboard: progressive enhancement. Every page works without this
// script; with it, the notification count and the events page follow the
// party's event stream (/ui/events/stream, Server-Sent Events from the same
// origin), and identifiers get a Copy button. Served from /ui/static/ under
// the dashboard's Content-Security-Policy (script-src 'self'): no inline
// code, no eval, nothing from elsewhere.
(function () {
  "use strict";

  function setCount(label) {
    var badge = document.getElementById("notify-count");
    if (!badge) { return; }
    badge.textContent = label;
    badge.hidden = label === "0";
    var link = document.getElementById("notify-link");
    if (link) { link.setAttribute("aria-label", "Events, " + label + " new"); }
  }

  function cell(text) {
    var td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function addEvent(ev) {
    var body = document.getElementById("events");
    if (!body || body.getAttribute("data-live") !== "1") { return; }
    if (body.querySelector('tr[data-seq="' + ev.seq + '"]')) { return; }
    var empty = body.querySelector("td.empty");
    if (empty) { empty.parentNode.remove(); }
    var tr = document.createElement("tr");
    tr.className = "event new live";
    tr.setAttribute("data-seq", String(ev.seq));
    tr.appendChild(cell(String(ev.seq)));
    tr.appendChild(cell(ev.at));
    var what = cell(ev.what + " ");
    var strong = document.createElement("strong");
    strong.className = "new-label";
    strong.textContent = "new";
    what.appendChild(strong);
    tr.appendChild(what);
    var about = document.createElement("td");
    if (ev.url && ev.url.indexOf("/ui/") === 0) {
      var a = document.createElement("a");
      a.href = ev.url;
      a.textContent = ev.subject;
      about.appendChild(a);
    } else {
      about.textContent = ev.subject;
    }
    tr.appendChild(about);
    tr.appendChild(cell(ev.detail || ""));
    body.insertBefore(tr, body.firstChild);
  }

  function listen() {
    if (!window.EventSource || !document.getElementById("notify-count")) { return; }
    var status = document.getElementById("live-status");
    var es = new EventSource("/ui/events/stream");
    es.addEventListener("count", function (m) {
      try { setCount(JSON.parse(m.data).unseen); } catch (e) { /* ignore a malformed message */ }
    });
    es.addEventListener("parley", function (m) {
      try { addEvent(JSON.parse(m.data)); } catch (e) { /* ignore a malformed message */ }
    });
    es.addEventListener("open", function () {
      if (status) { status.textContent = "Live: new events appear here as they happen."; }
      document.body.setAttribute("data-live", "open");
    });
  }

  function copyButtons() {
    if (!navigator.clipboard) { return; }
    var ids = document.querySelectorAll("input.id");
    for (var i = 0; i < ids.length; i++) {
      (function (input) {
        input.addEventListener("focus", function () { input.select(); });
        var b = document.createElement("button");
        b.type = "button";
        b.className = "copy";
        b.textContent = "Copy";
        b.setAttribute("aria-label", "Copy " + input.value);
        b.addEventListener("click", function () {
          navigator.clipboard.writeText(input.value).then(function () { b.textContent = "Copied"; });
        });
        input.insertAdjacentElement("afterend", b);
      })(ids[i]);
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    copyButtons();
    listen();
  });
})();
