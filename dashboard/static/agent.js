// edgefleet dashboard: the agent page – charts over a chosen range, kept current by the live stream.
"use strict";
(function () {
  const box = document.getElementById("charts");
  const agent = box.dataset.agent;
  const soft = parseFloat(box.dataset.soft), hard = parseFloat(box.dataset.hard);
  const RANGES = { "15m": 900e3, "1h": 3600e3, "6h": 21600e3, "24h": 86400e3, "7d": 604800e3 };
  let range = box.dataset.range;
  let points = [];

  const bytes = (v) => window.edgefleetChart.bytes(v);
  const MIN_SPAN = 60e3;
  function render() {
    const to = Date.now();
    points = points.filter((p) => p.t >= to - RANGES[range]);
    // A fleet younger than the range: start at its first sample rather than squeeze it into the right edge.
    const from = points.length ? Math.min(Math.max(to - RANGES[range], points[0].t), to - MIN_SPAN) : to - RANGES[range];
    const pick = (f) => points.map((p) => [p.t, f(p)]);
    const C = window.edgefleetChart;
    C.draw(document.getElementById("chart-temperature"),
      [{ name: "°C", color: "#c4271b", points: pick((p) => p.temperature_c) }],
      { from, to, format: (v) => v.toFixed(0), lines: [
        { value: soft, color: "#b76e00", label: "soft " + soft },
        { value: hard, color: "#c4271b", label: "hard " + hard }] });
    C.draw(document.getElementById("chart-throughput"),
      [{ name: "throughput", color: "#2457c5", points: pick((p) => p.throughput_bps) }],
      { from, to, min: 0, binary: true, format: (v) => bytes(v) + "/s" });
    C.draw(document.getElementById("chart-backlog"),
      [{ name: "files", color: "#6941c6", points: pick((p) => p.backlog_files) }],
      { from, to, min: 0, integer: true, format: (v) => v.toFixed(0) });
    C.draw(document.getElementById("chart-concurrency"),
      [{ name: "active", color: "#1a7f37", points: pick((p) => p.active_uploads), step: true },
       { name: "assigned", color: "#98a2b3", points: pick((p) => p.concurrency), step: true }],
      { from, to, min: 0, integer: true, format: (v) => v.toFixed(0) });
    C.draw(document.getElementById("chart-latency"),
      [{ name: "MQTT round trip", color: "#2457c5", points: pick((p) => ms(p.mqtt_rtt_s)) },
       { name: "S3 first byte", color: "#b76e00", points: pick((p) => ms(p.s3_ttfb_s)) }],
      { from, to, min: 0, format: (v) => v.toFixed(0) + " ms" });
    C.draw(document.getElementById("chart-process-cpu"),
      [{ name: "CPU %", color: "#1a7f37", points: pick((p) => p.process_cpu_percent) }],
      { from, to, min: 0, format: (v) => v.toFixed(0) + " %" });
    C.draw(document.getElementById("chart-process-memory"),
      [{ name: "resident", color: "#6941c6", points: pick((p) => p.process_rss_bytes) }],
      { from, to, min: 0, binary: true, format: (v) => bytes(v) });
  }
  function ms(seconds) { return seconds === null || seconds === undefined ? null : seconds * 1000; }
  const OWN = ["mqtt_rtt_s", "s3_ttfb_s", "process_cpu_percent", "process_rss_bytes"];
  function toPoint(p) {
    const point = { t: Date.parse(p.at), temperature_c: p.temperature_c, throughput_bps: p.throughput_bps,
                    backlog_files: p.backlog_files, active_uploads: p.active_uploads, concurrency: p.concurrency };
    for (const k of OWN) point[k] = p[k];
    return point;
  }
  async function load() {
    const res = await fetch(`/api/agents/${encodeURIComponent(agent)}/telemetry?range=${range}`, { credentials: "same-origin" });
    if (!res.ok) return;
    points = (await res.json()).map(toPoint);
    render();
  }
  document.getElementById("ranges").addEventListener("click", (ev) => {
    const a = ev.target.closest("a[data-range]");
    if (!a) return;
    ev.preventDefault();
    range = a.dataset.range;
    for (const x of document.querySelectorAll("#ranges a")) x.classList.toggle("active", x === a);
    const url = new URL(window.location.href);
    url.searchParams.set("range", range);
    history.replaceState(null, "", url);
    load();
  });
  window.edgefleet.on("agent", (data) => {
    const facts = document.getElementById("now-facts");
    if (facts) facts.innerHTML = data.facts_html;
    const history = document.getElementById("assignments");
    if (history && data.history_html) history.outerHTML = data.history_html;
    const r = data.agent;
    const t = Date.parse(r.last_seen);
    if (r.last_seen && (!points.length || t > points[points.length - 1].t)) {
      const point = { t, temperature_c: r.temperature_c, throughput_bps: r.throughput_bps, backlog_files: r.backlog_files,
                      active_uploads: r.active_uploads, concurrency: r.assignment ? r.assignment.concurrency : null };
      for (const k of OWN) point[k] = r[k];
      points.push(point);
      render();
    }
  });
  window.addEventListener("resize", render);
  load();
})();
