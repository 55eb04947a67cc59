// Trollama status dashboard: refetches the JSON API and redraws in place.
"use strict";

const DEFAULT_REFRESH_MS = 5000;
const ALERTS_SHOWN = 50;
const ICONS = { up: "●", degraded: "▲", down: "✖", unknown: "?" };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function when(epoch) {
  return epoch ? new Date(epoch * 1000).toLocaleString() : "—";
}

function percent(share) {
  return share === null || share === undefined ? "—" : `${(share * 100).toFixed(2)}%`;
}

function bars(hours) {
  const box = el("div", { class: "bars", role: "img", "aria-label": "Uptime per hour, last 24 hours" });
  for (const hour of hours) {
    const label = hour.uptime === null
      ? `${when(hour.start)}: no samples`
      : `${when(hour.start)}: ${percent(hour.uptime)} up (${hour.up} up, ${hour.degraded} degraded, ${hour.down} down)`;
    box.append(el("div", { class: `bar ${hour.worst}`, title: label }));
  }
  return box;
}

function tile(target) {
  const latency = target.latency_ms === null ? "—" : `${Math.round(target.latency_ms)} ms`;
  const degraded = target.degraded_24h ? ` (${target.degraded_24h} degraded)` : "";
  return el("article", { class: `tile ${target.state}`, "data-testid": `tile-${target.name}`, "aria-label": `${target.name}: ${target.state}` },
    el("h3", {}, target.name),
    el("div", { class: "state" },
      el("span", { class: "icon", "aria-hidden": "true" }, ICONS[target.state] || "?"),
      el("span", { "data-testid": `state-${target.name}` }, target.state.toUpperCase())),
    el("div", { class: "facts" },
      el("span", {}, "latency ", el("strong", {}, latency)),
      el("span", {}, "24 h uptime ", el("strong", { "data-testid": `uptime-${target.name}` }, percent(target.uptime_24h)), degraded)),
    el("div", { class: "reason" }, target.reason || ""),
    bars(target.hours),
    el("div", { class: "bars-caption", "aria-hidden": "true" }, el("span", {}, "24 h ago"), el("span", {}, "now")));
}

function alertRow(alert) {
  const open = alert.resolved_at === null;
  const state = open ? "open" : "resolved";
  const period = open ? `since ${when(alert.started_at)}` : `${when(alert.started_at)} → ${when(alert.resolved_at)}`;
  return el("li", { class: `alert ${state}`, "data-testid": `alert-${alert.target}-${state}`, "data-alert-id": alert.id },
    el("span", { class: "badge" }, state),
    el("strong", {}, alert.target),
    el("span", {}, `${alert.kind}: ${alert.message}`),
    el("span", { class: "when" }, period));
}

function renderStatus(report) {
  document.querySelector('[data-testid="tiles"]').replaceChildren(...report.targets.map(tile));
  const down = report.targets.filter((t) => t.state === "down").map((t) => t.name);
  const degraded = report.targets.filter((t) => t.state === "degraded").map((t) => t.name);
  let summary = "All services up";
  if (down.length) summary = `Down: ${down.join(", ")}`;
  else if (degraded.length) summary = `Degraded: ${degraded.join(", ")}`;
  document.querySelector('[data-testid="summary"]').textContent = summary;
  document.querySelector('[data-testid="updated"]').textContent = `Updated ${new Date().toLocaleTimeString()}`;
}

function renderAlerts(alerts) {
  const list = document.querySelector('[data-testid="alerts"]');
  list.replaceChildren(...(alerts.length ? alerts.map(alertRow) : [el("li", { class: "empty" }, "No alerts. All quiet.")]));
}

function renderExtras(extras) {
  const depth = extras.brain.queue_depth;
  document.querySelector('[data-testid="queue-depth"]').textContent = depth === null ? "—" : String(depth);
  document.querySelector('[data-testid="store-state"]').textContent = extras.store.reachable ? "OK" : "unreachable";
  const log = extras.logging;
  document.querySelector('[data-testid="log-cleanup"]').textContent = log.reachable
    ? `last ${log.last_cleanup_at ?? "never"}, ${log.files_deleted ?? 0} files deleted` : "unreachable";
  document.querySelector('[data-testid="log-fallback"]').textContent =
    log.fallback_active === null ? "—" : (log.fallback_active ? "ACTIVE" : "off");
  const rows = {};
  for (const row of extras.brain.tokens) {
    const key = `${row.route}\u0000${row.model}`;
    rows[key] = rows[key] || { route: row.route, model: row.model, in: 0, out: 0 };
    rows[key][row.direction === "in" ? "in" : "out"] += row.tokens;
  }
  const body = document.querySelector('[data-testid="tokens"] tbody');
  const values = Object.values(rows);
  body.replaceChildren(...(values.length
    ? values.map((r) => el("tr", {}, el("td", {}, r.route), el("td", {}, r.model), el("td", {}, r.in), el("td", {}, r.out)))
    : [el("tr", {}, el("td", { colspan: "4", class: "empty" }, "No token figures yet"))]));
}

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

async function refresh() {
  let delay = DEFAULT_REFRESH_MS;
  try {
    const [status, alerts, extras] = await Promise.all([
      getJson("/api/status"), getJson(`/api/alerts?limit=${ALERTS_SHOWN}`), getJson("/api/extras"),
    ]);
    renderStatus(status);
    renderAlerts(alerts);
    renderExtras(extras);
    delay = status.refresh_seconds * 1000;
  } catch (error) {
    document.querySelector('[data-testid="summary"]').textContent = `Monitor unreachable (${error.message})`;
  }
  setTimeout(refresh, delay);
}

refresh();
