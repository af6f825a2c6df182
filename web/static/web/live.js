// Refreshes the live parts of a page without a full reload.
//
// An element with `data-live-url` is replaced, every few seconds, by the HTML that URL
// answers (a server-rendered partial of the same template). Plain fetch, no framework.
// The swap waits while the keyboard focus is inside the element, so tabbing to a
// button or link is never undone by a refresh, and pauses while the tab is hidden.
(function () {
  "use strict";

  var DEFAULT_INTERVAL_MS = 3000;

  function focusInside(region) {
    var active = document.activeElement;
    return active !== null && active !== region && region.contains(active);
  }

  function watch(region) {
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
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (html !== null && html !== last && !focusInside(region)) {
            region.innerHTML = html;
            last = html;
          }
        })
        .catch(function () {
          // A dropped connection: the next tick tries again.
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
      watch(regions[i]);
    }
  });
})();
