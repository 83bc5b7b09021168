// Inside an LMS iframe, ask the LMS to fit the frame to this page, so that students (on phones especially) scroll
// one page instead of a page inside a page. Canvas honours "lti.frameResize"; LMSs that do not know it ignore it.
// The message carries only a height, so any parent may read it.
(function () {
  "use strict";
  if (window.parent === window) {
    return;
  }
  var sent = 0;
  function send() {
    var body = document.body;
    var style = window.getComputedStyle(body);
    // The body's own height (not the document's, which never shrinks below the frame's current height).
    var height = Math.ceil(body.getBoundingClientRect().height +
      parseFloat(style.marginTop || "0") + parseFloat(style.marginBottom || "0"));
    if (height > 0 && Math.abs(height - sent) > 1) {
      sent = height;
      window.parent.postMessage({ subject: "lti.frameResize", height: height }, "*");
    }
  }
  window.addEventListener("load", send);
  if (window.ResizeObserver) {
    new ResizeObserver(send).observe(document.body);
  }
})();
