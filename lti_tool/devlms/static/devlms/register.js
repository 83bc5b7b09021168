// Dynamic Registration: the tool's page posts {subject: "org.imsglobal.lti.close"} to us when it is done.
(function () {
  var frame = document.getElementById("registration-frame");
  var status = document.getElementById("registration-status");
  if (!frame) {
    return;
  }
  window.addEventListener("message", function (event) {
    var data = event.data;
    if (!data || data.subject !== "org.imsglobal.lti.close") {
      return;
    }
    if (frame.contentWindow && event.source !== frame.contentWindow) {
      return;
    }
    frame.hidden = true;
    if (status) {
      status.textContent = "Registration finished. Install or activate the tool from the course list.";
    }
  });
})();
