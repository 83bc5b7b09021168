/* Dynamic Registration is done: tell the platform to close its registration frame or window. */
(function () {
  "use strict";
  function close() {
    (window.opener || window.parent).postMessage({ subject: "org.imsglobal.lti.close" }, "*");
  }
  var button = document.getElementById("lti-close");
  if (button) { button.addEventListener("click", close); }
  close();
}());
