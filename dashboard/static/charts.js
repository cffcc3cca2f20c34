// edgefleet dashboard: small hand-written SVG time-series charts (no library, no CDN).
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const PAD = { left: 52, right: 10, top: 10, bottom: 22 };

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function niceStep(span, count) {
    const raw = span / Math.max(1, count);
    const mag = Math.pow(10, Math.floor(Math.log10(raw || 1)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * mag >= raw) return m * mag;
    return 10 * mag;
  }
  function timeLabel(ms, spanMs) {
    const d = new Date(ms);
    const hm = String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
    return spanMs > 36 * 3600 * 1000 ? (d.getMonth() + 1) + "/" + d.getDate() + " " + hm : hm;
  }

  // series: [{name, color, points: [[ms, value|null], ...], step}]; opts: {format, from, to, min, lines: [{value, color, label}]}
  function draw(svg, series, opts) {
    const width = Math.max(200, svg.clientWidth || 420), height = Math.max(120, svg.clientHeight || 170);
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.replaceChildren();
    const format = opts.format || ((v) => String(v));
    const values = [];
    for (const s of series) for (const [, v] of s.points) if (v !== null && v !== undefined) values.push(v);
    for (const l of opts.lines || []) values.push(l.value);
    const x0 = opts.from, x1 = Math.max(opts.to, opts.from + 1);
    if (!series.some((s) => s.points.length)) {
      svg.appendChild(el("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "empty" }, "no data in this range"));
      return;
    }
    let y0 = opts.min !== undefined ? Math.min(opts.min, ...values) : Math.min(...values);
    let y1 = Math.max(...values);
    if (y1 - y0 < 1e-9) { y1 = y0 + 1; }
    // Binary units (bytes) step in powers of 1024 so that labels read 1 MiB, 2 MiB…; counts step by whole numbers.
    const unit = opts.binary ? Math.pow(1024, Math.max(0, Math.floor(Math.log(Math.max(1, y1)) / Math.log(1024)))) : 1;
    let step = niceStep((y1 - y0) / unit, 4) * unit;
    if (opts.integer) step = Math.max(1, Math.round(step));
    y0 = Math.floor(y0 / step) * step;
    y1 = Math.ceil(y1 / step) * step;
    const W = width - PAD.left - PAD.right, H = height - PAD.top - PAD.bottom;
    const sx = (t) => PAD.left + ((t - x0) / (x1 - x0)) * W;
    const sy = (v) => PAD.top + H - ((v - y0) / (y1 - y0)) * H;

    for (let v = y0; v <= y1 + step / 2; v += step) {
      svg.appendChild(el("line", { x1: PAD.left, x2: PAD.left + W, y1: sy(v), y2: sy(v), class: "grid" }));
      svg.appendChild(el("text", { x: PAD.left - 4, y: sy(v) + 3, "text-anchor": "end" }, format(v)));
    }
    const ticks = 5;
    for (let i = 0; i <= ticks; i++) {
      const t = x0 + ((x1 - x0) * i) / ticks;
      svg.appendChild(el("text", { x: sx(t), y: height - 6, "text-anchor": i === 0 ? "start" : i === ticks ? "end" : "middle" },
        timeLabel(t, x1 - x0)));
    }
    svg.appendChild(el("line", { x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: PAD.top + H, class: "axis" }));
    svg.appendChild(el("line", { x1: PAD.left, x2: PAD.left + W, y1: PAD.top + H, y2: PAD.top + H, class: "axis" }));
    for (const l of opts.lines || []) {
      svg.appendChild(el("line", { x1: PAD.left, x2: PAD.left + W, y1: sy(l.value), y2: sy(l.value), stroke: l.color, "stroke-dasharray": "4 3" }));
      svg.appendChild(el("text", { x: PAD.left + W - 2, y: sy(l.value) - 3, "text-anchor": "end", fill: l.color }, l.label));
    }
    let legendX = PAD.left + 6;
    for (const s of series) {
      let d = "", prev = null;
      for (const [t, v] of s.points) {
        if (v === null || v === undefined) { prev = null; continue; }
        const X = sx(t).toFixed(1), Y = sy(v).toFixed(1);
        if (prev === null) d += `M${X},${Y}`;
        else d += s.step ? `H${X}V${Y}` : `L${X},${Y}`;
        prev = v;
      }
      const path = el("path", { d, class: "series", stroke: s.color });
      path.dataset.points = String(s.points.length);
      svg.appendChild(path);
      if (series.length > 1) {
        svg.appendChild(el("rect", { x: legendX, y: PAD.top + 2, width: 10, height: 3, fill: s.color }));
        svg.appendChild(el("text", { x: legendX + 13, y: PAD.top + 7 }, s.name));
        legendX += 18 + 6.2 * s.name.length;
      }
    }
  }
  // a size in binary units: "512 B", "1.5 MiB"
  function bytes(v) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i === 0 || Number.isInteger(v) ? v.toFixed(0) : v.toFixed(1)) + " " + units[i];
  }
  window.edgefleetChart = { draw, bytes };
})();
