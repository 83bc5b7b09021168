/* Live status of a code submission being graded: polls the grading app's status JSON (grading:status) and
 * reloads the page once the result is final, so the server renders the score, the checks and the chart. */
(function () {
  "use strict";

  function poll(el) {
    var url = el.getAttribute("data-status-url");
    if (!url) { return; }
    var delay = 1500;
    var last = "";

    function again(ms) { window.setTimeout(step, ms); }

    function step() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
        .then(function (data) {
          var status = String(data.status || "");
          var isFinal = data.is_final === true || data.final === true || status === "graded" || status === "failed";
          if (isFinal) {
            el.textContent = "Graded. Loading your result…";
            window.setTimeout(function () { window.location.reload(); }, 500);
            return;
          }
          var text = "Grading: " + (data.status_display || status || "waiting");
          if (typeof data.position === "number") { text += " (position " + data.position + " in the queue)"; }
          text += "…";
          if (text !== last) { el.textContent = text; last = text; }
          delay = Math.min(delay * 1.3, 5000);
          again(delay);
        })
        .catch(function () { delay = Math.min(delay * 2, 15000); again(delay); });
    }
    again(delay);
  }

  document.querySelectorAll("[data-status-url]").forEach(poll);
})();
