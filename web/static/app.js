// dcvaas dashboard: live status by polling small HTML fragments, and copy
// buttons. No library; every page works without this script.
"use strict";
(function () {
  var interval = 2000;
  function poll(el) {
    var url = el.getAttribute("data-poll");
    var busy = false;
    setInterval(function () {
      if (busy || document.hidden) return;
      busy = true;
      fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (r) {
          if (r.redirected || !r.ok) return null;
          return r.text();
        })
        .then(function (html) {
          // Replace only when something changed, so focus and selection
          // survive the quiet polls.
          if (html !== null && html !== el.innerHTML) {
            var focused = document.activeElement && el.contains(document.activeElement);
            el.innerHTML = html;
            wireCopy(el);
            if (focused) el.focus();
          }
        })
        .catch(function () {})
        .then(function () { busy = false; });
    }, interval);
  }
  function wireCopy(root) {
    if (!navigator.clipboard) return;
    root.querySelectorAll("button[data-copy]").forEach(function (b) {
      b.hidden = false;
      b.addEventListener("click", function () {
        navigator.clipboard.writeText(b.getAttribute("data-copy")).then(function () {
          b.textContent = "Copied";
          setTimeout(function () { b.textContent = "Copy"; }, 1500);
        });
      });
    });
  }
  document.querySelectorAll("[data-poll]").forEach(poll);
  wireCopy(document);
})();
