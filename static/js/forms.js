/* Every POST form of the tool: a form is sent once. A double click (or Enter pressed twice) would send it again
 * while the first request is still running; the server copes (it is idempotent), but the student sees a page for
 * the second request instead of the first. Buttons are disabled once the browser has taken the form's data, so a
 * button's own name/value still goes with it. Without JavaScript the forms work as plain HTML forms.
 *
 * A <textarea data-max-bytes="N"> is checked before sending: over N bytes (UTF-8) the form is not sent and the
 * message in its data-limit-message element says why. The server enforces the same limit anyway. */
(function () {
  "use strict";

  function utf8Bytes(text) {
    return window.TextEncoder ? new TextEncoder().encode(text).length : unescape(encodeURIComponent(text)).length;
  }

  function oversized(form) {
    var fields = form.querySelectorAll("textarea[data-max-bytes]");
    for (var i = 0; i < fields.length; i++) {
      var field = fields[i];
      var limit = parseInt(field.getAttribute("data-max-bytes"), 10);
      var size = utf8Bytes(field.value.replace(/\r?\n/g, "\n"));
      if (limit > 0 && size > limit) {
        return { field: field, limit: limit, size: size };
      }
    }
    return null;
  }

  function showLimit(found) {
    var box = document.getElementById(found.field.getAttribute("data-limit-message"));
    var text = "Your code is " + Math.ceil(found.size / 1024) + " KiB; at most " + Math.floor(found.limit / 1024) +
      " KiB can be submitted. Shorten it and submit again (nothing was sent).";
    if (box) {
      box.textContent = text;
      box.hidden = false;
    }
    found.field.setAttribute("aria-invalid", "true");
    // The code editor (editor.js) hides its textarea and offers its own focus.
    if (typeof found.field.focusEditor === "function") { found.field.focusEditor(); } else { found.field.focus(); }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || (form.getAttribute("method") || "").toLowerCase() !== "post") {
      return;
    }
    if (form.getAttribute("data-sending") === "1") {
      event.preventDefault();
      return;
    }
    var found = oversized(form);
    if (found) {
      event.preventDefault();
      showLimit(found);
      return;
    }
    form.setAttribute("data-sending", "1");
    window.setTimeout(function () {
      var buttons = form.querySelectorAll("button[type=submit], button:not([type]), input[type=submit]");
      for (var i = 0; i < buttons.length; i++) {
        buttons[i].disabled = true;
      }
    }, 0);
  });

  // Back/forward cache: a page restored after leaving it must be usable again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) { return; }
    var forms = document.querySelectorAll("form[data-sending]");
    for (var i = 0; i < forms.length; i++) {
      forms[i].removeAttribute("data-sending");
      var buttons = forms[i].querySelectorAll("button, input[type=submit]");
      for (var j = 0; j < buttons.length; j++) { buttons[j].disabled = false; }
    }
  });
})();
