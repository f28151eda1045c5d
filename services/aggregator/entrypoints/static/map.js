// Coverage map: /v1/coverage/map points drawn as SVG dots; follows the dashboard's view and live events.
"use strict";

(() => {
  const TEXT = {
    vi: {
      title: "Bản đồ độ phủ xã, phường",
      covered: "Có tổ",
      uncovered: "Chưa có tổ",
      label: "Bản đồ {shown} xã, phường: {covered} có tổ, {uncovered} chưa có. Số liệu từng đơn vị có trong bảng.",
      tip: "{name}: {teams} tổ, {members} thành viên",
      none: "Chưa có xã, phường nào có toạ độ ở đây.",
      note: "Chấm lớn hơn: nhiều tổ hơn. Nhấn vào chấm để xem đơn vị.",
    },
    en: {
      title: "Coverage map of communes",
      covered: "Covered",
      uncovered: "Not covered",
      label: "Map of {shown} communes: {covered} covered, {uncovered} not. The table gives every unit's figures.",
      tip: "{name}: {teams} teams, {members} members",
      none: "No commune with coordinates here yet.",
      note: "Larger dots: more teams. Click a dot to open its unit.",
    },
  };
  const NS = "http://www.w3.org/2000/svg";
  const WIDTH = 600;
  const HEIGHT = 600;
  const PAD = 12;
  // Around a commune shown on its own, this much of its province (degrees of latitude).
  const COMMUNE_SPAN = 0.35;

  const $ = (id) => document.getElementById(id);
  const state = {
    edition: null,
    unit: "",
    parent: null, // the map's own scope (null: the nation)
    focus: null, // the commune framed and ringed, in a commune's or village's view
    points: new Map(), // code -> {code, name, lat, lon, province, covered, teams, members, node}
    etag: null,
    etagKey: null,
    body: null, // the last answer drawn, redrawn on a 304 when only the framing changed
    drawnFocus: null,
    loading: null,
    again: false,
  };

  const lang = () => (document.documentElement.lang === "en" ? "en" : "vi");
  function t(key, vars) {
    let text = TEXT[lang()][key];
    for (const [name, value] of Object.entries(vars || {})) text = text.replace(`{${name}}`, value);
    return text;
  }
  const num = (n) => new Intl.NumberFormat(lang() === "vi" ? "vi-VN" : "en-GB").format(n ?? 0);

  function svgEl(tag, attrs) {
    const node = document.createElementNS(NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    return node;
  }

  // The map's scope for a view: the nation, a province, or (for a commune, legacy district
  // or village) the province or district around it, so the dot is seen among its neighbours.
  function scopeOf(view) {
    if (!view.unit) return null;
    if (view.level === "province" || view.level === "district") return view.unit;
    const path = view.path ?? [];
    return (view.edition === "legacy" ? path[1] : path[0]) ?? view.unit;
  }

  // The commune a commune's or village's view is about: the map frames and rings it.
  function focusOf(view) {
    if (view.level !== "commune" && view.level !== "village") return null;
    return (view.path ?? [])[view.edition === "legacy" ? 2 : 1] ?? null;
  }

  // Same request, same answer: the ETag lets the server reply 304 (no body) until a figure moves.
  async function load() {
    if (state.loading) {
      state.again = true;
      return state.loading;
    }
    state.loading = (async () => {
      do {
        state.again = false;
        const key = currentKey();
        const headers = { Accept: "application/json" };
        const apiKey = sessionStorage.getItem("cdtt.apiKey");
        if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
        if (state.etag && state.etagKey === key) headers["If-None-Match"] = state.etag;
        try {
          const response = await fetch(`/v1/coverage/map?${key}`, { headers, cache: "no-store" });
          if (key !== currentKey()) continue; // the view moved on while this was in flight
          if (response.status === 304) {
            // Same figures; a new view in the same scope may still frame another commune.
            if (state.body && state.drawnFocus !== state.focus) draw(state.body);
            continue;
          }
          if (!response.ok) throw new Error(`HTTP ${response.status}`);
          const body = await response.json();
          state.etag = response.headers.get("ETag");
          state.etagKey = key;
          draw(body);
        } catch {
          $("map-box").dataset.state = "failed";
        }
      } while (state.again);
      state.loading = null;
    })();
    return state.loading;
  }

  function currentKey() {
    const q = new URLSearchParams({ edition: state.edition });
    if (state.parent) q.set("parent", state.parent);
    if (state.asOf) q.set("as_of", state.asOf); // the dashboard's date: the map at that day
    return q.toString();
  }

  const radius = (teams) => Math.min(2.2 + 1.4 * Math.sqrt(teams), 9);

  function draw(body) {
    state.body = body;
    state.drawnFocus = state.focus;
    const fields = body.fields;
    const rows = body.points.map((row) => Object.fromEntries(fields.map((f, i) => [f, row[i]])));
    const box = $("map-box");
    const svg = svgEl("svg", {
      id: "map-svg",
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      role: "img",
      "aria-describedby": "map-note",
    });
    state.points = new Map();
    if (rows.length === 0) {
      box.replaceChildren(Object.assign(document.createElement("p"), { className: "empty", textContent: t("none") }));
      box.dataset.drawnMs = String(Math.round(performance.now()));
      renderLegend();
      return;
    }
    // Equirectangular, corrected for latitude: a degree of longitude is cos(latitude) of one
    // of latitude, taken at the middle of what is shown, so shapes keep their proportions.
    const focus = state.focus ? rows.find((r) => r.code === state.focus) : null;
    const framed = focus
      ? rows.filter((r) => Math.abs(r.lat - focus.lat) <= COMMUNE_SPAN && Math.abs(r.lon - focus.lon) <= COMMUNE_SPAN * 1.2)
      : rows;
    const lats = framed.map((r) => r.lat);
    const lons = framed.map((r) => r.lon);
    const [south, north] = [Math.min(...lats), Math.max(...lats)];
    const [west, east] = [Math.min(...lons), Math.max(...lons)];
    const k = Math.cos((((south + north) / 2) * Math.PI) / 180);
    const spanX = Math.max((east - west) * k, 0.01);
    const spanY = Math.max(north - south, 0.01);
    const scale = Math.min((WIDTH - 2 * PAD) / spanX, (HEIGHT - 2 * PAD) / spanY);
    const offsetX = (WIDTH - spanX * scale) / 2;
    const offsetY = (HEIGHT - spanY * scale) / 2;
    const project = (r) => [offsetX + (r.lon - west) * k * scale, offsetY + (north - r.lat) * scale];

    const dots = svgEl("g", { class: "dots" });
    // Uncovered first, so covered dots sit on top where they crowd.
    const ordered = [...rows].sort((a, b) => a.covered - b.covered || a.teams - b.teams);
    for (const row of ordered) {
      const [x, y] = project(row);
      const dot = svgEl("circle", {
        cx: x.toFixed(1),
        cy: y.toFixed(1),
        r: radius(row.teams).toFixed(1),
        class: row.covered ? "dot covered" : "dot",
        "data-code": row.code,
      });
      if (row.code === state.focus) dot.classList.add("current");
      row.node = dot;
      state.points.set(row.code, row);
      dots.append(dot);
    }
    svg.append(dots);
    box.replaceChildren(svg, Object.assign(document.createElement("div"), { id: "map-tip", className: "map-tip", hidden: true }));
    box.dataset.state = "ok";
    box.dataset.drawnMs = String(Math.round(performance.now())); // since navigation began
    renderLegend();
  }

  function counts() {
    let covered = 0;
    for (const point of state.points.values()) covered += point.covered ? 1 : 0;
    return { shown: state.points.size, covered, uncovered: state.points.size - covered };
  }

  function renderLegend() {
    $("map-title").textContent = t("title");
    $("map-note").textContent = t("note");
    const c = counts();
    $("map-covered").textContent = `${t("covered")}: ${num(c.covered)}`;
    $("map-uncovered").textContent = `${t("uncovered")}: ${num(c.uncovered)}`;
    $("map-svg")?.setAttribute("aria-label", t("label", { shown: num(c.shown), covered: num(c.covered), uncovered: num(c.uncovered) }));
  }

  function showTip(point) {
    const tip = $("map-tip");
    if (!tip) return;
    if (!point) {
      tip.hidden = true;
      return;
    }
    tip.textContent = t("tip", { name: point.name, teams: num(point.teams), members: num(point.members) });
    const box = $("map-box").getBoundingClientRect();
    const dot = point.node.getBoundingClientRect();
    tip.style.left = `${Math.min(dot.left - box.left + 10, box.width - 180)}px`;
    tip.style.top = `${dot.top - box.top + 10}px`;
    tip.hidden = false;
  }

  // Live: the dashboard's SSE changes carry each changed unit's figures; a commune on the map
  // is recoloured and resized in place, with the figure cards' highlight.
  function onLive(change) {
    if (change.edition !== state.edition) return;
    let moved = false;
    for (const unit of change.units ?? []) {
      const point = state.points.get(unit.code);
      if (!point) continue;
      const covered = unit.has_team ? 1 : 0;
      if (point.covered === covered && point.teams === unit.teams && point.members === unit.members) continue;
      Object.assign(point, { covered, teams: unit.teams, members: unit.members });
      point.node.setAttribute("r", radius(point.teams).toFixed(1));
      point.node.classList.toggle("covered", Boolean(covered));
      point.node.classList.remove("changed");
      void point.node.getBoundingClientRect(); // restart the highlight when it is already running
      point.node.classList.add("changed");
      point.node.addEventListener("animationend", () => point.node.classList.remove("changed"), { once: true });
      moved = true;
    }
    if (moved) {
      state.etag = null; // the next view asks for the whole body again
      renderLegend();
    }
  }

  function onView(view) {
    const parent = scopeOf(view);
    const asOf = view.asOf || "";
    const scopeChanged = view.edition !== state.edition || parent !== state.parent || asOf !== state.asOf;
    Object.assign(state, { edition: view.edition, unit: view.unit, parent, focus: focusOf(view), asOf });
    if (scopeChanged) state.etag = null;
    load();
  }

  function start() {
    const box = $("map-box");
    box.addEventListener("mouseover", (event) => {
      const code = event.target?.dataset?.code;
      showTip(code ? state.points.get(code) : null);
    });
    box.addEventListener("mouseleave", () => showTip(null));
    box.addEventListener("click", (event) => {
      const code = event.target?.dataset?.code;
      if (!code) return;
      document.dispatchEvent(new CustomEvent("cdtt:navigate", { detail: { unit: code } }));
    });
    // Keyboard users reach every commune through the table: focusing a row's link points
    // its dot out on the map (the map itself is never the only way to a figure).
    const table = $("table-body");
    table.addEventListener("focusin", (event) => {
      const code = event.target.closest("tr")?.dataset?.code;
      showTip(code ? state.points.get(code) : null);
    });
    table.addEventListener("focusout", () => showTip(null));
    document.addEventListener("cdtt:view", (event) => onView(event.detail));
    document.addEventListener("cdtt:live", (event) => onLive(event.detail));
    document.addEventListener("cdtt:lang", () => renderLegend());
  }

  start();
})();
