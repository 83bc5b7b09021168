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

  var storage = window.ltiPlatformStorage;

  function putData(key, value) {
    return storage.send(d.storageTarget, d.authOrigin, { subject: "lti.put_data", key: key, value: value }, 1500);
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
  if (!storage || !storage.available(d.storageTarget)) {
    if (cookiesOk) { go(); } else { blocked(); }
    return;
  }
  Promise.all([
    putData("state_" + d.state, d.state),
    putData("nonce_" + d.nonce, d.nonce)
  ]).then(function () {
    // Without cookies the tool cannot keep a session in the frame even if the platform kept our state.
    if (cookiesOk) { go(); } else { blocked(); }
  });
}());
