/* Post the deep-linking response to the platform as soon as the page loads (the button is the no-JS fallback). */
(function () {
  "use strict";
  var form = document.getElementById("lti-auto-submit");
  if (form) { form.submit(); }
}());
