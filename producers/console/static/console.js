// Live parts without reloading: an element with data-poll is replaced by the fragment at that URL
// every second; the server leaves data-poll out once the run has ended, which stops the polling.
// Pages work without this script: they are read as plain HTML.
(function () {
  "use strict";
  function poll(el) {
    var url = el.getAttribute("data-poll");
    if (!url) { return; }
    window.setTimeout(function () {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) {
          if (!response.ok) { throw new Error(String(response.status)); }
          return response.text();
        })
        .then(function (html) {
          var holder = document.createElement("div");
          holder.innerHTML = html;
          var fresh = holder.querySelector("#" + el.id);
          if (!fresh) { return; }
          el.replaceWith(fresh);
          poll(fresh);
        })
        .catch(function () { window.setTimeout(function () { poll(el); }, 4000); });
    }, 1000);
  }
  // A button with data-confirm asks first (Approve, Reject): Cancel leaves the form unsent.
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    var question = button && button.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-poll]").forEach(poll);
  });
})();
