// LTI Client Side postMessage storage, as Canvas offers it to tools in its iframes: answers lti.capabilities,
// lti.put_data and lti.get_data from frames inside this page. Values are kept per sending origin, in memory only
// (the course page stays loaded while the tool's frame navigates through login and launch).
(function () {
  "use strict";
  var store = {};
  var MAX_KEY = 256;
  var MAX_VALUE = 4096;

  function reply(event, message) {
    if (event.source) {
      event.source.postMessage(message, event.origin);
    }
  }

  window.addEventListener("message", function (event) {
    var data = event.data;
    if (!data || typeof data !== "object" || typeof data.subject !== "string") {
      return;
    }
    if (data.subject === "lti.capabilities") {
      reply(event, {
        subject: "lti.capabilities.response",
        message_id: data.message_id,
        supported_messages: [
          { subject: "lti.capabilities" },
          { subject: "lti.put_data", frame: "_parent" },
          { subject: "lti.get_data", frame: "_parent" }
        ]
      });
      return;
    }
    if (data.subject !== "lti.put_data" && data.subject !== "lti.get_data") {
      return;
    }
    var responseSubject = data.subject + ".response";
    if (typeof data.key !== "string" || !data.key || data.key.length > MAX_KEY) {
      reply(event, { subject: responseSubject, message_id: data.message_id,
                     error: { code: "bad_request", message: "key must be a short string" } });
      return;
    }
    var slot = event.origin + " " + data.key;
    if (data.subject === "lti.put_data") {
      if (typeof data.value !== "string" || data.value.length > MAX_VALUE) {
        reply(event, { subject: responseSubject, message_id: data.message_id,
                       error: { code: "bad_request", message: "value must be a short string" } });
        return;
      }
      store[slot] = data.value;
      reply(event, { subject: responseSubject, message_id: data.message_id, key: data.key, value: data.value });
    } else {
      reply(event, { subject: responseSubject, message_id: data.message_id, key: data.key, value: store[slot] });
    }
  });
}());
