// Operator dashboard: reads the aggregator's /v1 figures, follows /v1/live; names are set as text.
"use strict";

(() => {
  const TEXT = {
    vi: {
      title: "Tổ công nghệ số cộng đồng",
      subtitle: "Độ phủ theo đơn vị hành chính, cập nhật trực tiếp",
      skip: "Bỏ qua, đến bảng số liệu",
      edition: "Bộ đơn vị hành chính",
      edition_2025: "Từ 1/7/2025",
      edition_legacy: "Trước 1/7/2025",
      connecting: "Đang kết nối…",
      live: "Trực tiếp",
      lost: "Mất kết nối trực tiếp — đang kết nối lại…",
      as_of: "Số liệu lúc {time}",
      lag: "độ trễ {lag}",
      breadcrumb: "Đường dẫn",
      freshness: "Tình trạng số liệu trực tiếp",
      national: "Toàn quốc",
      teams: "Số tổ",
      members: "Thành viên",
      unplaced: "Tổ chờ xếp vào xã mới",
      came_from: "Hình thành từ các đơn vị trước 1/7/2025",
      partly: "một phần",
      covered: "{level} có tổ",
      has_team: "Tổ tại đơn vị",
      yes: "Có",
      no: "Chưa",
      name: "Đơn vị",
      children: "{level} thuộc {name}",
      export: "Tải CSV",
      empty: "Chưa có đơn vị nào được đăng ký ở cấp này.",
      support: "Hỗ trợ người dân",
      category: "Lĩnh vực",
      events: "Lượt hỗ trợ",
      residents: "Người dân",
      total: "Tổng",
      by_month: "Người dân được hỗ trợ theo tháng",
      chart_label: "Biểu đồ người dân được hỗ trợ theo tháng: {summary}",
      no_support: "Chưa ghi nhận hoạt động hỗ trợ.",
      sort_by: "Sắp xếp theo {column}",
      load_failed: "Không tải được số liệu ({reason}). Đang thử lại khi có thay đổi.",
      not_found: "Không tìm thấy đơn vị {code} trong bộ đơn vị này.",
      key_label: "Khoá API của cán bộ theo dõi (operator)",
      key_submit: "Xem số liệu",
      key_needed: "Trang này cần khoá API: {reason}",
      key_note: "Khoá chỉ được giữ trong tab này cho đến khi đóng trình duyệt.",
      footer:
        "Số liệu do hệ thống các tỉnh gửi lên; trang do máy chủ tổng hợp phục vụ, không dùng tài nguyên bên ngoài.",
      lang_other: "English",
      as_of_date: "Số liệu đến ngày",
      past: "Số liệu đến hết ngày {date} — không cập nhật trực tiếp",
      series: "Diễn biến theo tháng",
      series_caption: "Số tổ và đơn vị có tổ cuối mỗi tháng, {from} – {to}",
      series_label: "Biểu đồ số tổ và đơn vị có tổ theo tháng, {from} – {to}: {summary}",
      series_empty: "Chưa có tổ nào trong khoảng thời gian này.",
      change: "so với tháng trước {change}",
      trained_share: "{share} đã được tập huấn",
      outcomes: "Kết quả hỗ trợ",
      outcome_kind: "Loại kết quả",
      latest_month: "Tháng gần nhất",
      month_of: "Tháng {month}",
      outcome_name: {
        vneid_activations: "Tài khoản VNeID được kích hoạt",
        public_service_dossiers: "Hồ sơ dịch vụ công trực tuyến",
        payment_accounts: "Tài khoản thanh toán",
        ecommerce_accounts: "Tài khoản thương mại điện tử",
        other_accounts: "Tài khoản khác",
      },
      targets: "Chỉ tiêu",
      target_covered: "{level} có tổ",
      target_trained: "Thành viên được tập huấn",
      target_of: "{actual} / {target} ({progress})",
      no_measure: "chưa có số liệu",
      due: "hạn {date}",
      overdue: "đã quá hạn",
      reporting: "Báo cáo tháng {month}",
      reporting_cell: "{reporting}/{active} tổ",
      no_active: "không có tổ",
      silent: "{count} tổ chưa báo cáo",
      silent_team: "Tổ {team} tại {unit}",
      level: {
        national: "Cả nước",
        province: "Tỉnh, thành phố",
        district: "Quận, huyện",
        commune: "Xã, phường",
        village: "Thôn, tổ dân phố",
      },
      level_short: { province: "Tỉnh", district: "Huyện", commune: "Xã", village: "Thôn" },
      level_one: {
        province: "Tỉnh, thành phố",
        district: "Quận, huyện",
        commune: "Xã, phường",
        village: "Thôn, tổ dân phố",
      },
      category_name: {
        vneid: "Định danh điện tử VNeID",
        public_services: "Dịch vụ công trực tuyến",
        cashless_payment: "Thanh toán không dùng tiền mặt",
        ecommerce: "Thương mại điện tử",
        digital_skills: "Kỹ năng số",
        online_safety: "An toàn trên không gian mạng",
        other: "Khác",
      },
    },
    en: {
      title: "Community Digital Technology Teams",
      subtitle: "Coverage by administrative unit, live",
      skip: "Skip to the figures table",
      edition: "Administrative units",
      edition_2025: "Since 1 July 2025",
      edition_legacy: "Before 1 July 2025",
      connecting: "Connecting…",
      live: "Live",
      lost: "Live connection lost — reconnecting…",
      as_of: "Figures as of {time}",
      lag: "lag {lag}",
      breadcrumb: "Breadcrumb",
      freshness: "Live figures status",
      national: "Nationwide",
      teams: "Teams",
      members: "Members",
      unplaced: "Teams awaiting a 2025 commune",
      came_from: "Came from these units of before 1 July 2025",
      partly: "part of it",
      covered: "{level} covered",
      has_team: "Team here",
      yes: "Yes",
      no: "No",
      name: "Unit",
      children: "{level} of {name}",
      export: "Download CSV",
      empty: "No unit is registered at this level yet.",
      support: "Support to residents",
      category: "Category",
      events: "Support events",
      residents: "Residents",
      total: "Total",
      by_month: "Residents helped by month",
      chart_label: "Chart of residents helped by month: {summary}",
      no_support: "No support activity recorded yet.",
      sort_by: "Sort by {column}",
      load_failed: "Could not load the figures ({reason}). Retrying on the next change.",
      not_found: "No unit {code} in this edition.",
      key_label: "Operator API key",
      key_submit: "Show the figures",
      key_needed: "This page needs an API key: {reason}",
      key_note: "The key is kept in this tab only, until the browser closes.",
      footer:
        "Figures as published by the provinces' systems; served by the aggregator alone, with no outside resource.",
      lang_other: "Tiếng Việt",
      as_of_date: "Figures as of",
      past: "Figures as of the end of {date} — not updated live",
      series: "Month by month",
      series_caption: "Teams and covered units at the end of each month, {from} – {to}",
      series_label: "Chart of teams and covered units by month, {from} – {to}: {summary}",
      series_empty: "No team in this period.",
      change: "{change} on the month before",
      trained_share: "{share} trained",
      outcomes: "Outcomes of support",
      outcome_kind: "Outcome",
      latest_month: "Latest month",
      month_of: "{month}",
      outcome_name: {
        vneid_activations: "VNeID accounts activated",
        public_service_dossiers: "Online public-service dossiers",
        payment_accounts: "Payment accounts",
        ecommerce_accounts: "E-commerce accounts",
        other_accounts: "Other accounts",
      },
      targets: "Targets",
      target_covered: "{level} covered",
      target_trained: "Members trained",
      target_of: "{actual} of {target} ({progress})",
      no_measure: "nothing to measure yet",
      due: "due {date}",
      overdue: "overdue",
      reporting: "Reporting in {month}",
      reporting_cell: "{reporting}/{active} teams",
      no_active: "no team",
      silent: "{count} silent teams",
      silent_team: "Team {team} on {unit}",
      level: {
        national: "Nationwide",
        province: "Provinces",
        district: "Districts",
        commune: "Communes",
        village: "Villages",
      },
      level_short: { province: "Provinces", district: "Districts", commune: "Communes", village: "Villages" },
      level_one: { province: "Province", district: "District", commune: "Commune", village: "Village" },
      category_name: {
        vneid: "VNeID electronic ID",
        public_services: "Online public services",
        cashless_payment: "Cashless payment",
        ecommerce: "E-commerce",
        digital_skills: "Digital skills",
        online_safety: "Online safety",
        other: "Other",
      },
    },
  };
  const LEVELS = ["province", "district", "commune", "village"];
  const CATEGORIES = Object.keys(TEXT.vi.category_name);
  const OUTCOME_KINDS = Object.keys(TEXT.vi.outcome_name);
  const RECONNECT_MS = [250, 500, 1000, 2000];
  const EARLIEST_DATE = "2020-01-01";
  const SERIES_MONTHS = 24;

  // Business dates are Vietnamese days (UTC+7, no daylight saving), whatever the browser's zone.
  const todayInVietnam = () => new Date(Date.now() + 7 * 3600 * 1000).toISOString().slice(0, 10);
  // A past day asked for, or "" for today (live figures).
  function asOfFrom(value) {
    if (!value || !/^\d{4}-\d{2}-\d{2}$/.test(value) || value >= todayInVietnam()) return "";
    return value < EARLIEST_DATE ? EARLIEST_DATE : value;
  }

  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const state = {
    edition: params.get("edition"), // null until the server names its default
    unit: params.get("unit") || "",
    lang: params.get("lang") === "en" ? "en" : "vi",
    sort: params.get("sort") || "",
    asOf: asOfFrom(params.get("as_of")),
    liveMode: "connecting",
    view: null, // the last figures shown: {unit, rows}
    shown: new Map(), // cell key -> value last shown, to highlight what changed
    names: new Map(), // "edition:code" -> name, for breadcrumbs
    loading: null,
    dirty: false,
    source: null,
    attempts: 0,
  };

  // ---- text and numbers -------------------------------------------------------------------

  function t(key, vars) {
    let text = TEXT[state.lang][key] ?? TEXT.vi[key] ?? key;
    for (const [name, value] of Object.entries(vars || {})) text = text.replace(`{${name}}`, value);
    return text;
  }
  const locale = () => (state.lang === "vi" ? "vi-VN" : "en-GB");
  const num = (n) => new Intl.NumberFormat(locale()).format(n ?? 0);
  const pct = (covered, total) =>
    total > 0
      ? new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 1 }).format(
          covered / total,
        )
      : "—";
  const ratio = (c) => (c && c.total > 0 ? c.covered / c.total : -1);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") node.className = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svgEl(tag, attrs, text) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ---- addresses: one URL per view --------------------------------------------------------

  function pageUrl(view) {
    const q = new URLSearchParams();
    q.set("edition", view.edition ?? state.edition);
    const unit = view.unit ?? state.unit;
    if (unit) q.set("unit", unit);
    if ((view.lang ?? state.lang) === "en") q.set("lang", "en");
    const sort = view.sort ?? state.sort;
    if (sort) q.set("sort", sort);
    const asOf = view.asOf ?? state.asOf;
    if (asOf) q.set("as_of", asOf);
    return `/?${q}`;
  }
  // Figures are read at the date on screen (as_of) unless `live` is asked for.
  const api = (path, extra, { live = false } = {}) => {
    const q = new URLSearchParams({ ...(state.edition ? { edition: state.edition } : {}), ...extra });
    if (state.asOf && !live) q.set("as_of", state.asOf);
    return `${path}?${q}`;
  };

  function navigate(view, push = true) {
    const changedEdition = view.edition && view.edition !== state.edition;
    Object.assign(state, view);
    if (push) history.pushState(null, "", pageUrl({}));
    else history.replaceState(null, "", pageUrl({}));
    if (changedEdition) connectLive();
    renderDate();
    refresh();
  }

  window.addEventListener("popstate", () => {
    const q = new URLSearchParams(location.search);
    const edition = q.get("edition") || state.edition;
    if (edition !== state.edition) {
      state.edition = edition;
      connectLive();
    }
    state.unit = q.get("unit") || "";
    state.sort = q.get("sort") || "";
    state.lang = q.get("lang") === "en" ? "en" : "vi";
    state.asOf = asOfFrom(q.get("as_of"));
    state.view = null;
    translatePage();
    refresh();
  });

  // ---- API key: asked for after a 401, kept in sessionStorage only (this tab, this session) ---

  const KEY_STORE = "cdtt.apiKey";
  const LIVE_COOKIE = "cdtt_live_key";
  const storedKey = () => sessionStorage.getItem(KEY_STORE) || "";
  const authHeaders = () => (storedKey() ? { Authorization: `Bearer ${storedKey()}` } : {});

  // EventSource cannot send headers: the key travels as a cookie that only /v1/live reads,
  // set just before a stream opens and deleted once it has opened or failed.
  function setLiveCookie(on) {
    const key = on ? storedKey() : "";
    const secure = location.protocol === "https:" ? "; Secure" : "";
    const expiry = key ? "" : "; Max-Age=0";
    document.cookie = `${LIVE_COOKIE}=${key}; Path=/v1/live; SameSite=Strict${secure}${expiry}`;
  }

  function askForKey(reason) {
    if ($("key-form")) {
      $("key-reason").textContent = reason;
      return;
    }
    const input = el("input", {
      id: "key-input", type: "password", autocomplete: "off", spellcheck: "false", required: true,
      "aria-describedby": "key-reason key-note",
    });
    const form = el("form", { id: "key-form", class: "card key-form" },
      el("label", { for: "key-input" }, t("key_label")), " ", input, " ",
      el("button", { type: "submit", class: "button" }, t("key_submit")),
      el("p", { id: "key-reason", class: "error", role: "alert" }, reason),
      el("p", { id: "key-note" }, t("key_note")));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(KEY_STORE, input.value.trim());
      form.remove();
      refresh();
      connectLive();
    });
    document.querySelector("main").prepend(form);
    input.focus();
  }

  // ---- loading: one fetch cycle at a time; a change during a fetch asks for one more ------

  async function getJson(url) {
    const key = storedKey();
    const response = await fetch(url, {
      headers: { Accept: "application/json", ...authHeaders() },
      cache: "no-store",
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      const error = new Error(body?.error?.message || `HTTP ${response.status}`);
      error.status = response.status;
      error.details = body?.error || {};
      // Forget the key this request was refused with (not one entered since it was sent).
      if (response.status === 401 && storedKey() === key) sessionStorage.removeItem(KEY_STORE);
      throw error;
    }
    return response.json();
  }

  async function fetchView() {
    const reporting = fetchReporting();
    if (!state.unit) {
      const nation = await getJson(api("/v1/coverage"));
      return { unit: nation, rows: nation.items, reporting: await reporting };
    }
    const code = encodeURIComponent(state.unit);
    const [unit, children] = await Promise.all([
      getJson(api(`/v1/coverage/${code}`)),
      getJson(api(`/v1/coverage/${code}/children`)),
    ]);
    return { unit, rows: children.items, reporting: await reporting };
  }

  // The month the reporting column is of: the chosen day's, else this month in Vietnam.
  const reportingMonth = () => (state.asOf || todayInVietnam()).slice(0, 7);

  // Who reported in the month, per child unit ({code: row}); null when it cannot be read
  // (the column is then left out, the rest of the page unaffected).
  async function fetchReporting() {
    const params = { period: reportingMonth() };
    if (state.unit) params.parent = state.unit;
    try {
      const report = await getJson(api("/v1/reporting", params));
      return Object.fromEntries(report.items.map((row) => [row.code, row]));
    } catch {
      return null;
    }
  }

  async function refresh() {
    if (state.loading) {
      state.dirty = true;
      return state.loading;
    }
    state.loading = (async () => {
      do {
        state.dirty = false;
        const wanted = `${state.edition}:${state.unit}:${state.asOf}`;
        try {
          const [view, series] = await Promise.all([fetchView(), fetchSeries().catch(() => null)]);
          view.series = series;
          if (`${state.edition}:${state.unit}:${state.asOf}` !== wanted && state.edition !== null) continue;
          if (!state.edition) {
            state.edition = view.unit.edition;
            history.replaceState(null, "", pageUrl({}));
            connectLive();
          }
          showError(null);
          render(view);
          document.body.dataset.asOf = state.asOf || "today"; // the day the figures shown are of
          announceView(view.unit);
        } catch (error) {
          if (error.status === 401) {
            showError(null);
            askForKey(t("key_needed", { reason: error.message }));
          } else if (error.status === 403 && error.details.province && !state.unit) {
            // A key bound to one province: its province is where the figures start.
            navigate({ edition: error.details.edition, unit: error.details.province }, false);
          } else {
            showError(
              error.status === 404
                ? t("not_found", { code: state.unit })
                : t("load_failed", { reason: error.message }),
            );
          }
        }
      } while (state.dirty);
      state.loading = null;
      document.body.dataset.loaded = "true";
    })();
    return state.loading;
  }

  // The map (map.js) follows the view through these events and asks to navigate with one.
  function announceView(unit) {
    const detail = {
      edition: state.edition,
      unit: state.unit,
      level: unit.level,
      path: unit.path ?? [],
      asOf: state.asOf,
    };
    document.dispatchEvent(new CustomEvent("cdtt:view", { detail }));
  }

  function showError(message) {
    $("error").hidden = !message;
    $("error").textContent = message || "";
  }

  // ---- rendering ----------------------------------------------------------------------------

  const isNational = (unit) => !unit.code || unit.level === "national";
  const levelsOf = (unit) => LEVELS.filter((level) => unit.coverage && level in unit.coverage);

  function nameOf(unit) {
    return isNational(unit) ? t("national") : unit.name;
  }

  // A value shown in a cell: highlighted when it differs from what this cell showed before.
  function mark(node, key, value) {
    node.dataset.cell = key;
    const before = state.shown.get(key);
    state.fresh.set(key, value);
    if (before !== undefined && before !== value) {
      node.classList.add("changed");
      node.addEventListener("animationend", () => node.classList.remove("changed"), { once: true });
    }
    return node;
  }

  function bar(coverage) {
    const share = coverage && coverage.total > 0 ? coverage.covered / coverage.total : 0;
    const fill = el("span", { class: "bar-fill" });
    fill.style.width = `${(share * 100).toFixed(1)}%`;
    if (share >= 1) fill.classList.add("full");
    return el("span", { class: "bar", "aria-hidden": "true" }, fill);
  }

  function coverageCell(key, coverage) {
    const c = coverage || { covered: 0, total: 0 };
    const text = `${num(c.covered)}/${num(c.total)}`;
    return mark(
      el(
        "span",
        { class: "coverage" },
        el("span", { class: "ratio" }, text),
        el("span", { class: "pct" }, pct(c.covered, c.total)),
        bar(c),
      ),
      key,
      `${c.covered}/${c.total}`,
    );
  }

  function render(view, freshness) {
    const viewKey = `${state.edition}:${state.unit}`;
    if (!state.view || state.view.key !== viewKey) state.shown = new Map();
    state.fresh = new Map();
    state.view = { key: viewKey, ...view };
    const unit = view.unit;
    state.names.set(`${state.edition}:${unit.code ?? ""}`, unit.name);
    for (const row of view.rows) state.names.set(`${state.edition}:${row.code}`, row.name);

    document.title = `${nameOf(unit)} — ${t("title")}`;
    renderEditions();
    renderCrumbs(unit);
    renderHeadline(unit);
    renderTargets(unit);
    renderCameFrom(unit);
    renderTable(unit, view.rows, view.reporting);
    renderSupport(unit);
    renderSeries(view.series);
    const fresh = freshness ?? unit;
    renderFreshness(fresh.as_of, fresh.lag_ms);
    state.shown = state.fresh;
  }

  // ---- the date on screen, and the monthly series up to it --------------------------------

  function dayLabel(day) {
    const [year, month, date] = day.split("-").map(Number);
    return new Date(Date.UTC(year, month - 1, date)).toLocaleDateString(locale(), { timeZone: "UTC" });
  }

  function renderDate() {
    const input = $("as-of-date");
    input.max = todayInVietnam();
    input.min = EARLIEST_DATE;
    input.value = state.asOf || todayInVietnam();
    setLive(state.liveMode);
  }

  function monthsBack(month, count) {
    let [year, m] = month.split("-").map(Number);
    m -= count;
    while (m < 1) {
      m += 12;
      year -= 1;
    }
    return `${year}-${String(m).padStart(2, "0")}`;
  }

  async function fetchSeries() {
    const to = (state.asOf || todayInVietnam()).slice(0, 7);
    const from = [monthsBack(to, SERIES_MONTHS - 1), EARLIEST_DATE.slice(0, 7)].sort().at(-1);
    const path = state.unit ? `/v1/coverage/${encodeURIComponent(state.unit)}/series` : "/v1/coverage/series";
    return getJson(api(path, { from, to }, { live: true }));
  }

  // Lines: teams, then covered units per level below the unit; one scale (they are counts of
  // the same order: a covered unit has at least one team).
  const SERIES_STYLE = ["teams", ...LEVELS];

  function renderSeries(series) {
    const box = $("series-chart");
    box.replaceChildren();
    if (!series || series.months.length === 0) {
      $("series-caption").textContent = t("series");
      return;
    }
    const months = series.months;
    const range = { from: monthLabel(months[0].month), to: monthLabel(months.at(-1).month) };
    $("series-caption").textContent = t("series_caption", range);
    const levels = LEVELS.filter((level) => level in (months[0].coverage || {}));
    const lines = [
      { key: "teams", label: t("teams"), value: (m) => m.teams, change: (m) => m.change.teams },
      ...levels.map((level) => ({
        key: level,
        label: t("covered", { level: t("level_short")[level] }),
        value: (m) => m.coverage[level].covered,
        change: (m) => m.change.coverage[level],
      })),
    ];
    const last = months.at(-1);
    const signed = (n) => (n > 0 ? `+${num(n)}` : num(n));
    const summary = lines
      .map((line) => `${line.label} ${num(line.value(last))} (${t("change", { change: signed(line.change(last)) })})`)
      .join("; ");
    const legend = el("ul", { class: "series-legend" });
    for (const line of lines) {
      legend.append(
        el(
          "li",
          { class: `line-${SERIES_STYLE.indexOf(line.key)}` },
          el("span", { class: "swatch", "aria-hidden": "true" }),
          `${line.label}: ${num(line.value(last))} `,
          el("span", { class: "delta" }, `(${signed(line.change(last))})`),
        ),
      );
    }
    const max = Math.max(1, ...months.flatMap((m) => lines.map((line) => line.value(m))));
    if (max <= 0 || months.every((m) => lines.every((line) => line.value(m) === 0))) {
      box.append(el("p", { class: "empty" }, t("series_empty")));
      return;
    }
    const width = 720,
      height = 200,
      left = 40,
      right = 8,
      top = 10,
      bottom = 22;
    const x = (i) => left + ((width - left - right) * i) / Math.max(months.length - 1, 1);
    const y = (v) => height - bottom - ((height - top - bottom) * v) / max;
    const svg = svgEl("svg", {
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": t("series_label", { ...range, summary }),
      class: "lines",
    });
    for (const tick of [0, max / 2, max]) {
      const value = Math.round(tick);
      svg.append(svgEl("line", { x1: left, x2: width - right, y1: y(value), y2: y(value), class: "grid" }));
      svg.append(svgEl("text", { x: left - 4, y: y(value) + 3, class: "tick" }, num(value)));
    }
    const every = Math.ceil(months.length / 8);
    months.forEach((m, i) => {
      if (i % every === 0 || i === months.length - 1) {
        svg.append(svgEl("text", { x: x(i), y: height - 6, class: "label" }, monthLabel(m.month)));
      }
    });
    for (const line of lines) {
      const points = months.map((m, i) => `${x(i).toFixed(1)},${y(line.value(m)).toFixed(1)}`).join(" ");
      const group = svgEl("g", { class: `line-${SERIES_STYLE.indexOf(line.key)}` });
      group.append(svgEl("title", {}, line.label));
      group.append(svgEl("polyline", { points, fill: "none" }));
      svg.append(group);
    }
    box.append(svg, legend);
  }

  function renderEditions() {
    for (const button of document.querySelectorAll("button.edition")) {
      button.setAttribute("aria-pressed", String(button.dataset.edition === state.edition));
    }
  }

  function crumbPath(unit) {
    if (isNational(unit)) return [];
    return unit.path.map((code) => ({ code, name: state.names.get(`${state.edition}:${code}`) }));
  }

  function renderCrumbs(unit) {
    const items = [{ code: "", name: t("national") }, ...crumbPath(unit)];
    const list = $("crumbs");
    list.replaceChildren();
    list.parentElement.hidden = items.length < 2; // the nation alone: the heading says it
    items.forEach((item, index) => {
      const last = index === items.length - 1;
      const label = item.name ?? item.code;
      const node = last
        ? el("span", { "aria-current": "page" }, label)
        : viewLink({ unit: item.code }, label);
      list.append(el("li", null, node));
      if (!item.name && item.code) fillName(item.code);
    });
  }

  // A bookmarked deep link knows only codes: fetch the missing ancestors' names once.
  async function fillName(code) {
    const key = `${state.edition}:${code}`;
    if (state.names.has(key)) return;
    state.names.set(key, code);
    try {
      const unit = await getJson(api(`/v1/coverage/${encodeURIComponent(code)}`));
      state.names.set(key, unit.name);
      if (state.view) renderCrumbs(state.view.unit);
    } catch {
      state.names.delete(key);
    }
  }

  function viewLink(view, label) {
    const link = el("a", { href: pageUrl(view) }, label);
    link.addEventListener("click", (event) => {
      if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      navigate(view);
      $("unit-name").focus();
    });
    return link;
  }

  function renderHeadline(unit) {
    $("unit-name").textContent = nameOf(unit);
    $("unit-level").textContent = isNational(unit)
      ? `${t("level").national} · ${t(`edition_${state.edition}`)}`
      : `${t("level_one")[unit.level] ?? unit.level} · ${unit.code}`;
    const figures = $("headline");
    figures.replaceChildren();
    const figure = (label, value, key, note) => {
      figures.append(
        el(
          "div",
          { class: "figure" },
          el("dt", null, label),
          mark(el("dd", null, num(value)), `head:${key}`, value ?? 0),
          note ? mark(el("dd", { class: "note" }, note), `head:${key}:note`, note) : null,
        ),
      );
    };
    figure(t("teams"), unit.teams, "teams");
    const share = unit.members_trained_share;
    figure(
      t("members"),
      unit.members,
      "members",
      share === null || share === undefined ? null : t("trained_share", { share: percent(share) }),
    );
    // 2025 provinces and the nation: legacy teams of split communes still waiting for a
    // publisher to place them (counted in the teams above, covering no commune yet).
    if (unit.unplaced) figure(t("unplaced"), unit.unplaced.teams, "unplaced");
    for (const level of levelsOf(unit)) {
      figures.append(
        el(
          "div",
          { class: "figure wide" },
          el("dt", null, t("covered", { level: t("level_short")[level] })),
          el("dd", null, coverageCell(`head:${level}`, unit.coverage[level])),
        ),
      );
    }
    const support = unit.support || {};
    figure(t("events"), support.events, "events");
    figure(t("residents"), support.residents, "residents");
  }

  const percent = (share) =>
    new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 1 }).format(share);

  function targetLabel(figure) {
    const [what, part] = figure.split(".");
    if (what === "covered_pct") return t("target_covered", { level: t("level_short")[part] ?? part });
    if (what === "members_trained_pct") return t("target_trained");
    return t("outcome_name")[part] ?? part;
  }

  // One bar per part of the unit's target: how far the figure is towards it, and by when.
  function renderTargets(unit) {
    const parts = unit.targets || [];
    $("targets-section").hidden = parts.length === 0;
    const list = $("targets");
    list.replaceChildren();
    const today = state.asOf || todayInVietnam();
    for (const part of parts) {
      const isPct = !part.figure.startsWith("outcomes.");
      const shown = (v) => (isPct ? percent(v / 100) : num(v));
      const progress = part.progress ?? 0;
      const text =
        part.actual === null
          ? t("no_measure")
          : t("target_of", {
              actual: shown(part.actual),
              target: shown(part.target),
              progress: percent(progress),
            });
      const due = part.due
        ? t("due", { date: dayLabel(part.due) }) +
          (part.due < today && progress < 1 ? ` · ${t("overdue")}` : "")
        : "";
      const meter = el("progress", {
        class: "target-bar",
        max: "1",
        value: String(Math.min(progress, 1)),
        "aria-label": `${targetLabel(part.figure)}: ${text}`,
      });
      list.append(
        el(
          "li",
          { class: "target", "data-target": part.figure },
          el("span", { class: "target-name" }, targetLabel(part.figure)),
          meter,
          mark(el("span", { class: "target-figures" }, text), `target:${part.figure}`, text),
          el("span", { class: `target-due${due.includes(t("overdue")) ? " overdue" : ""}` }, due),
        ),
      );
    }
  }

  function renderOutcomes(support) {
    const totals = support.outcomes || {};
    const months = Object.keys(support.by_month || {}).sort();
    const latest = months[months.length - 1];
    const latestOutcomes = latest ? support.by_month[latest].outcomes || {} : {};
    const cards = $("outcome-cards");
    cards.replaceChildren();
    const body = $("outcomes-body");
    body.replaceChildren();
    $("outcomes-month-head").textContent = latest
      ? t("month_of", { month: monthLabel(latest) })
      : t("latest_month");
    for (const kind of OUTCOME_KINDS) {
      const total = totals[kind] ?? 0;
      cards.append(
        el(
          "div",
          { class: "figure" },
          el("dt", null, t("outcome_name")[kind]),
          mark(el("dd", null, num(total)), `outcome:${kind}`, total),
        ),
      );
      const month = latestOutcomes[kind] ?? 0;
      body.append(
        el(
          "tr",
          null,
          el("th", { scope: "row" }, t("outcome_name")[kind]),
          mark(el("td", { class: "num" }, num(total)), `outcome:${kind}:total`, total),
          mark(el("td", { class: "num" }, num(month)), `outcome:${kind}:month`, month),
        ),
      );
    }
  }

  // A child's reporting this month: reporting/active teams and the rate; at commune level
  // and below, the silent teams behind a disclosure (one click away).
  const openSilent = new Set();

  function reportingCell(key, row) {
    if (!row) return el("td", { class: "num" }, "");
    if (!row.active_teams) return mark(el("td", { class: "num muted" }, t("no_active")), key, "none");
    const text = `${t("reporting_cell", { reporting: num(row.reporting_teams), active: num(row.active_teams) })} · ${percent(row.reporting_rate)}`;
    const cell = el("td", { class: "num reporting" }, mark(el("span", null, text), key, text));
    if (row.silent && row.silent.length) {
      const list = el("ul", { class: "silent-list" });
      for (const team of row.silent) {
        list.append(
          el("li", null, t("silent_team", { team: team.team_id.slice(0, 8), unit: team.unit_code })),
        );
      }
      // Kept open across re-renders (live changes, sorting) once the operator opened it.
      const details = el(
        "details",
        { class: "silent", open: openSilent.has(row.code) },
        el("summary", null, t("silent", { count: num(row.silent.length) })),
        list,
      );
      details.addEventListener("toggle", () => {
        if (details.open) openSilent.add(row.code);
        else openSilent.delete(row.code);
      });
      cell.append(details);
    }
    return cell;
  }

  // A 2025 unit's legacy predecessors (the reform's crosswalk), each a link to its legacy
  // view, where the teams registered before the merger are seen on the old map.
  function renderCameFrom(unit) {
    const items = unit.came_from || [];
    $("came-from").hidden = items.length === 0;
    $("came-from-list").replaceChildren(
      ...items.map((item) =>
        el(
          "li",
          { "data-code": item.code },
          viewLink({ edition: "legacy", unit: item.code, sort: "" }, item.name ?? item.code),
          el("span", { class: "came-from-code" }, ` ${item.code}`),
          item.partly ? el("span", { class: "came-from-partly" }, ` (${t("partly")})`) : null,
        ),
      ),
    );
  }

  function columnsFor(rows, reporting) {
    const columns = [
      { key: "name", label: t("name"), value: (r) => r.name },
      { key: "teams", label: t("teams"), value: (r) => r.teams ?? 0 },
      { key: "members", label: t("members"), value: (r) => r.members ?? 0 },
    ];
    const levels = LEVELS.filter((level) => rows.some((r) => r.coverage && level in r.coverage));
    for (const level of levels) {
      columns.push({
        key: level,
        label: t("covered", { level: t("level_short")[level] }),
        value: (r) => ratio(r.coverage?.[level]),
        coverage: level,
      });
    }
    const rowsAreVillages = rows.length > 0 && rows.every((r) => r.level === "village");
    if (rowsAreVillages || rows.some((r) => r.has_team)) {
      columns.push({ key: "has_team", label: t("has_team"), value: (r) => (r.has_team ? 1 : 0), flag: true });
    }
    if (reporting && rows.length > 0) {
      columns.push({
        key: "reporting",
        label: t("reporting", { month: monthLabel(reportingMonth()) }),
        value: (r) => reporting[r.code]?.reporting_rate ?? -1,
        reporting: true,
      });
    }
    return columns;
  }

  function sortedRows(rows, columns) {
    const [key, dir] = state.sort.startsWith("-") ? [state.sort.slice(1), -1] : [state.sort, 1];
    const column = columns.find((c) => c.key === key);
    if (!column) return rows;
    const collator = new Intl.Collator(locale(), { sensitivity: "base", numeric: true });
    return [...rows].sort((a, b) => {
      const x = column.value(a);
      const y = column.value(b);
      const order = typeof x === "string" ? collator.compare(x, y) : x - y;
      return order * dir || collator.compare(a.code, b.code);
    });
  }

  function renderTable(unit, rows, reporting) {
    const childLevel = rows[0]?.level ?? (isNational(unit) ? "province" : null);
    const levelName = t("level")[childLevel] ?? "";
    $("table-title").textContent = isNational(unit)
      ? levelName
      : t("children", { level: levelName, name: unit.name });
    $("table-caption").textContent = $("table-title").textContent;
    $("export").href = api("/v1/coverage.csv", unit.code ? { parent: unit.code } : {});
    const dated = state.asOf ? `-${state.asOf}` : "";
    $("export").setAttribute("download", `cdtt-${state.edition}-${unit.code || "national"}${dated}.csv`);

    const columns = columnsFor(rows, reporting);
    const head = $("table-head");
    const focused = document.activeElement?.dataset?.focusKey;
    head.replaceChildren();
    const [sortKey, sortDir] = state.sort.startsWith("-")
      ? [state.sort.slice(1), "descending"]
      : [state.sort, "ascending"];
    for (const column of columns) {
      const active = column.key === sortKey;
      // Names sort A→Z first, figures largest first; a second press reverses.
      const firstDescending = column.key !== "name";
      const descendingNext = active ? sortDir === "ascending" : firstDescending;
      const next = descendingNext ? `-${column.key}` : column.key;
      const button = el(
        "button",
        {
          type: "button",
          class: "sort",
          "data-focus-key": `sort:${column.key}`,
          title: t("sort_by", { column: column.label }),
        },
        column.label,
        el(
          "span",
          { class: "arrow", "aria-hidden": "true" },
          active ? (sortDir === "ascending" ? "▲" : "▼") : "↕",
        ),
      );
      button.addEventListener("click", () => {
        state.sort = next;
        history.replaceState(null, "", pageUrl({}));
        render(state.view); // sorting needs no fetch
      });
      head.append(
        el(
          "th",
          {
            scope: "col",
            class: column.key === "name" ? "name" : "num",
            "aria-sort": active ? sortDir : null,
          },
          button,
        ),
      );
    }

    const body = $("table-body");
    body.replaceChildren();
    for (const row of sortedRows(rows, columns)) {
      const tr = el("tr", { "data-code": row.code });
      for (const column of columns) {
        const key = `row:${row.code}:${column.key}`;
        if (column.key === "name") {
          const label = el("span", { class: "unit-code" }, row.code);
          const link =
            row.level === "village"
              ? el("span", { class: "unit-name" }, row.name)
              : viewLink({ unit: row.code }, row.name);
          link.dataset.focusKey = `unit:${row.code}`;
          tr.append(el("th", { scope: "row", class: "name" }, link, " ", label));
        } else if (column.coverage) {
          tr.append(el("td", { class: "num" }, coverageCell(key, row.coverage?.[column.coverage])));
        } else if (column.reporting) {
          tr.append(reportingCell(key, reporting[row.code]));
        } else if (column.flag) {
          const has = Boolean(row.has_team);
          tr.append(
            mark(
              el("td", { class: `flag ${has ? "yes" : "no"}` }, has ? `✓ ${t("yes")}` : t("no")),
              key,
              has,
            ),
          );
        } else {
          const value = column.value(row);
          tr.append(mark(el("td", { class: "num" }, num(value)), key, value));
        }
      }
      body.append(tr);
    }
    $("empty").hidden = rows.length > 0;
    if (focused) document.querySelector(`[data-focus-key="${CSS.escape(focused)}"]`)?.focus();
  }

  function renderSupport(unit) {
    const support = unit.support || {};
    const byCategory = support.by_category || {};
    const body = $("categories-body");
    body.replaceChildren();
    for (const category of CATEGORIES) {
      const { events = 0, residents = 0 } = byCategory[category] || {};
      body.append(
        el(
          "tr",
          null,
          el("th", { scope: "row" }, t("category_name")[category]),
          mark(el("td", { class: "num" }, num(events)), `cat:${category}:events`, events),
          mark(el("td", { class: "num" }, num(residents)), `cat:${category}:residents`, residents),
        ),
      );
    }
    $("categories-total").replaceChildren(
      el("th", { scope: "row" }, t("total")),
      el("td", { class: "num" }, num(support.events)),
      el("td", { class: "num" }, num(support.residents)),
    );
    renderOutcomes(support);
    renderChart(monthly(support.by_month));
  }

  // by_month is {"YYYY-MM": {events, residents}}: the last twelve months with support, in order.
  function monthly(byMonth) {
    return Object.entries(byMonth || {})
      .map(([month, figures]) => ({ month, residents: figures.residents, events: figures.events }))
      .sort((a, b) => a.month.localeCompare(b.month))
      .slice(-12);
  }

  function monthLabel(month) {
    const [year, m] = month.split("-");
    return state.lang === "vi"
      ? `T${Number(m)}/${year.slice(2)}`
      : new Date(Date.UTC(year, m - 1, 1)).toLocaleString("en-GB", {
          month: "short",
          year: "2-digit",
          timeZone: "UTC",
        });
  }

  function renderChart(months) {
    const box = $("chart");
    box.replaceChildren();
    if (months.length === 0) {
      box.append(el("p", { class: "empty" }, t("no_support")));
      return;
    }
    const width = 360,
      height = 170,
      top = 18,
      bottom = 24;
    const max = Math.max(...months.map((m) => m.residents), 1);
    const slot = width / months.length;
    const barWidth = Math.min(36, slot * 0.7);
    const summary = months.map((m) => `${monthLabel(m.month)}: ${num(m.residents)}`).join("; ");
    const svg = svgEl("svg", {
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": t("chart_label", { summary }),
      class: "bars",
    });
    svg.append(svgEl("line", { x1: 0, x2: width, y1: height - bottom, y2: height - bottom, class: "axis" }));
    // Value labels must not run into each other: exact figures when they fit the slot,
    // compact ones ("12 N", "12K") when they do not, and a label that would still touch its
    // left neighbour's is lifted above it (the exact figure is always in the bar's title).
    const exact = months.map((m) => num(m.residents));
    const compact = new Intl.NumberFormat(locale(), { notation: "compact", maximumFractionDigits: 1 });
    const labelWidth = (text) => text.length * 6.2; // 10px bold digits, with their gaps
    const fits = exact.every((text) => labelWidth(text) <= slot - 2);
    let previous = null; // {right, top} of the last label placed
    let highest = 0; // the top of the highest label: the view grows upwards to show it
    months.forEach((m, i) => {
      const h = ((height - top - bottom) * m.residents) / max;
      const x = i * slot + (slot - barWidth) / 2;
      const y = height - bottom - h;
      const valueText = fits ? exact[i] : compact.format(m.residents);
      const half = labelWidth(valueText) / 2;
      let valueY = y - 4;
      if (previous && x + barWidth / 2 - half < previous.right && valueY > previous.top - 2) {
        valueY = previous.top - 2; // stacked just above the neighbour's label
      }
      previous = { right: x + barWidth / 2 + half, top: valueY - 10 };
      highest = Math.min(highest, valueY - 12);
      const group = svgEl("g", { class: "month" });
      group.append(
        svgEl(
          "title",
          {},
          `${monthLabel(m.month)}: ${num(m.residents)} ${t("residents").toLowerCase()}, ${num(m.events)} ${t("events").toLowerCase()}`,
        ),
      );
      group.append(
        svgEl("rect", {
          x: x.toFixed(1),
          y: y.toFixed(1),
          width: barWidth.toFixed(1),
          height: Math.max(h, 1).toFixed(1),
          rx: 2,
        }),
      );
      group.append(
        svgEl(
          "text",
          { x: (x + barWidth / 2).toFixed(1), y: valueY.toFixed(1), class: "value" },
          valueText,
        ),
      );
      group.append(
        svgEl(
          "text",
          { x: (x + barWidth / 2).toFixed(1), y: height - 8, class: "label" },
          monthLabel(m.month),
        ),
      );
      svg.append(group);
    });
    if (highest < 0) svg.setAttribute("viewBox", `0 ${highest.toFixed(1)} ${width} ${(height - highest).toFixed(1)}`);
    box.append(svg);
  }

  function renderFreshness(asOf, lagMs) {
    const parts = [];
    if (asOf) {
      const time = new Date(asOf);
      if (!Number.isNaN(time.getTime())) {
        parts.push(t("as_of", { time: time.toLocaleTimeString(locale(), { hour12: false }) }));
      }
    }
    if (typeof lagMs === "number") {
      const lag =
        lagMs < 1000
          ? `${num(Math.round(lagMs))} ms`
          : `${new Intl.NumberFormat(locale(), { maximumFractionDigits: 1 }).format(lagMs / 1000)} s`;
      parts.push(t("lag", { lag }));
    }
    $("as-of").textContent = parts.join(" · ");
  }

  // ---- live: Server-Sent Events, reconnected by us with a short backoff ---------------------

  // Over a past date the figures stand still: the status says so whatever the stream does.
  function setLive(mode) {
    state.liveMode = mode;
    const box = $("live");
    box.dataset.state = state.asOf ? "past" : mode;
    $("live-text").textContent = state.asOf ? t("past", { date: dayLabel(state.asOf) }) : t(mode);
  }

  function connectLive() {
    if (state.source) state.source.close();
    if (!state.edition) return;
    setLiveCookie(true);
    const source = new EventSource(api("/v1/live", {}, { live: true }));
    state.source = source;
    source.onopen = () => {
      setLiveCookie(false);
      state.attempts = 0;
      setLive("live");
      refresh(); // whatever changed before this stream began (or while it was down) is fetched
    };
    source.addEventListener("coverage", (event) => onLive(event.data));
    source.onerror = () => {
      setLiveCookie(false);
      if (state.source !== source) return;
      source.close();
      setLive("lost");
      const delay = RECONNECT_MS[Math.min(state.attempts, RECONNECT_MS.length - 1)];
      state.attempts += 1;
      setTimeout(() => state.source === source && connectLive(), delay);
    };
  }

  function onLive(data) {
    let change;
    try {
      change = JSON.parse(data);
    } catch {
      return;
    }
    if (change.edition !== state.edition) return;
    // Live changes are today's figures: never shown over a past date.
    if (state.asOf) return;
    document.dispatchEvent(new CustomEvent("cdtt:live", { detail: change }));
    // `codes` are the units whose figures moved (each with its ancestors and the nation, ""):
    // a view whose unit is not among them has nothing new to show.
    const codes = change.codes ?? [];
    if (!codes.includes(state.unit)) return;
    if (state.loading || !state.view || state.view.key !== `${state.edition}:${state.unit}`) {
      refresh(); // a fetch in flight may predate this change: it runs once more afterwards
      return;
    }
    applyChange(change);
  }

  // The event carries the changed units' new figures: update the view without a fetch.
  function applyChange(change) {
    const byCode = new Map((change.units ?? []).map((unit) => [unit.code ?? "", unit]));
    const unit = byCode.get(state.unit) ?? state.view.unit;
    const rows = state.view.rows.map((row) => byCode.get(row.code) ?? row);
    const known = new Set(rows.map((row) => row.code));
    for (const candidate of byCode.values()) {
      if (candidate.code && !known.has(candidate.code) && isChildInView(candidate)) rows.push(candidate);
    }
    rows.sort((a, b) => (a.code < b.code ? -1 : a.code > b.code ? 1 : 0));
    render({ unit, rows, series: state.view.series, reporting: state.view.reporting }, change);
  }

  function isChildInView(unit) {
    const path = unit.path ?? [];
    return state.unit ? path[path.length - 2] === state.unit : path.length === 1;
  }

  // ---- page chrome ----------------------------------------------------------------------------

  function translatePage() {
    document.documentElement.lang = state.lang;
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
    for (const node of document.querySelectorAll("[data-i18n-aria]"))
      node.setAttribute("aria-label", t(node.dataset.i18nAria));
    const lang = $("lang");
    lang.textContent = t("lang_other");
    lang.lang = state.lang === "vi" ? "en" : "vi";
    setLive(state.liveMode);
    document.dispatchEvent(new CustomEvent("cdtt:lang"));
  }

  // With a key the CSV comes through fetch (a plain link cannot send the header).
  async function downloadCsv(event) {
    if (!storedKey()) return;
    event.preventDefault();
    const link = event.currentTarget;
    try {
      const response = await fetch(link.href, { headers: authHeaders(), cache: "no-store" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const url = URL.createObjectURL(await response.blob());
      const save = el("a", { href: url, download: link.getAttribute("download") });
      document.body.append(save);
      save.click();
      save.remove();
      setTimeout(() => URL.revokeObjectURL(url), 0);
    } catch (error) {
      showError(t("load_failed", { reason: error.message }));
    }
  }

  function start() {
    $("export").addEventListener("click", downloadCsv);
    document.addEventListener("cdtt:navigate", (event) => {
      navigate({ unit: event.detail.unit });
      $("unit-name").focus();
    });
    for (const button of document.querySelectorAll("button.edition")) {
      button.addEventListener("click", () => {
        if (button.dataset.edition !== state.edition)
          navigate({ edition: button.dataset.edition, unit: "", sort: "" });
      });
    }
    $("as-of-date").addEventListener("change", (event) => {
      const asOf = asOfFrom(event.target.value);
      if (asOf !== state.asOf) navigate({ asOf });
      else renderDate(); // an emptied or out-of-range entry shows the day in force again
    });
    $("lang").addEventListener("click", () => {
      state.lang = state.lang === "vi" ? "en" : "vi";
      history.replaceState(null, "", pageUrl({}));
      translatePage();
      if (state.view) render(state.view);
    });
    translatePage();
    renderDate();
    refresh();
    connectLive();
  }

  start();
})();
