// A button with `data-copy="ID"` copies the value of the field with that id, and says so
// in the nearest `.copy-status` (a live region). Without the Clipboard API (a page not
// served over HTTPS or from localhost), it selects the text for the person to copy.
(function () {
  "use strict";

  function say(button, text) {
    var status = button.closest("section").querySelector(".copy-status");
    if (status !== null) {
      status.textContent = text;
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (button === null) {
      return;
    }
    var field = document.getElementById(button.getAttribute("data-copy"));
    field.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(
        function () { say(button, "Copied to the clipboard."); },
        function () { say(button, "Selected: press Ctrl+C (or ⌘C) to copy."); }
      );
    } else {
      say(button, "Selected: press Ctrl+C (or ⌘C) to copy.");
    }
  });
})();
