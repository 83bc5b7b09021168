/* The launch arrived without the state cookie but the login stored state in the platform's postMessage storage:
   read it back (lti.get_data), and post the launch again once it matches. */
(function () {
  "use strict";
  var form = document.getElementById("lti-storage-launch");
  if (!form) { return; }
  var d = form.dataset;

  function fail() {
    document.getElementById("lti-storage-status").hidden = true;
    document.getElementById("lti-storage-failed").hidden = false;
  }

  var storage = window.ltiPlatformStorage;
  if (!storage || !storage.available(d.storageTarget)) { fail(); return; }
  storage.send(d.storageTarget, d.authOrigin, { subject: "lti.get_data", key: "state_" + d.state }, 2000)
    .then(function (data) {
      if (data && !data.error && data.value === d.state) { form.submit(); } else { fail(); }
    });
}());
