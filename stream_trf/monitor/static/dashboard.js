(function () {
  "use strict";
  const SVGNS = "http://www.w3.org/2000/svg";
  const pollMeta = document.querySelector('meta[name="stream-trf-poll-seconds"]');
  const POLL_MS = Math.max(250, 1000 * (parseFloat(pollMeta ? pollMeta.content : "") || 5));
  const DATA_URL = location.pathname.replace(/\/+$/, "") + "/windows.json";
  const COLORS = { blue: "#2563eb", orange: "#e8710a", purple: "#7c3aed", teal: "#0d9488", amber: "#b7791f", gray: "#6b7280", pink: "#db2777" };

  // ---- safe value access: data is only ever read, and only shown through textContent ----
  const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
  const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);
  const str = (v) => (v === null || v === undefined ? "" : typeof v === "string" ? v : String(v));
  function pick(o) {
    for (let i = 1; i < arguments.length; i++) {
      if (!isObj(o)) return undefined;
      o = o[arguments[i]];
    }
    return o;
  }
  const field = (r, a, b) => num(pick(r, a, b));
  const start = (r) => num(pick(r, "window", "start"));
  const end = (r) => num(pick(r, "window", "end"));
  const mid = (r) => (start(r) + end(r)) / 2;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function sv(tag, attrs, text) {
    const e = document.createElementNS(SVGNS, tag);
    if (attrs) for (const k of Object.keys(attrs)) if (attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // ---- formatting ----
  function fmt(v) {
    if (v === null) return "\u2014";
    const a = Math.abs(v);
    if (a === 0) return "0";
    if (a >= 10000) return Math.round(v).toLocaleString("en-US");
    if (a >= 100) return v.toFixed(0);
    if (a >= 10) return v.toFixed(1);
    if (a >= 1) return v.toFixed(2);
    if (a >= 0.001) return String(Number(v.toPrecision(3)));
    return v.toExponential(1);
  }
  const count = (v) => (v === null ? "\u2014" : Math.round(v).toLocaleString("en-US"));
  const pct = (v) => (v === null ? "\u2014" : (100 * v).toFixed(Math.abs(v) < 0.1 && v !== 0 ? 2 : 1) + "%");
  function secs(v) {
    if (v === null) return "\u2014";
    if (v < 1) return (1000 * v).toFixed(v < 0.01 ? 1 : 0) + " ms";
    return v.toFixed(v < 10 ? 2 : 1) + " s";
  }
  // axis labels without trailing zeros: 50.0% -> 50%, 0.500 -> 0.5
  const tick = (s) => s.replace(/(\.\d*?)0+(\D*)$/, "$1$2").replace(/\.(\D*)$/, "$1");
  const pval = (v) => (v === null ? "\u2014" : v < 0.001 ? "<0.001" : v.toFixed(3));
  const pad = (n) => String(n).padStart(2, "0");
  function clock(t) {
    if (t === null) return "\u2014";
    const d = new Date(1000 * t);
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }
  function shortClock(t) {
    const d = new Date(1000 * t);
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + (d.getSeconds() ? ":" + pad(d.getSeconds()) : "");
  }
  function ago(t) {
    const s = Math.max(0, Date.now() / 1000 - t);
    if (s < 90) return Math.round(s) + " s ago";
    if (s < 5400) return Math.round(s / 60) + " min ago";
    if (s < 172800) return (s / 3600).toFixed(1) + " h ago";
    return Math.round(s / 86400) + " days ago";
  }

  // ---- which tile / chart an alert's figure belongs to, from the words of its name ----
  function groupsOf(figure) {
    const t = new Set(str(figure).toLowerCase().split(/[^a-z0-9]+/).filter(Boolean));
    const has = (...ks) => ks.some((k) => t.has(k));
    const g = new Set();
    if (has("agreement", "agree", "disagreement")) g.add("agreement");
    if (has("confidence")) g.add("confidence");
    else if (has("js", "psi", "jensen", "label", "labels")) g.add("label_drift");
    if (has("mmd", "mmd2", "pvalue") || (has("p") && has("value"))) g.add("mmd");
    else if (has("cosine", "embedding")) g.add("embedding");
    if (has("latency", "p50", "p99")) g.add("latency");
    if (has("throughput") || (has("docs") && has("second"))) g.add("throughput");
    if (has("windowed", "unknown")) g.add("text_shares");
    else if (has("sentences")) g.add("text_sentences");
    else if (has("words") && has("mean", "text")) g.add("text_words");
    else if (has("documents", "dead", "duplicates", "duplicate", "volume", "words")) g.add("volume");
    return g;
  }
  const alertsIn = (list, keys) => list.filter((a) => { const g = groupsOf(a.figure); return keys.some((k) => g.has(k)); });

  // ---- grouping ----
  const modelName = (r) => str(pick(r, "model", "name"));
  const modelVersion = (r) => str(pick(r, "model", "version"));
  const modelKey = (r) => JSON.stringify([modelName(r), modelVersion(r)]);

  function latestSet(recs) {
    // the latest window of each worker, without workers that stopped reporting
    const byWorker = new Map();
    for (const r of recs) {
      const w = str(r.worker);
      const cur = byWorker.get(w);
      if (!cur || end(r) > end(cur)) byWorker.set(w, r);
    }
    const latest = [...byWorker.values()];
    const maxEnd = Math.max(...latest.map(end));
    const span = Math.max(...latest.map((r) => end(r) - start(r)), 1);
    return latest.filter((r) => end(r) >= maxEnd - 1.5 * span);
  }
  const sum = (xs) => xs.reduce((a, b) => a + b, 0);
  function agg(vals, how) {
    const v = vals.filter((x) => x !== null);
    if (!v.length) return null;
    if (how === "sum") return sum(v);
    if (how === "min") return Math.min(...v);
    if (how === "max") return Math.max(...v);
    return sum(v) / v.length;
  }
  function wilson(k, n) {
    const z = 1.96, p = k / n, z2 = z * z;
    const c = (p + z2 / (2 * n)) / (1 + z2 / n);
    const h = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
    return [Math.max(0, c - h), Math.min(1, c + h)];
  }

  // ---- tiles ----
  function tile(key, name, value, detail, alerts, hasData) {
    const t = el("div", "tile");
    t.dataset.figure = key;
    if (alerts.length) t.classList.add("alert");
    else if (!hasData) t.classList.add("nodata");
    const head = el("div", "name", name);
    if (alerts.length) head.appendChild(el("span", "badge", "ALERT"));
    t.appendChild(head);
    t.appendChild(el("div", "value", value));
    t.appendChild(el("div", "detail", detail));
    for (const a of alerts) {
      const v = num(a.value), th = num(a.threshold), w = num(a.windows);
      const side = v !== null && th !== null ? (v < th ? "below " : "above ") : "threshold ";
      const why = el("div", "why", str(a.figure) + " " + side + fmt(th) + (w !== null ? " for " + w + (w === 1 ? " window" : " windows") : ""));
      t.appendChild(why);
    }
    return t;
  }

  // The tiles show the latest windows that had documents: an idle window has no figures, and
  // blanking the tiles then would hide what the charts still show. The caption says how old.
  const hasDocs = (r) => (field(r, "volume", "documents") || 0) > 0;
  function headline(recs) {
    const busy = recs.filter(hasDocs);
    const shown = latestSet(busy.length ? busy : recs);
    const shownEnd = Math.max(...shown.map(end));
    const newest = Math.max(...recs.map(end));
    return { shown: shown, end: shownEnd, idle: busy.length > 0 && newest > shownEnd, any: busy.length > 0 };
  }

  function tilesAge(recs) {
    const h = headline(recs);
    const cap = el("div", "tiles-age" + (h.idle ? " idle" : ""));
    cap.dataset.windowEnd = String(h.end);
    if (!h.any) { cap.textContent = "No documents in these windows yet"; return cap; }
    const first = Math.min(...h.shown.map(start));
    cap.textContent = (h.idle ? "Last window with documents: " : "Latest window: ") + clock(first) + "\u2013" + clock(h.end) +
      ", ended " + ago(h.end) + (h.idle ? " \u00b7 no documents since" : "");
    return cap;
  }

  function tiles(recs, current) {
    const now = headline(recs).shown;
    const row = el("div", "tiles");
    // agreement, pooled over the workers' latest windows
    let ratio = null, lo = null, hi = null;
    const compared = agg(now.map((r) => field(r, "agreement", "compared")), "sum");
    if (now.length === 1) {
      ratio = field(now[0], "agreement", "ratio"); lo = field(now[0], "agreement", "lower"); hi = field(now[0], "agreement", "upper");
    } else if (compared) {
      const agree = agg(now.map((r) => field(r, "agreement", "agree")), "sum") || 0;
      ratio = agree / compared; [lo, hi] = wilson(agree, compared);
    }
    row.appendChild(tile("agreement", "Agreement", pct(ratio),
      (lo !== null && hi !== null ? "interval " + pct(lo).slice(0, -1) + "\u2013" + pct(hi) : "no interval") +
      " \u00b7 n " + (compared === null ? 0 : compared),
      alertsIn(current, ["agreement"]), ratio !== null));
    const cos = agg(now.map((r) => field(r, "embedding", "cosine_distance")), "max");
    const p = agg(now.map((r) => field(r, "embedding", "p_value")), "min");
    const mmd2 = agg(now.map((r) => field(r, "embedding", "mmd2")), "max");
    row.appendChild(tile("embedding", "Embedding drift", fmt(cos),
      "cosine \u00b7 MMD\u00b2 " + fmt(mmd2) + " \u00b7 p " + pval(p),
      alertsIn(current, ["embedding", "mmd"]), cos !== null || p !== null));
    const js = agg(now.map((r) => field(r, "labels", "js_distance")), "max");
    const psi = agg(now.map((r) => field(r, "labels", "psi")), "max");
    const conf = agg(now.map((r) => field(r, "labels", "mean_confidence")), "mean");
    row.appendChild(tile("label_drift", "Label drift (JS)", fmt(js),
      "PSI " + fmt(psi) + " \u00b7 confidence " + (conf === null ? "\u2014" : conf.toFixed(3)),
      alertsIn(current, ["label_drift", "confidence"]), js !== null));
    const dps = agg(now.map((r) => field(r, "latency", "docs_per_second")), "sum");
    const docs = agg(now.map((r) => field(r, "volume", "documents")), "sum");
    const dead = agg(now.map((r) => field(r, "volume", "dead_letters")), "sum");
    row.appendChild(tile("throughput", "Docs / s", fmt(dps),
      count(docs) + " docs \u00b7 " + count(dead) + " dead letters",
      alertsIn(current, ["throughput", "volume"]), dps !== null));
    const p99 = agg(now.map((r) => field(r, "latency", "p99_s")), "max");
    const p50 = agg(now.map((r) => field(r, "latency", "p50_s")), "max");
    row.appendChild(tile("latency", "Latency p99", secs(p99), "p50 " + secs(p50),
      alertsIn(current, ["latency"]), p99 !== null));
    return row;
  }

  // ---- charts ----
  const CHARTS = [
    { key: "agreement", title: "Agreement with the transformer", y: "unit", f: pct,
      band: [(r) => field(r, "agreement", "lower"), (r) => field(r, "agreement", "upper")],
      series: [{ key: "ratio", name: "agreement", color: COLORS.blue, get: (r) => field(r, "agreement", "ratio") }] },
    { key: "embedding", title: "Embedding drift \u00b7 cosine distance", y: "zero", f: fmt,
      series: [{ key: "cosine_distance", name: "cosine distance", color: COLORS.purple, get: (r) => field(r, "embedding", "cosine_distance") }] },
    { key: "mmd", title: "Embedding drift \u00b7 MMD p-value", y: "unit", f: pval, tick: fmt,
      series: [{ key: "p_value", name: "p-value", color: COLORS.teal, get: (r) => field(r, "embedding", "p_value") }] },
    { key: "label_drift", title: "Label drift vs reference", y: "zero", f: fmt,
      series: [{ key: "js_distance", name: "JS distance", color: COLORS.orange, get: (r) => field(r, "labels", "js_distance") },
               { key: "psi", name: "PSI", color: COLORS.purple, get: (r) => field(r, "labels", "psi") }] },
    { key: "confidence", title: "Mean confidence", y: "upper1", f: (v) => (v === null ? "\u2014" : v.toFixed(3)),
      series: [{ key: "mean_confidence", name: "mean confidence", color: COLORS.blue, get: (r) => field(r, "labels", "mean_confidence") }] },
    { key: "volume", title: "Volume per window", y: "zero", f: count,
      series: [{ key: "documents", name: "docs", color: COLORS.blue, get: (r) => field(r, "volume", "documents") },
               { key: "dead_letters", name: "dead letters", color: COLORS.pink, get: (r) => field(r, "volume", "dead_letters") },
               { key: "duplicates", name: "duplicates", color: COLORS.amber, get: (r) => field(r, "volume", "duplicates") }] },
    { key: "throughput", title: "Throughput (docs/s)", y: "zero", f: fmt,
      series: [{ key: "docs_per_second", name: "docs/s", color: COLORS.teal, get: (r) => field(r, "latency", "docs_per_second") }] },
    { key: "latency", title: "Latency", y: "zero", f: secs,
      series: [{ key: "p50_s", name: "p50", color: COLORS.blue, get: (r) => field(r, "latency", "p50_s") },
               { key: "p99_s", name: "p99", color: COLORS.orange, get: (r) => field(r, "latency", "p99_s") }] },
    { key: "text_words", title: "Text \u00b7 mean words per doc", y: "zero", f: fmt,
      series: [{ key: "mean_words", name: "words", color: COLORS.gray, get: (r) => field(r, "text", "mean_words") }] },
    { key: "text_sentences", title: "Text \u00b7 mean sentences per doc", y: "zero", f: fmt,
      series: [{ key: "mean_sentences", name: "sentences", color: COLORS.gray, get: (r) => field(r, "text", "mean_sentences") }] },
    { key: "text_shares", title: "Text \u00b7 windowed / unknown wordpieces", y: "zero", f: pct,
      series: [{ key: "windowed_share", name: "windowed", color: COLORS.purple, get: (r) => field(r, "text", "windowed_share") },
               { key: "unknown_share", name: "unknown", color: COLORS.amber, get: (r) => field(r, "text", "unknown_share") }] },
  ];

  function niceCeil(v) {
    if (!(v > 0)) return 1;
    const e = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * e >= v * 0.999) return m * e;
    return 10 * e;
  }

  function chart(cfg, recs, current) {
    const W = 320, H = 128, ML = 40, MR = 6, MT = 8, MB = 18;
    const card = el("div", "chart");
    card.dataset.figure = cfg.key;
    const nowAlerts = alertsIn(current, [cfg.key]);
    if (nowAlerts.length) card.classList.add("alert");
    card.appendChild(el("h3", null, cfg.title));
    const legend = el("div", "legend");
    card.appendChild(legend);

    const t0 = Math.min(...recs.map(start)), t1 = Math.max(...recs.map(end));
    const X = (t) => ML + ((t - t0) / (t1 - t0 || 1)) * (W - ML - MR);

    // thresholds of alerts on this chart's figure (per window or current): dashed lines
    const thresholds = new Set();
    for (const a of nowAlerts) if (num(a.threshold) !== null) thresholds.add(num(a.threshold));
    for (const r of recs) for (const a of (Array.isArray(r.alerts) ? r.alerts : [])) {
      if (isObj(a) && groupsOf(a.figure).has(cfg.key) && num(a.threshold) !== null) thresholds.add(num(a.threshold));
    }

    const values = [];
    for (const s of cfg.series) for (const r of recs) { const v = s.get(r); if (v !== null) values.push(v); }
    if (cfg.band) for (const r of recs) for (const g of cfg.band) { const v = g(r); if (v !== null) values.push(v); }
    for (const th of thresholds) values.push(th);
    let y0 = 0, y1 = 1;
    if (cfg.y === "zero") { y1 = niceCeil(Math.max(0, ...values) * 1.08); }
    else if (cfg.y === "upper1") { y0 = values.length ? Math.max(0, Math.floor(Math.min(...values) * 10 - 0.5) / 10) : 0; y1 = 1; }
    const Y = (v) => MT + (1 - (v - y0) / (y1 - y0 || 1)) * (H - MT - MB);

    const svg = sv("svg", { viewBox: "0 0 " + W + " " + H, class: "plot", role: "img", "aria-label": cfg.title });
    // windows in alert: red bands (strong for this figure, faint for any other figure)
    for (const r of recs) {
      const list = (Array.isArray(r.alerts) ? r.alerts : []).filter(isObj);
      if (!list.length) continue;
      const mine = list.some((a) => groupsOf(a.figure).has(cfg.key));
      const band = sv("rect", { x: X(start(r)).toFixed(1), y: MT, width: Math.max(1, X(end(r)) - X(start(r))).toFixed(1), height: H - MT - MB,
        fill: "#e02424", "fill-opacity": mine ? 0.16 : 0.05, class: mine ? "alert-band" : "alert-band other" });
      band.appendChild(sv("title", null, list.map((a) => str(a.figure) + " " + fmt(num(a.value))).join(", ")));
      svg.appendChild(band);
    }
    // grid and y ticks
    for (const v of [y0, (y0 + y1) / 2, y1]) {
      svg.appendChild(sv("line", { x1: ML, x2: W - MR, y1: Y(v).toFixed(1), y2: Y(v).toFixed(1), stroke: v === y0 ? "#b8bec8" : "#e6e9ee", "stroke-width": 1 }));
      svg.appendChild(sv("text", { x: ML - 5, y: (Y(v) + 3.5).toFixed(1), "text-anchor": "end" }, tick(v === 0 ? fmt(0) : (cfg.tick || cfg.f)(v))));
    }
    // x ticks: first, middle, last window
    const ticks = t1 > t0 ? [t0, (t0 + t1) / 2, t1] : [t0];
    ticks.forEach((t, i) => {
      svg.appendChild(sv("text", { x: X(t).toFixed(1), y: H - 5, "text-anchor": i === 0 ? "start" : i === ticks.length - 1 ? "end" : "middle" }, shortClock(t)));
    });
    for (const th of thresholds) {
      svg.appendChild(sv("line", { x1: ML, x2: W - MR, y1: Y(th).toFixed(1), y2: Y(th).toFixed(1), stroke: "#d92626", "stroke-width": 1.2, "stroke-dasharray": "5 3", class: "threshold" }));
      svg.appendChild(sv("text", { x: W - MR - 2, y: (Y(th) - 3).toFixed(1), "text-anchor": "end", fill: "#d92626", class: "threshold-label" }, "threshold " + tick((cfg.tick || cfg.f)(th))));
    }

    // one line per worker, broken at nulls
    const workers = new Map();
    for (const r of recs) { const w = str(r.worker); if (!workers.has(w)) workers.set(w, []); workers.get(w).push(r); }
    for (const rs of workers.values()) rs.sort((a, b) => mid(a) - mid(b));
    if (cfg.band) {
      for (const rs of workers.values()) {
        let run = [];
        const flush = () => {
          if (run.length) {
            const top = run.map((r) => X(mid(r)).toFixed(1) + " " + Y(cfg.band[1](r)).toFixed(1));
            const bottom = run.slice().reverse().map((r) => X(mid(r)).toFixed(1) + " " + Y(cfg.band[0](r)).toFixed(1));
            const d = run.length === 1
              ? "M" + (X(mid(run[0])) - 3).toFixed(1) + " " + Y(cfg.band[1](run[0])).toFixed(1) + " h6 V" + Y(cfg.band[0](run[0])).toFixed(1) + " h-6 Z"
              : "M" + top.join(" L") + " L" + bottom.join(" L") + " Z";
            svg.appendChild(sv("path", { d: d, fill: cfg.series[0].color, "fill-opacity": 0.15, stroke: "none", class: "interval" }));
          }
          run = [];
        };
        for (const r of rs) { if (cfg.band[0](r) !== null && cfg.band[1](r) !== null) run.push(r); else flush(); }
        flush();
      }
    }
    const many = recs.length > 90;
    let anyValue = false;
    for (const s of cfg.series) {
      let last = null;
      for (const [w, rs] of workers) {
        let d = "", open = false;
        for (const r of rs) {
          const v = s.get(r);
          if (v === null) { open = false; continue; }
          d += (open ? " L" : " M") + X(mid(r)).toFixed(1) + " " + Y(v).toFixed(1);
          open = true;
        }
        if (d) svg.appendChild(sv("path", { d: d.trim(), fill: "none", stroke: s.color, "stroke-width": 1.8, "stroke-linejoin": "round", class: "line", "data-series": s.key }));
        for (const r of rs) {
          const v = s.get(r);
          if (v === null) continue;
          anyValue = true;
          if (last === null || end(r) >= end(last.r)) last = { r: r, v: v };
          const c = sv("circle", { cx: X(mid(r)).toFixed(1), cy: Y(v).toFixed(1), r: many ? 1.3 : 2.4, fill: s.color, class: "pt", "data-series": s.key });
          c.appendChild(sv("title", null, s.name + " " + cfg.f(v) + " \u00b7 " + clock(start(r)) + "\u2013" + clock(end(r)) + (workers.size > 1 ? " \u00b7 " + w : "")));
          svg.appendChild(c);
        }
      }
      const item = el("span", "item");
      const sw = sv("svg", { viewBox: "0 0 14 8" });
      sw.appendChild(sv("rect", { x: 0, y: 2, width: 14, height: 4, rx: 2, fill: s.color }));
      item.appendChild(sw);
      item.appendChild(document.createTextNode(s.name + " "));
      item.appendChild(el("b", null, last ? cfg.f(last.v) : "\u2014"));
      legend.appendChild(item);
    }
    if (!anyValue) svg.appendChild(sv("text", { x: (ML + W - MR) / 2, y: H / 2, "text-anchor": "middle", class: "nodata" }, "no data in these windows"));
    card.appendChild(svg);
    return card;
  }

  function labelsCard(recs) {
    const now = headline(recs).shown;
    const card = el("div", "chart");
    card.dataset.figure = "label_distribution";
    card.appendChild(el("h3", null, "Labels \u00b7 latest window"));
    const total = new Map();
    let weight = 0;
    for (const r of now) {
      const dist = pick(r, "labels", "distribution");
      if (!isObj(dist)) continue;
      const w = field(r, "volume", "documents") || 1;
      weight += w;
      for (const k of Object.keys(dist)) { const v = num(dist[k]); if (v !== null) total.set(k, (total.get(k) || 0) + w * v); }
    }
    const rows = [...total.entries()].map(([k, v]) => [k, v / (weight || 1)]).sort((a, b) => b[1] - a[1]);
    const shown = rows.slice(0, 8);
    const list = el("div", "label-rows");
    if (!shown.length) list.appendChild(el("div", "nodata", "no labels in this window"));
    const maxShare = Math.max(...shown.map((r) => r[1]), 1e-9);
    for (const [label, share] of shown) {
      const row = el("div", "label-row");
      const name = el("div", "label-name", label);
      name.title = label;
      row.appendChild(name);
      const bar = sv("svg", { viewBox: "0 0 100 10", preserveAspectRatio: "none", class: "label-bar" });
      bar.appendChild(sv("rect", { x: 0, y: 0, width: Math.max(0.5, (100 * share) / maxShare).toFixed(2), height: 10, rx: 1.5, fill: COLORS.blue, "fill-opacity": 0.75 }));
      row.appendChild(bar);
      row.appendChild(el("div", "label-share", pct(share)));
      list.appendChild(row);
    }
    card.appendChild(list);
    if (rows.length > shown.length) card.appendChild(el("div", "legend", "+ " + (rows.length - shown.length) + " more labels"));
    return card;
  }

  function modelSection(index, recs, current) {
    const sec = el("section", "model");
    sec.id = "model-" + index;
    sec.dataset.modelIndex = String(index);
    sec.dataset.modelName = modelName(recs[0]);
    sec.dataset.modelVersion = modelVersion(recs[0]);
    if (current.length) sec.classList.add("alert");
    const head = el("div", "model-head");
    head.appendChild(el("h2", "name", modelName(recs[0]) || "(unnamed model)"));
    head.appendChild(el("span", "version", modelVersion(recs[0]) || "no version"));
    const now = latestSet(recs);
    const workers = [...new Set(now.map((r) => str(r.worker)))].sort();
    const last = now.reduce((a, r) => (end(r) > end(a) ? r : a), now[0]);
    const secsW = field(last, "window", "seconds");
    const refDocs = field(last, "reference", "documents");
    const refSrc = str(pick(last, "reference", "source"));
    const meta = (workers.length === 1 ? "worker " : workers.length + " workers: ") + workers.join(", ") +
      " \u00b7 " + new Set(recs.map(start)).size + " windows of " + (secsW === null ? "?" : String(Number(secsW.toFixed(1)))) + " s" +
      " \u00b7 last ended " + clock(end(last)) +
      " \u00b7 reference " + count(refDocs) + " docs" + (refSrc ? " (" + refSrc + ")" : "");
    const m = el("span", "meta workers", meta);
    head.appendChild(m);
    sec.appendChild(head);
    sec.appendChild(tilesAge(recs));
    sec.appendChild(tiles(recs, current));
    const charts = el("div", "charts");
    for (const cfg of CHARTS) charts.appendChild(chart(cfg, recs, current));
    charts.appendChild(labelsCard(recs));
    sec.appendChild(charts);
    return sec;
  }

  function renderAlerts(alerts) {
    const panel = document.getElementById("alerts-panel");
    const list = document.getElementById("alerts");
    list.replaceChildren();
    panel.classList.toggle("active", alerts.length > 0);
    panel.querySelector("h2").textContent = alerts.length ? "Active alerts (" + alerts.length + ")" : "Alerts";
    if (!alerts.length) { list.appendChild(el("li", "none", "No active alerts")); return; }
    for (const a of alerts) {
      const li = el("li", "alert");
      li.dataset.figure = str(a.figure);
      li.appendChild(el("span", "model", modelName(a) + " " + modelVersion(a)));
      li.appendChild(document.createTextNode(" \u00b7 "));
      li.appendChild(el("span", "fig", str(a.figure)));
      li.appendChild(document.createTextNode(" = " + fmt(num(a.value)) + " (threshold " + fmt(num(a.threshold)) + ")"));
      const since = num(a.since);
      li.appendChild(el("span", "meta", " \u00b7 " + (num(a.windows) === null ? "?" : a.windows) + " windows" +
        (since === null ? "" : " \u00b7 since " + clock(since) + " (" + ago(since) + ")")));
      list.appendChild(li);
    }
  }

  // ---- consumer lag of the input topic (every partition, read by this worker) ----
  function lagSpark(history) {
    const W = 320, H = 70, ML = 40, MR = 6, MT = 6, MB = 14;
    const pts = (Array.isArray(history) ? history : []).filter((p) => Array.isArray(p) && num(p[0]) !== null);
    const svg = sv("svg", { viewBox: "0 0 " + W + " " + H, class: "plot", role: "img", "aria-label": "consumer lag over time" });
    const vals = pts.map((p) => num(p[1])).filter((v) => v !== null);
    if (!vals.length) { svg.appendChild(sv("text", { x: (ML + W - MR) / 2, y: H / 2, "text-anchor": "middle", class: "nodata" }, "no readings yet")); return svg; }
    const t0 = num(pts[0][0]), t1 = num(pts[pts.length - 1][0]);
    const y1 = niceCeil(Math.max(1, ...vals) * 1.08);
    const X = (t) => ML + ((t - t0) / (t1 - t0 || 1)) * (W - ML - MR);
    const Y = (v) => MT + (1 - v / y1) * (H - MT - MB);
    for (const v of [0, y1]) {
      svg.appendChild(sv("line", { x1: ML, x2: W - MR, y1: Y(v).toFixed(1), y2: Y(v).toFixed(1), stroke: v === 0 ? "#b8bec8" : "#e6e9ee", "stroke-width": 1 }));
      svg.appendChild(sv("text", { x: ML - 5, y: (Y(v) + 3.5).toFixed(1), "text-anchor": "end" }, count(v)));
    }
    svg.appendChild(sv("text", { x: ML, y: H - 2, "text-anchor": "start" }, shortClock(t0)));
    svg.appendChild(sv("text", { x: W - MR, y: H - 2, "text-anchor": "end" }, shortClock(t1)));
    let d = "", open = false;
    for (const p of pts) {
      const v = num(p[1]);
      if (v === null) { open = false; continue; }
      d += (open ? " L" : " M") + X(num(p[0])).toFixed(1) + " " + Y(v).toFixed(1);
      open = true;
    }
    svg.appendChild(sv("path", { d: d.trim(), fill: "none", stroke: COLORS.orange, "stroke-width": 1.8, class: "line", "data-series": "lag" }));
    for (const p of pts) {
      const v = num(p[1]);
      if (v === null) continue;
      const c = sv("circle", { cx: X(num(p[0])).toFixed(1), cy: Y(v).toFixed(1), r: pts.length > 90 ? 1.1 : 2, fill: COLORS.orange, class: "pt", "data-series": "lag" });
      c.appendChild(sv("title", null, count(v) + " \u00b7 " + clock(num(p[0]))));
      svg.appendChild(c);
    }
    return svg;
  }

  function renderLag(lag) {
    const panel = document.getElementById("lag-panel");
    if (!isObj(lag)) { panel.hidden = true; panel.replaceChildren(); return; }
    panel.hidden = false;
    const total = num(lag.total);
    const parts = (Array.isArray(lag.partitions) ? lag.partitions : []).filter(isObj)
      .slice().sort((a, b) => (num(a.partition) || 0) - (num(b.partition) || 0));
    const error = str(lag.error);
    panel.classList.toggle("lagging", total !== null && total > 0);
    panel.classList.toggle("error", !!error);
    panel.dataset.total = total === null ? "" : String(total);
    const head = el("div", "lag-head");
    head.appendChild(el("h2", null, "Consumer lag"));
    const big = el("div", null, count(total));
    big.id = "lag-total";
    head.appendChild(big);
    const at = num(lag.at);
    const here = parts.filter((p) => p.owned === true).length;
    head.appendChild(el("div", "meta", "topic " + str(lag.topic) + " \u00b7 group " + str(lag.group)));
    head.appendChild(el("div", "meta", parts.length + " partitions, " + here + " read by this worker" +
      (at === null ? "" : " \u00b7 read " + ago(at))));
    if (error) head.appendChild(el("div", "why", "last reading failed" + (num(lag.error_at) === null ? "" : " " + ago(num(lag.error_at))) + ": " + error));
    const spark = el("div", "lag-history");
    spark.appendChild(lagSpark(lag.history));
    const table = el("table");
    table.id = "lag-partitions";
    const hr = el("tr");
    for (const h of ["partition", "lag", "end", "committed", "position"]) hr.appendChild(el("th", null, h));
    table.appendChild(hr);
    for (const p of parts) {
      const tr = el("tr", "partition" + (p.owned === true ? " here" : ""));
      tr.dataset.partition = str(p.partition);
      tr.appendChild(el("td", "id", str(p.partition)));
      tr.appendChild(el("td", "lag", count(num(p.lag))));
      tr.appendChild(el("td", "end", count(num(p.end))));
      tr.appendChild(el("td", "committed", count(num(p.committed))));
      tr.appendChild(el("td", "position", count(num(p.position))));
      table.appendChild(tr);
    }
    panel.replaceChildren(head, spark, table);
  }

  function render(data) {
    const windows = (isObj(data) && Array.isArray(data.windows) ? data.windows : [])
      .filter((r) => isObj(r) && start(r) !== null && end(r) !== null);
    const alerts = (isObj(data) && Array.isArray(data.alerts) ? data.alerts : []).filter(isObj);
    const groups = new Map();
    for (const r of windows) { const k = modelKey(r); if (!groups.has(k)) groups.set(k, []); groups.get(k).push(r); }
    const keys = [...groups.keys()].sort();
    renderAlerts(alerts);
    renderLag(isObj(data) ? data.lag : null);
    document.getElementById("empty").hidden = windows.length > 0;
    document.getElementById("alerts-panel").hidden = windows.length === 0 && alerts.length === 0;
    const nav = document.getElementById("models-nav");
    nav.replaceChildren();
    const sections = document.getElementById("sections");
    const built = [];
    keys.forEach((k, i) => {
      const recs = groups.get(k).slice().sort((a, b) => end(a) - end(b));
      const current = alerts.filter((a) => modelKey(a) === k);
      built.push(modelSection(i, recs, current));
      if (keys.length > 1) {
        const b = el("button", current.length ? "alert" : null, modelName(recs[0]) + " " + modelVersion(recs[0]));
        b.type = "button";
        b.dataset.modelIndex = String(i);
        b.addEventListener("click", () => { const s = document.getElementById("model-" + i); if (s) s.scrollIntoView({ behavior: "smooth" }); });
        nav.appendChild(b);
      }
    });
    sections.replaceChildren(...built);
    document.title = (alerts.length ? "(" + alerts.length + " alert" + (alerts.length > 1 ? "s" : "") + ") " : "") + "stream_trf \u00b7 drift monitor";
    return { windows: windows.length, models: keys.length };
  }

  function setStatus(text, error) {
    const s = document.getElementById("status");
    s.textContent = text;
    s.classList.toggle("error", !!error);
  }

  let lastOk = null;
  async function poll() {
    try {
      const resp = await fetch(DATA_URL, { cache: "no-store", headers: { Accept: "application/json" } });
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      const data = await resp.json();
      const n = render(data);
      lastOk = Date.now() / 1000;
      setStatus("updated " + clock(lastOk) + " \u00b7 " + n.models + (n.models === 1 ? " model" : " models") + " \u00b7 " +
        n.windows + " windows \u00b7 refreshes every " + POLL_MS / 1000 + " s", false);
      document.body.dataset.ready = "1";
    } catch (e) {
      setStatus("cannot load windows.json (" + str(e && e.message) + ")" + (lastOk ? " \u00b7 showing data from " + clock(lastOk) : ""), true);
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }
  poll();
})();
