// edgefleet dashboard: the live stream (SSE) shared by every page, and relative times.
"use strict";
(function () {
  const live = document.getElementById("live");
  const handlers = {};
  window.edgefleet = {
    on(event, fn) { (handlers[event] = handlers[event] || []).push(fn); },
    csrf() { const m = document.querySelector('meta[name="csrf-token"]'); return m ? m.content : ""; },
    ago(iso) {
      if (!iso) return "–";
      let s = Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 1000));
      if (s < 60) return s + "s";
      if (s < 3600) return Math.floor(s / 60) + "m " + String(s % 60).padStart(2, "0") + "s";
      if (s < 86400) return Math.floor(s / 3600) + "h " + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + "m";
      return Math.floor(s / 86400) + "d " + String(Math.floor(s % 86400 / 3600)).padStart(2, "0") + "h";
    },
  };
  function tickAges() {
    for (const t of document.querySelectorAll("time.ago")) t.textContent = window.edgefleet.ago(t.getAttribute("datetime"));
  }
  setInterval(tickAges, 1000);

  function connect(params) {
    const source = new EventSource("/api/stream" + (params ? "?" + params : ""));
    source.onopen = () => { if (live) { live.textContent = "live"; live.className = "live on"; } };
    source.onerror = () => { if (live) { live.textContent = "reconnecting…"; live.className = "live off"; } };
    for (const name of ["fleet", "agent"]) {
      source.addEventListener(name, (ev) => {
        const data = JSON.parse(ev.data);
        for (const fn of handlers[name] || []) fn(data);
      });
    }
    return source;
  }
  // Every page shows the fleet's alerts the moment they appear.
  window.edgefleet.on("fleet", (data) => {
    const box = document.getElementById("alerts");
    if (box && box.innerHTML !== data.alerts_html) box.innerHTML = data.alerts_html;
    document.title = document.title.replace(/^\(\d+\) /, "");
    if (data.alerts.length) document.title = "(" + data.alerts.length + ") " + document.title;
  });
  window.addEventListener("DOMContentLoaded", () => {
    const params = document.body.dataset.stream || "";
    window.edgefleet.source = connect(params);
  });
})();
