/* Keeps the question's status bar (time left, attempts left, points) in view.
 *
 * In a window of its own the CSS does it (position: sticky; top: 0). Inside an LMS iframe that the LMS fits to the
 * page (frame-resize.js) the frame itself never scrolls, the LMS page does, so sticky alone would never stick. The
 * frame cannot read its parent's scroll position (another origin), but an IntersectionObserver tells it which part
 * of it is on screen: the bar's sticky offset follows the top of that part. */
(function () {
  "use strict";
  var bar = document.querySelector("[data-status-bar]");
  if (!bar || window.parent === window || !window.IntersectionObserver) { return; }
  var area = bar.parentNode;  // the bar sticks within its container (the question)
  var thresholds = [];
  for (var i = 0; i <= 200; i++) { thresholds.push(i / 200); }

  function place(entry) {
    // How far down the frame the visible part starts (0 when the frame's top is on screen).
    var hidden = entry.isIntersecting ? Math.max(0, entry.intersectionRect.top) : 0;
    bar.style.top = Math.round(hidden) + "px";
  }

  new IntersectionObserver(function (entries) { entries.forEach(place); }, { threshold: thresholds }).observe(area);
})();
