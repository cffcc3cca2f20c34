// edgefleet dashboard: the fleet table – live rows, sorting and filtering in the browser.
"use strict";
(function () {
  const table = document.getElementById("fleet");
  const tbody = table.tBodies[0];
  const filter = document.getElementById("filter");
  const statusFilter = document.getElementById("status-filter");
  const shown = document.getElementById("shown-count");
  let sortKey = table.dataset.sort || "agent_id";
  let descending = table.dataset.desc === "1";
  const TEXT_KEYS = new Set(["agent_id", "site", "model"]);

  function sortValue(row) {
    const v = row.dataset[sortKey];
    return TEXT_KEYS.has(sortKey) ? (v || "") : parseFloat(v || "0");
  }
  function compare(a, b) {
    const x = sortValue(a), y = sortValue(b);
    let c = x < y ? -1 : x > y ? 1 : 0;
    if (descending) c = -c;
    return c || (a.dataset.agent_id < b.dataset.agent_id ? -1 : 1);
  }
  function visible(row) {
    const s = statusFilter.value;
    if (s === "online" && row.dataset.status !== "1") return false;
    if (s === "offline" && row.dataset.status !== "0") return false;
    if (s === "hot" && row.dataset.hot !== "1") return false;
    if (s === "paused" && row.dataset.paused !== "1") return false;
    const needle = filter.value.trim().toLowerCase();
    return !needle || row.textContent.toLowerCase().includes(needle);
  }
  function apply(rememberInUrl) {
    const rows = Array.from(tbody.rows);
    rows.sort(compare);
    let count = 0;
    for (const row of rows) {
      const show = visible(row);
      row.hidden = !show;
      if (show) count += 1;
      tbody.appendChild(row);
    }
    shown.textContent = count + " shown";
    for (const th of table.tHead.querySelectorAll("th[data-sort]")) {
      th.classList.toggle("asc", th.dataset.sort === sortKey && !descending);
      th.classList.toggle("desc", th.dataset.sort === sortKey && descending);
    }
    if (!rememberInUrl) return;
    const url = new URL(window.location.href);
    url.searchParams.set("sort", sortKey);
    url.searchParams.set("desc", descending ? "true" : "false");
    url.searchParams.set("q", filter.value);
    url.searchParams.set("status", statusFilter.value);
    url.searchParams.delete("msg");
    history.replaceState(null, "", url);
  }
  table.tHead.addEventListener("click", (ev) => {
    const th = ev.target.closest("th[data-sort]");
    if (!th) return;
    if (th.dataset.sort === sortKey) descending = !descending;
    else { sortKey = th.dataset.sort; descending = !TEXT_KEYS.has(sortKey); }
    apply(true);
  });
  filter.addEventListener("input", () => apply(true));
  statusFilter.addEventListener("change", () => apply(true));

  const template = document.createElement("tbody");
  window.edgefleet.on("fleet", (data) => {
    const totals = document.getElementById("totals");
    if (totals) totals.outerHTML = data.totals_html;
    for (const [id, html] of Object.entries(data.rows)) {
      template.innerHTML = html;
      const fresh = template.rows[0];
      const old = document.getElementById("agent-" + id);
      if (old) {
        if (old.outerHTML === fresh.outerHTML) continue;
        old.replaceWith(fresh);
      } else {
        tbody.appendChild(fresh);
      }
      fresh.classList.add("flash");
    }
    for (const id of data.removed) {
      const old = document.getElementById("agent-" + id);
      if (old) old.remove();
    }
    const none = document.getElementById("no-agents");
    if (none && tbody.rows.length) none.remove();
    apply();
  });

  // The site override form posts to the chosen site.
  const siteSelect = document.getElementById("site-select");
  const siteForm = document.getElementById("override-form");
  if (siteSelect && siteForm) {
    const setAction = () => { siteForm.action = "/sites/" + encodeURIComponent(siteSelect.value) + "/override"; };
    siteSelect.addEventListener("change", setAction);
    setAction();
  }
  apply();
})();
