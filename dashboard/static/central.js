// edgefleet dashboard: the central node page – charts of the controller's central monitor, reloaded every 15 s.
"use strict";
(function () {
  const box = document.getElementById("central-charts");
  const RANGES = { "15m": 900e3, "1h": 3600e3, "6h": 21600e3, "24h": 86400e3, "7d": 604800e3 };
  const range = box.dataset.range, controller = box.dataset.controller;
  let points = [];

  const bytes = (v) => window.edgefleetChart.bytes(v);
  function render() {
    const to = Date.now();
    const from = points.length ? Math.min(Math.max(to - RANGES[range], points[0].t), to - 60e3) : to - RANGES[range];
    const pick = (f) => points.map((p) => [p.t, f(p)]);
    const C = window.edgefleetChart;
    const draw = (id, series, opts) => C.draw(document.getElementById(id), series, { from, to, min: 0, ...opts });
    draw("chart-cpu", [{ name: "CPU", color: "#2457c5", points: pick((p) => p.cpu_percent) },
                       { name: "memory", color: "#6941c6", points: pick((p) => p.mem_used_percent) }],
         { format: (v) => v.toFixed(0) + " %" });
    draw("chart-disk-free", [{ name: "free", color: "#1a7f37", points: pick((p) => p.disk_free_bytes) }],
         { binary: true, format: bytes });
    draw("chart-disk-io", [{ name: "read", color: "#2457c5", points: pick((p) => p.disk_read_bps) },
                           { name: "write", color: "#b76e00", points: pick((p) => p.disk_write_bps) }],
         { binary: true, format: (v) => bytes(v) + "/s" });
    draw("chart-network", [{ name: "sent", color: "#2457c5", points: pick((p) => p.net_sent_bps) },
                           { name: "received", color: "#1a7f37", points: pick((p) => p.net_recv_bps) }],
         { binary: true, format: (v) => bytes(v) + "/s" });
    draw("chart-broker-clients", [{ name: "clients", color: "#6941c6", points: pick((p) => p.broker_clients), step: true }],
         { integer: true, format: (v) => v.toFixed(0) });
    draw("chart-broker-msgs", [{ name: "in", color: "#2457c5", points: pick((p) => p.broker_msgs_received_per_s) },
                               { name: "out", color: "#1a7f37", points: pick((p) => p.broker_msgs_sent_per_s) },
                               { name: "dropped", color: "#c4271b", points: pick((p) => p.broker_msgs_dropped_per_s) }],
         { format: (v) => v.toFixed(1) });
    draw("chart-s3-latency", [{ name: "put + get + delete", color: "#b76e00",
                                points: pick((p) => p.s3_probe_latency_s === null ? null : p.s3_probe_latency_s * 1000) }],
         { format: (v) => v.toFixed(0) + " ms" });
    draw("chart-s3-errors", [{ name: "failed probes", color: "#c4271b", points: pick((p) => p.s3_probes ? p.s3_probe_errors : null), step: true }],
         { integer: true, format: (v) => v.toFixed(0) });
  }
  async function load() {
    const query = new URLSearchParams({ range });
    if (controller) query.set("controller", controller);
    const res = await fetch(`/api/central?${query}`, { credentials: "same-origin" });
    if (!res.ok) return;
    points = (await res.json()).points.map((p) => ({ ...p, t: Date.parse(p.at) }));
    render();
  }
  window.addEventListener("resize", render);
  load();
  setInterval(load, 15000);
})();
