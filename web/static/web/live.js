// Refreshes the live parts of a page without a full reload.
//
// An element with `data-live-url` is replaced, every few seconds, by the HTML that URL
// answers (a server-rendered partial of the same template). Plain fetch, no framework.
// The swap waits while the keyboard focus is inside the element, so tabbing to a
// button or link is never undone by a refresh, and pauses while the tab is hidden.
// A line above the element says when its data was last read; when the server cannot be
// reached (or answers with an error) it says that the page is stale, until it answers.
(function () {
  "use strict";

  var DEFAULT_INTERVAL_MS = 3000;

  function focusInside(region) {
    var active = document.activeElement;
    return active !== null && active !== region && region.contains(active);
  }

  function clock(date) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function statusLine(region) {
    var line = document.createElement("p");
    line.className = "live-status";
    region.parentNode.insertBefore(line, region);
    var updated = new Date();
    return {
      fresh: function () {
        updated = new Date();
        line.classList.remove("offline");
        line.removeAttribute("role"); // the time ticks every few seconds: not announced
        line.textContent = "Updates live · last updated " + clock(updated);
      },
      offline: function (why) {
        if (!line.classList.contains("offline")) {
          line.setAttribute("role", "alert"); // announced once, when the server goes
        }
        line.classList.add("offline");
        line.textContent = why + " This page shows the state as of " + clock(updated) +
          " and updates again once the server answers.";
      },
    };
  }

  // One status line per page, above its first live region; the other regions stay quiet.
  var QUIET = { fresh: function () {}, offline: function () {} };

  function watch(region, status) {
    var url = region.getAttribute("data-live-url");
    var interval = parseInt(region.getAttribute("data-live-interval"), 10) || DEFAULT_INTERVAL_MS;
    var last = null;
    var busy = false;

    function tick() {
      if (busy || document.hidden || focusInside(region)) {
        return;
      }
      busy = true;
      fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "text/html" } })
        .then(function (response) {
          if (response.redirected || response.status === 403 || response.status === 404) {
            // Signed out, or no longer allowed to see this: show the real state.
            window.location.reload();
            return null;
          }
          if (!response.ok) {
            status.offline("The server answered with an error (" + response.status + ").");
            return null;
          }
          status.fresh();
          return response.text();
        })
        .then(function (html) {
          if (html !== null && html !== last && !focusInside(region)) {
            region.innerHTML = html;
            last = html;
          }
        })
        .catch(function () {
          // A dropped connection: say so; the next tick tries again.
          status.offline("Offline: the server cannot be reached.");
        })
        .then(function () {
          busy = false;
        });
    }

    window.setInterval(tick, interval);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) {
        tick();
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var regions = document.querySelectorAll("[data-live-url]");
    for (var i = 0; i < regions.length; i += 1) {
      var status = i === 0 ? statusLine(regions[i]) : QUIET;
      status.fresh();
      watch(regions[i], status);
    }
  });
})();
