// edgefleet dashboard: the recordings filter. Empty fields are left out of the query string (the server
// would read an empty time or duration as a wrong one), and the state filter applies at once.
"use strict";
(function () {
  const form = document.getElementById("recordings-view");
  form.addEventListener("submit", () => {
    for (const field of Array.from(form.elements)) {
      if (field.name && field.value === "") field.disabled = true;
    }
  });
  document.getElementById("rf-status").addEventListener("change", () => form.requestSubmit());
})();
