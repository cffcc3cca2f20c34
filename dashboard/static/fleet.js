// edgefleet dashboard: the fleet table. The server filters, sorts and pages; the live stream sends the
// page's order and the rows that changed, and this puts them in place without a reload.
"use strict";
(function () {
  const tbody = document.getElementById("fleet").tBodies[0];
  const form = document.getElementById("fleet-view");
  document.getElementById("status-filter").addEventListener("change", () => form.submit());
  document.getElementById("version-filter").addEventListener("change", () => form.submit());

  const template = document.createElement("tbody");
  let first = true;  // the first event repeats what the page shows: no highlight
  window.edgefleet.on("fleet", (data) => {
    const totals = document.getElementById("totals");
    if (totals) totals.outerHTML = data.totals_html;
    const fresh = new Map();
    for (const [id, html] of Object.entries(data.rows)) {
      template.innerHTML = html;
      fresh.set(id, template.rows[0]);
    }
    const wanted = new Set(data.order);
    for (const row of Array.from(tbody.rows)) if (!wanted.has(row.dataset.agent)) row.remove();
    let position = 0;
    for (const id of data.order) {
      const old = document.getElementById("agent-" + id);
      let row = old;
      if (fresh.has(id)) {
        row = fresh.get(id);
        if (!first) row.classList.add("flash");
        if (old) old.replaceWith(row);
      }
      if (!row) continue;
      const here = tbody.rows[position] || null;
      if (row !== here) tbody.insertBefore(row, here);
      position += 1;
    }
    first = false;
    const count = document.getElementById("shown-count");
    if (count) count.textContent = data.matching + " of " + data.count + " agents";
    const none = document.getElementById("no-agents");
    if (none && tbody.rows.length) none.remove();
  });

  // The site override form posts to the chosen site.
  const siteSelect = document.getElementById("site-select");
  const siteForm = document.getElementById("override-form");
  if (siteSelect && siteForm) {
    const setAction = () => { siteForm.action = "/sites/" + encodeURIComponent(siteSelect.value) + "/override"; };
    siteSelect.addEventListener("change", setAction);
    setAction();
  }
})();
