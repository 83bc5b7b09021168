// As Canvas does: the tool in the course page's iframe may ask for a height with {subject: "lti.frameResize"}.
(function () {
  "use strict";
  var frame = document.querySelector("iframe.tool-frame");
  if (!frame) {
    return;
  }
  window.addEventListener("message", function (event) {
    var data = event.data;
    if (event.source !== frame.contentWindow || !data || data.subject !== "lti.frameResize") {
      return;
    }
    var height = Number(data.height);
    if (isFinite(height) && height > 0) {
      frame.style.height = Math.min(Math.max(Math.round(height), 200), 20000) + "px";
    }
  });
})();
