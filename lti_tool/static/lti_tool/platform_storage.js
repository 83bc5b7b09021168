/* LTI platform storage (postMessage): one request to the platform, answered or not.
   The message goes to the frame the platform names (lti_storage_target) with its OIDC origin as the target, as the
   spec requires. Canvas documents a fallback: when that frame is missing (launches from the rich content editor)
   or does not answer in time, send the message to window.parent with the wildcard origin "*"; the answer then comes
   from the parent window, whatever its origin. */
(function () {
  "use strict";

  function namedFrame(target) {
    if (!target || !window.parent || window.parent === window) { return null; }
    if (target === "_parent") { return window.parent; }
    try { return window.parent.frames[target] || null; } catch (e) { return null; }
  }

  // Where to ask, in order: the named frame with the OIDC origin, then the parent window with "*".
  function routes(target, authOrigin) {
    if (!target || !window.parent || window.parent === window) { return []; }
    var list = [];
    var frame = namedFrame(target);
    if (frame && authOrigin) { list.push({ win: frame, origin: authOrigin }); }
    list.push({ win: window.parent, origin: "*" });
    return list;
  }

  function ask(route, message, responseSubject, timeoutMs) {
    return new Promise(function (resolve) {
      var id = "lti-" + Math.random().toString(36).slice(2) + Date.now().toString(36);
      var timer = setTimeout(function () { done(null); }, timeoutMs);
      function onMessage(event) {
        var data = event.data || {};
        if (event.source !== route.win || data.subject !== responseSubject || data.message_id !== id) { return; }
        if (route.origin !== "*" && event.origin !== route.origin) { return; }
        done(data);
      }
      function done(answer) {
        clearTimeout(timer);
        window.removeEventListener("message", onMessage);
        resolve(answer);
      }
      window.addEventListener("message", onMessage);
      var sent = Object.assign({}, message, { message_id: id });
      try { route.win.postMessage(sent, route.origin); } catch (e) { done(null); }
    });
  }

  /* Send `message` (lti.put_data or lti.get_data) and resolve with the platform's answer, or null when no route
     answered. */
  function send(target, authOrigin, message, timeoutMs) {
    var list = routes(target, authOrigin);
    var responseSubject = message.subject + ".response";
    function next(index) {
      if (index >= list.length) { return Promise.resolve(null); }
      return ask(list[index], message, responseSubject, timeoutMs).then(function (answer) {
        return answer || next(index + 1);
      });
    }
    return next(0);
  }

  window.ltiPlatformStorage = { available: function (target) { return routes(target, "").length > 0; }, send: send };
}());
