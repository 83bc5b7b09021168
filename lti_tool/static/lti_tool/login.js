/* OIDC login page inside an LMS iframe: check that cookies work (else offer a new window), store state and nonce
   in the platform's postMessage storage when it offers one (lti_storage_target), then go to the platform. */
(function () {
  "use strict";
  var el = document.getElementById("lti-login");
  if (!el) { return; }
  var d = el.dataset;
  var secureAttrs = d.secure === "1" ? "; SameSite=None; Secure; Partitioned" : "";

  function cookiesWork() {
    document.cookie = "lti_cookie_check=1; path=/; max-age=60" + secureAttrs;
    var ok = document.cookie.indexOf("lti_cookie_check=1") !== -1;
    document.cookie = "lti_cookie_check=; path=/; max-age=0" + secureAttrs;
    return ok;
  }

  function storageFrame() {
    var target = d.storageTarget;
    if (!target || !window.parent || window.parent === window) { return null; }
    if (target === "_parent") { return window.parent; }
    try { return window.parent.frames[target] || null; } catch (e) { return null; }
  }

  function putData(frame, key, value) {
    return new Promise(function (resolve) {
      var id = "lti-" + Math.random().toString(36).slice(2) + Date.now().toString(36);
      var timer = setTimeout(function () { done(false); }, 2000);
      function onMessage(event) {
        var data = event.data || {};
        if (event.origin !== d.authOrigin || data.subject !== "lti.put_data.response" || data.message_id !== id) {
          return;
        }
        done(!data.error);
      }
      function done(ok) {
        clearTimeout(timer);
        window.removeEventListener("message", onMessage);
        resolve(ok);
      }
      window.addEventListener("message", onMessage);
      frame.postMessage({ subject: "lti.put_data", message_id: id, key: key, value: value }, d.authOrigin);
    });
  }

  function go() { window.location.href = d.authUrl; }

  function blocked() {
    document.getElementById("lti-login-loading").hidden = true;
    document.getElementById("lti-login-blocked").hidden = false;
    var link = document.getElementById("lti-new-window");
    link.addEventListener("click", function () {
      setTimeout(function () { link.hidden = true; }, 0);
    });
  }

  var cookiesOk = cookiesWork();
  var frame = storageFrame();
  if (!frame) {
    if (cookiesOk) { go(); } else { blocked(); }
    return;
  }
  Promise.all([
    putData(frame, "state_" + d.state, d.state),
    putData(frame, "nonce_" + d.nonce, d.nonce)
  ]).then(function () {
    // Without cookies the tool cannot keep a session in the frame even if the platform kept our state.
    if (cookiesOk) { go(); } else { blocked(); }
  });
}());
