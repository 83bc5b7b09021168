/* Countdown from the server's remaining time (data-remaining, in seconds, computed by the server at render).
 * The server is the judge: this only displays the time, re-syncs with the server when the tab becomes visible
 * again, and at zero submits a chosen answer (accepted within the server's grace period) or locks the form.
 * Announces time to screen readers sparingly: at one minute, ten seconds and zero. */
(function () {
  "use strict";

  function format(seconds) {
    var h = Math.floor(seconds / 3600);
    var m = Math.floor((seconds % 3600) / 60);
    var s = seconds % 60;
    var mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(s).padStart(2, "0");
  }

  function announce(text) {
    var region = document.getElementById("timer-announce");
    if (region) { region.textContent = text; }
  }

  function lock(form) {
    form.querySelectorAll("input:not([type=hidden]), textarea, button, select").forEach(function (el) {
      if (el.tagName === "TEXTAREA") { el.readOnly = true; } else { el.disabled = true; }
    });
    form.classList.add("locked");
    form.dispatchEvent(new CustomEvent("player:locked"));  // the code editor (editor.js) turns read-only
  }

  function start(el) {
    var initial = parseInt(el.getAttribute("data-remaining"), 10);
    if (isNaN(initial)) { return; }
    var end = Date.now() + initial * 1000;
    var valueEl = el.querySelector(".timer-value") || el;
    var lockSelector = el.getAttribute("data-lock");
    var forms = lockSelector ? Array.prototype.slice.call(document.querySelectorAll(lockSelector)) : [];
    var form = forms[0] || null;  // the answer form (a chosen answer is sent at zero); the others only lock
    var clockUrl = el.getAttribute("data-clock-url");
    var announced = {};
    var done = false;

    // Say it where everyone sees it, not only to screen readers: the status reads "Time is up" at once.
    function showTimeUp() {
      var visible = document.getElementById("time-up");
      if (visible) { visible.hidden = false; }
      var status = el.parentNode && el.parentNode.querySelector(".status");
      if (status) {
        status.textContent = "Time is up";
        status.className = "status status-time-ran-out";
      }
    }

    function expire() {
      done = true;
      announce("Time is up.");
      el.classList.add("timer-done");
      showTimeUp();
      if (form) {
        var chosen = form.querySelector("input[type=radio]:checked");
        var textarea = form.querySelector("textarea");
        var edited = textarea && !textarea.readOnly && textarea.value !== textarea.defaultValue;
        if ((chosen || edited) && !form.getAttribute("data-submitted")) {
          form.setAttribute("data-submitted", "1");
          forms.slice(1).forEach(lock);
          form.submit();
          return;
        }
      }
      forms.forEach(lock);
      // Show the server's verdict once its grace period is over.
      window.setTimeout(function () { window.location.reload(); }, 6500);
    }

    function tick() {
      if (done) { return; }
      var left = Math.max(0, Math.round((end - Date.now()) / 1000));
      valueEl.textContent = format(left);
      el.classList.toggle("timer-low", left <= 30);
      [60, 10].forEach(function (mark) {
        if (left <= mark && initial > mark && !announced[mark]) {
          announced[mark] = true;
          announce(mark === 60 ? "One minute left." : "Ten seconds left.");
        }
      });
      if (left === 0) { expire(); } else { window.setTimeout(tick, 250); }
    }

    if (clockUrl) {
      document.addEventListener("visibilitychange", function () {
        if (document.hidden || done) { return; }
        fetch(clockUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (data) {
            if (data && typeof data.remaining_s === "number") { end = Date.now() + data.remaining_s * 1000; }
            if (data && data.can_answer === false && !done) { window.location.reload(); }
          })
          .catch(function () { /* offline: keep the local countdown */ });
      });
    }
    tick();
  }

  document.querySelectorAll("[data-countdown]").forEach(start);
})();
