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

  var frame = null;
  if (window.parent && window.parent !== window) {
    if (d.storageTarget === "_parent") { frame = window.parent; } else {
      try { frame = window.parent.frames[d.storageTarget] || null; } catch (e) { frame = null; }
    }
  }
  if (!frame) { fail(); return; }
  var id = "lti-" + Math.random().toString(36).slice(2) + Date.now().toString(36);
  var timer = setTimeout(fail, 3000);
  window.addEventListener("message", function (event) {
    var data = event.data || {};
    if (event.origin !== d.authOrigin || data.subject !== "lti.get_data.response" || data.message_id !== id) {
      return;
    }
    clearTimeout(timer);
    if (!data.error && data.value === d.state) { form.submit(); } else { fail(); }
  });
  frame.postMessage({ subject: "lti.get_data", message_id: id, key: "state_" + d.state }, d.authOrigin);
}());
