// Submits the platform's id_token form at once (a static file: pages may forbid inline scripts by CSP).
(function () {
  var form = document.getElementById("devlms-autopost");
  if (form && form.getAttribute("data-autosubmit") === "true") {
    form.submit();
  }
})();
