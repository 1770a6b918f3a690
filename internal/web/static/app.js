// mailroom dashboard: copy buttons, live tail and delivery refresh.
// Served from /ui/static so that the CSP can forbid inline script.
(function () {
  "use strict";

  // Copy buttons: <button data-copy="text">.
  function copyFallback(text) {
    var t = document.createElement("textarea");
    t.value = text;
    t.setAttribute("readonly", "");
    t.className = "offscreen";
    document.body.appendChild(t);
    t.select();
    try { document.execCommand("copy"); } catch (e) { /* nothing more to try */ }
    t.remove();
  }
  document.addEventListener("click", function (e) {
    var b = e.target.closest("[data-copy]");
    if (!b) return;
    var text = b.getAttribute("data-copy");
    var done = function () {
      b.textContent = "Copied";
      setTimeout(function () { b.textContent = "Copy"; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { copyFallback(text); done(); });
    } else {
      copyFallback(text);
      done();
    }
  });

  // A form's buttons are disabled once it is sent, so a double click does
  // not retry twice.
  document.addEventListener("submit", function (e) {
    if (e.target.method.toLowerCase() !== "post") return;
    setTimeout(function () {
      e.target.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    }, 0);
  });

  // partial fetches the current page's block NAME alone.
  function partial(name) {
    var u = new URL(location.href);
    u.searchParams.set("partial", name);
    u.hash = "";
    return fetch(u.toString(), { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.text();
    });
  }

  // Live tail: a table with data-live="kind ..." refetches its rows when
  // the stream announces one of those kinds (and every data-live-poll
  // seconds, for rows no notification announces). New rows are marked.
  var table = document.querySelector("table[data-live]");
  if (table && window.EventSource) {
    var tbody = table.tBodies[0];
    var status = document.querySelector("[data-live-status]");
    var busy = false, again = false;
    var update = function () {
      if (busy) { again = true; return; }
      busy = true;
      var seen = {};
      tbody.querySelectorAll("tr[data-id]").forEach(function (tr) { seen[tr.getAttribute("data-id")] = true; });
      partial("rows").then(function (html) {
        tbody.innerHTML = html;
        tbody.querySelectorAll("tr[data-id]").forEach(function (tr) {
          if (!seen[tr.getAttribute("data-id")]) tr.classList.add("new");
        });
      }).catch(function () { /* the next hint retries */ }).then(function () {
        // At most one refresh a second, however many hints arrive.
        setTimeout(function () {
          busy = false;
          if (again) { again = false; update(); }
        }, 1000);
      });
    };
    var es = new EventSource("/ui/stream");
    table.getAttribute("data-live").split(" ").forEach(function (kind) {
      if (kind) es.addEventListener(kind, update);
    });
    es.addEventListener("open", function () {
      if (status) { status.textContent = "live"; status.classList.add("on"); }
    });
    es.addEventListener("error", function () {
      if (status) { status.textContent = "reconnecting…"; status.classList.remove("on"); }
    });
    var poll = parseInt(table.getAttribute("data-live-poll") || "0", 10);
    if (poll > 0) setInterval(update, poll * 1000);
  }

  // Event page: while a delivery is pending, refresh the deliveries every
  // 1.5 s so that new attempts appear; stop once none is pending.
  var refreshDeliveries = function () {
    var section = document.getElementById("deliveries");
    if (!section || !section.hasAttribute("data-pending")) return;
    setTimeout(function () {
      partial("deliveries").then(function (html) {
        var cur = document.getElementById("deliveries");
        if (cur) cur.outerHTML = html;
      }).catch(function () { /* try again below */ }).then(refreshDeliveries);
    }, 1500);
  };
  refreshDeliveries();
})();
