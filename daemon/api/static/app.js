// The web timeline: reads /api/v1 and keeps the page in step with it.
// Filters live in the URL fragment, so a view can be bookmarked and shared.
"use strict";

const FILTERS = ["actor", "user", "ip", "host", "account", "region", "dataset", "action",
  "outcome", "source", "since", "until"];
const PAGE = 100;
const POLL_MS = 5000;

const state = {
  filters: {},      // name -> value, plus q
  cursor: null,     // next_cursor of the last page loaded
  ids: new Set(),   // events shown
  zone: "UTC",
  token: sessionStorage.getItem("auditcorr-token"),
  evidence: new Set(),
  review: null,     // id of the change record whose review is open
};

const $ = (selector) => document.querySelector(selector);

class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, params) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const headers = state.token ? { Authorization: `Bearer ${state.token}` } : {};
  const response = await fetch(url, { headers });
  if (response.status === 401) $("#token-box").hidden = false;
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
    throw new HttpError(response.status, message);
  }
  return response.json();
}

// -- times -----------------------------------------------------------------------

let clock = null;
function localTime(iso) {
  if (!clock) {
    clock = new Intl.DateTimeFormat("sv-SE", {
      timeZone: state.zone, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
    });
  }
  return clock.format(new Date(iso));
}

// -- filters and the URL ---------------------------------------------------------

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  state.filters = {};
  state.review = params.get("review");
  for (const [key, value] of params) {
    if (key === "q" || FILTERS.includes(key)) state.filters[key] = value;
  }
}

function writeHash() {
  const params = new URLSearchParams(state.filters);
  if (state.review) params.set("review", state.review);
  const hash = params.toString();
  if (location.hash.slice(1) !== hash) history.replaceState(null, "", hash ? `#${hash}` : location.pathname);
}

function setFilter(name, value) {
  if (value === undefined || value === null || value === "") delete state.filters[name];
  else state.filters[name] = value;
  writeHash();
  reload();
}

// "user:alice ip:10.0.0.1 deleted bucket" -> chips user, ip and the words as q
function parseSearch(text) {
  const words = [];
  for (const part of text.trim().split(/\s+/)) {
    const match = part.match(/^([a-z]+):(.+)$/);
    if (match && FILTERS.includes(match[1])) state.filters[match[1]] = match[2];
    else if (part) words.push(part);
  }
  if (words.length) state.filters.q = words.join(" ");
  else delete state.filters.q;
}

function renderChips() {
  const box = $("#chips");
  box.replaceChildren();
  for (const [name, value] of Object.entries(state.filters)) {
    const chip = document.createElement("span");
    chip.className = "chip";
    chip.dataset.filter = name;
    chip.textContent = `${name === "q" ? "text" : name}: ${value}`;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "×";
    remove.setAttribute("aria-label", `Remove filter ${name} ${value}`);
    remove.addEventListener("click", () => setFilter(name, null));
    chip.append(remove);
    box.append(chip);
  }
}

// -- the timeline ----------------------------------------------------------------

function badgeText(item) {
  const doc = item.document;
  if (item.label) {
    // The log type's badge (AWS, ...), then the account or project and the region.
    const cloud = doc.cloud || {};
    const account = (cloud.account && cloud.account.id) || (cloud.project && cloud.project.id);
    return [item.label, account, cloud.region].filter(Boolean).join(" ");
  }
  if (item.lane === "change") return "change";
  if (item.lane === "alert") return `alert ${(doc.labels && doc.labels.severity) || ""}`.trim();
  return (doc.host && doc.host.name) || item.source;
}

function link(text, name, value) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "link";
  button.textContent = text;
  button.title = `Show only ${name} ${value}`;
  button.addEventListener("click", (event) => { event.stopPropagation(); setFilter(name, value); });
  return button;
}

function renderEvent(item) {
  const doc = item.document;
  const event = doc.event || {};
  const row = $("#row").content.firstElementChild.cloneNode(true);
  row.dataset.id = item.id;
  row.dataset.eventId = event.id || "";
  row.dataset.lane = item.lane;
  const time = row.querySelector("time");
  time.dateTime = doc["@timestamp"];
  time.textContent = localTime(doc["@timestamp"]);
  time.title = `${doc["@timestamp"]} (UTC)`;
  const badge = row.querySelector(".badge");
  badge.className = `badge ${item.lane}`;
  badge.textContent = badgeText(item);
  badge.title = `${item.lane} · source ${item.source}`;
  if (item.lane === "change" && doc.change && doc.change.id) reviewBadge(badge, doc.change.id);
  const who = row.querySelector(".who");
  const user = (doc.user && doc.user.name) || null;
  if (doc.actor) who.append(link(doc.actor, "actor", doc.actor));
  else if (user) who.append(link(user, "user", user));
  else who.textContent = "–";
  // An alert's entry reads as its rule's title; an event as its action.
  const headline = item.lane === "alert" ? doc.message : event.action || doc.message;
  row.querySelector(".action").textContent = headline || "–";
  row.querySelector(".action").title = doc.message || event.action || "";
  const outcome = row.querySelector(".outcome");
  outcome.textContent = event.outcome || "";
  outcome.classList.toggle("failure", event.outcome === "failure");
  const from = row.querySelector(".from");
  const ip = doc.source && doc.source.ip;
  const host = doc.host && doc.host.name;
  if (ip) from.append(link(ip, "ip", ip));
  else if (host && item.lane === "onprem") from.append(link(host, "host", host));
  if (isEvidence(row)) row.classList.add("evidence");
  row.querySelector(".open").addEventListener("click", () => toggleDetails(row));
  row.addEventListener("focus", () => markCurrent(row));
  return row;
}

async function toggleDetails(row) {
  const pre = row.querySelector(".details");
  const button = row.querySelector(".open");
  if (!pre.hidden) {
    pre.hidden = true;
    button.setAttribute("aria-expanded", "false");
    return;
  }
  pre.textContent = "loading…";
  pre.hidden = false;
  button.setAttribute("aria-expanded", "true");
  try {
    const [full, covered] = await Promise.all([
      api(`/api/v1/events/${row.dataset.id}`), coverageText(row.dataset.id)]);
    pre.textContent = `change records: ${covered}\n\n${JSON.stringify(full.document, null, 2)}`;
  } catch (error) {
    pre.textContent = `could not load the event: ${error.message}`;
  }
}

function query(extra) {
  return { ...state.filters, limit: PAGE, ...extra };
}

async function loadPage(append) {
  const status = $("#status");
  status.textContent = "loading…";
  try {
    const page = await api("/api/v1/events", query({ cursor: append ? state.cursor : null }));
    const list = $("#timeline");
    if (!append) { list.replaceChildren(); state.ids.clear(); }
    for (const item of page.events) {
      if (state.ids.has(item.id)) continue;
      state.ids.add(item.id);
      list.append(renderEvent(item));
    }
    state.cursor = page.next_cursor;
    $("#more").hidden = !state.cursor;
    status.textContent = state.ids.size ? `${state.ids.size} events shown${state.cursor ? "; older ones below" : ""}`
      : "No events match.";
    return page.events;
  } catch (error) {
    status.textContent = `Could not load events: ${error.message}`;
    return [];
  }
}

// New events since the last look go on top; only while the newest are in view.
async function poll() {
  if (!$("#live").checked || document.hidden || state.filters.until) return;
  try {
    const page = await api("/api/v1/events", query({ limit: 50 }));
    const list = $("#timeline");
    const fresh = page.events.filter((item) => !state.ids.has(item.id));
    for (const item of fresh.reverse()) {
      state.ids.add(item.id);
      const row = renderEvent(item);
      row.classList.add("fresh");
      // Keep time order: a late event goes below newer ones already shown.
      const after = [...list.children].find((other) => BigInt(other.dataset.id) < BigInt(item.id));
      list.insertBefore(row, after || null);
    }
    if (fresh.length) { loadHistogram(); loadSources(); }
  } catch (_) { /* the next poll tries again */ }
}

// -- histogram -------------------------------------------------------------------

const LANES = ["cloud", "onprem", "change", "alert"];
let histogramSpan = null;

async function loadHistogram(newest) {
  let { since, until } = state.filters;
  if (!until && newest) until = newest;
  if (!until && histogramSpan) until = histogramSpan.until;
  try {
    const data = await api("/api/v1/histogram", { since, until });
    histogramSpan = { until: state.filters.until ? null : until };
    drawHistogram(data);
  } catch (error) {
    $("#range").textContent = `histogram: ${error.message}`;
  }
}

function drawHistogram(data) {
  const svg = $("#chart");
  const width = 1000;
  const height = 90;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren();
  const buckets = data.buckets;
  const top = Math.max(1, ...buckets.map((b) => b.cloud + b.onprem + b.change));
  const step = width / Math.max(buckets.length, 1);
  const ns = "http://www.w3.org/2000/svg";
  buckets.forEach((bucket, i) => {
    let y = height;
    const total = bucket.cloud + bucket.onprem + bucket.change;
    for (const lane of LANES) {
      if (!bucket[lane]) continue;
      const h = (bucket[lane] / top) * (height - 4);
      y -= h;
      const rect = document.createElementNS(ns, "rect");
      rect.setAttribute("x", (i * step + 0.5).toFixed(1));
      rect.setAttribute("y", y.toFixed(1));
      rect.setAttribute("width", Math.max(step - 1, 0.5).toFixed(1));
      rect.setAttribute("height", h.toFixed(1));
      rect.setAttribute("class", `lane-${lane}`);
      rect.setAttribute("fill", "currentColor");
      const title = document.createElementNS(ns, "title");
      title.textContent = `${localTime(bucket.start)}: ${total} events (${LANES.map((l) => `${l} ${bucket[l]}`).join(", ")})`;
      rect.append(title);
      rect.addEventListener("click", () => {
        const start = new Date(bucket.start);
        const end = new Date(start.getTime() + data.interval_secs * 1000 - 1);
        state.filters.since = start.toISOString();
        state.filters.until = end.toISOString();
        writeHash();
        reload();
      });
      svg.append(rect);
    }
  });
  $("#range").textContent = `${localTime(data.since)} – ${localTime(data.until)} (${state.zone}), ${data.interval_secs / 60} min bars`;
}

// -- change reviews --------------------------------------------------------------
// A change record's badge opens its post-implementation review above the timeline:
// what its implementers did in its window, in scope or not and why, and what touched
// its scope outside the window. The open review is in the URL fragment (review=ID).

function reviewBadge(badge, id) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = badge.className;
  button.textContent = `change ${id}`;
  button.title = `Review ${id}: what was done under it`;
  button.addEventListener("click", (event) => {
    event.stopPropagation();
    state.review = id;
    writeHash();
    showReview();
  });
  badge.replaceWith(button);
}

async function showReview() {
  const box = $("#review");
  if (!state.review) { box.hidden = true; box.replaceChildren(); return; }
  box.hidden = false;
  box.textContent = "loading…";
  try {
    renderReview(box, await api(`/api/v1/changes/${encodeURIComponent(state.review)}/review`));
  } catch (error) {
    box.replaceChildren(reviewHeading(state.review, null),
      `Could not load the review: ${error.message}`);
  }
}

function reviewHeading(id, verdict) {
  const heading = document.createElement("h2");
  heading.textContent = `Review of ${id} `;
  if (verdict) {
    const mark = document.createElement("span");
    mark.className = `verdict ${verdict}`;
    mark.textContent = verdict.replaceAll("_", " ");
    heading.append(mark);
  }
  const close = document.createElement("button");
  close.type = "button";
  close.className = "close";
  close.textContent = "×";
  close.setAttribute("aria-label", "Close the review");
  close.addEventListener("click", () => { state.review = null; writeHash(); showReview(); });
  heading.append(close);
  return heading;
}

function renderReview(box, review) {
  const change = review.change;
  const facts = document.createElement("p");
  const people = review.implementers.map((i) => {
    const who = i.people.map((p) => `${p.id}${p.name ? ` (${p.name})` : ""}: ${p.accounts.join(", ")}`);
    return `${i.name} → ${who.join("; ") || "nobody in the identity map"}`;
  });
  facts.textContent = `${change.title || ""} · ${change.state} · window `
    + `${localTime(change.window.start)} – ${localTime(change.window.end)} · implementers: `
    + (people.join(" / ") || "anyone");
  const counts = review.counts;
  const summary = document.createElement("p");
  summary.className = "muted";
  summary.textContent = `${counts.in_scope} in scope, ${counts.out_of_scope} out of scope in the `
    + `window; ${counts.outside_window} outside it covered by nothing, `
    + `${counts.outside_covered} covered by another record`;
  box.replaceChildren(reviewHeading(change.id, review.verdict), facts, summary,
    reviewList("In the window, by the implementers", review.inside, (seen) => seen.in_scope
      ? ["in scope", "in"] : [`out of scope: ${seen.reasons.join("; ")}`, "out"]),
    reviewList("On its scope outside the window, by anyone", review.outside, (seen) =>
      seen.covered_by.length ? [`${seen.when}, covered by ${seen.covered_by.join(", ")}`, "in"]
        : [`${seen.when}, not covered`, "out"]));
}

// Each event of a review shows itself on the timeline when clicked.
function reviewList(title, events, note) {
  const section = document.createElement("div");
  const heading = document.createElement("h3");
  heading.textContent = `${title} (${events.length})`;
  section.append(heading);
  const list = document.createElement("ul");
  for (const seen of events) {
    const li = document.createElement("li");
    li.dataset.key = seen.key;
    const [text, kind] = note(seen);
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    button.textContent = `${localTime(seen["@timestamp"])} ${seen.person || "–"} ${seen.action || "–"}`
      + (seen.host ? ` on ${seen.host}` : "");
    button.title = seen.message || "";
    button.addEventListener("click", () => showSeen(seen));
    const verdict = document.createElement("span");
    verdict.className = `scope ${kind}`;
    verdict.textContent = ` — ${text}`;
    li.append(button, verdict);
    list.append(li);
  }
  if (!events.length) list.innerHTML = '<li class="muted">nothing</li>';
  section.append(list);
  return section;
}

async function showSeen(seen) {
  const at = new Date(seen["@timestamp"]).getTime();
  const pad = 5 * 60 * 1000;
  state.evidence = new Set([seen.key]);
  state.filters = { since: new Date(at - pad).toISOString(), until: new Date(at + pad).toISOString() };
  writeHash();
  await reload();
  highlightEvidence();
}

// -- side panels -----------------------------------------------------------------

async function loadAlerts() {
  const box = $("#alerts");
  try {
    const data = await api("/api/v1/alerts", { limit: 20 });
    if (!data.alerts.length) { box.innerHTML = '<p class="muted">No alerts.</p>'; return; }
    const list = document.createElement("ul");
    for (const alert of data.alerts) {
      const li = document.createElement("li");
      li.dataset.alert = alert.id;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "alert-item";
      button.setAttribute("aria-expanded", "false");
      const severity = document.createElement("span");
      severity.className = `sev ${alert.severity}`;
      severity.textContent = alert.severity;
      button.append(severity, " ", alert.rule.title);
      button.title = `${localTime(alert.last_seen)} (${alert.last_seen} UTC)`;
      const story = document.createElement("div");
      story.className = "story";
      story.hidden = true;
      button.addEventListener("click", () => showAlert(alert, button, story));
      li.append(button, story);
      list.append(li);
    }
    // Keep an open alert's story across refreshes.
    const open = box.querySelector("li[data-alert] .story:not([hidden])");
    if (open) {
      const again = list.querySelector(`li[data-alert="${open.parentElement.dataset.alert}"]`);
      if (again) again.replaceWith(open.parentElement);
    }
    box.replaceChildren(list);
  } catch (error) {
    box.innerHTML = "";
    const note = document.createElement("p");
    note.className = "muted";
    note.textContent = `Could not load alerts: ${error.message}`;
    box.append(note);
  }
}

// An alert's evidence names events by ECS event.id; its detail adds their API ids.
function isEvidence(row) {
  return state.evidence.has(row.dataset.id) || state.evidence.has(row.dataset.eventId);
}

function highlightEvidence() {
  for (const row of document.querySelectorAll(".event")) {
    row.classList.toggle("evidence", isEvidence(row));
  }
  const first = document.querySelector(".event.evidence");
  if (first) { first.focus(); first.scrollIntoView({ block: "nearest" }); }
}

// The alert's span on the timeline, its evidence highlighted, and its story below it:
// each evidence event with the change records that did or did not cover it, and deliveries.
async function showAlert(alert, button, story) {
  state.evidence = new Set(alert.evidence.map((e) => String(e.id)));
  const pad = 5 * 60 * 1000;
  state.filters = {
    since: new Date(new Date(alert.first_seen).getTime() - pad).toISOString(),
    until: new Date(new Date(alert.last_seen).getTime() + pad).toISOString(),
  };
  writeHash();
  for (const other of document.querySelectorAll(".alert-item[aria-expanded=true]")) {
    other.setAttribute("aria-expanded", "false");
    other.nextElementSibling.hidden = true;
  }
  button.setAttribute("aria-expanded", "true");
  story.hidden = false;
  story.textContent = "loading…";
  const [detail] = await Promise.all([api(`/api/v1/alerts/${alert.id}`).catch((e) => e), reload()]);
  if (detail instanceof Error) { story.textContent = `could not load the alert: ${detail.message}`; return; }
  for (const evidence of detail.evidence) if (evidence.event) state.evidence.add(evidence.event.id);
  highlightEvidence();
  const lines = await Promise.all(detail.evidence.map(evidenceLine));
  const list = document.createElement("ul");
  list.className = "evidence-list";
  list.append(...lines);
  story.replaceChildren(list);
  for (const delivery of detail.deliveries) {
    const line = document.createElement("p");
    line.className = `delivery ${delivery.state}`;
    line.textContent = `→ ${delivery.output}: ${delivery.state}, ${delivery.attempts} attempt(s)`
      + (delivery.last_error ? ` — ${delivery.last_error}` : "");
    story.append(line);
  }
}

async function evidenceLine(evidence) {
  const li = document.createElement("li");
  li.textContent = `${localTime(evidence["@timestamp"])} ${evidence["event.action"] || evidence.message || evidence.id}`;
  if (!evidence.event) { li.append(" (no longer stored)"); return li; }
  const verdict = document.createElement("div");
  verdict.className = "coverage";
  verdict.textContent = await coverageText(evidence.event.id);
  li.append(verdict);
  return li;
}

async function coverageText(id) {
  try {
    const verdict = await api(`/api/v1/events/${id}/coverage`);
    if (verdict.covered) return `covered by ${verdict.covered_by.join(", ")}`;
    if (!verdict.nearest.length) return "not covered: no change record within a week";
    return "not covered; nearest: " + verdict.nearest
      .map((miss) => `${miss.id} — ${miss.reasons.join("; ")}`).join(" / ");
  } catch (error) {
    return `coverage unknown: ${error.message}`;
  }
}

async function loadSources() {
  const box = $("#sources");
  try {
    const data = await api("/api/v1/sources");
    const list = document.createElement("ul");
    for (const source of data.sources) {
      const li = document.createElement("li");
      li.append(link(source.id, "source", source.id));
      const lag = source.lag_secs === null ? "no events yet" : `lag ${formatLag(source.lag_secs)}`;
      const dropped = source.dropped ? ` · ${source.dropped} dropped by filters` : "";
      li.append(` ${source.type} · ${source.state} · ${source.stored} stored${dropped} · ${lag}`);
      const hints = Object.entries(source.dropped_by).map(([name, count]) => `${name}: ${count}`);
      if (source.last_error) hints.push(`last error: ${source.last_error}`);
      if (hints.length) li.title = hints.join("\n");
      list.append(li);
    }
    box.replaceChildren(list);
  } catch (error) {
    box.textContent = `Could not load sources: ${error.message}`;
  }
}

function formatLag(seconds) {
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} d`;
}

// -- keyboard --------------------------------------------------------------------

function markCurrent(row) {
  for (const other of document.querySelectorAll(".event.current")) other.classList.remove("current");
  row.classList.add("current");
}

function move(delta) {
  const rows = [...document.querySelectorAll(".event")];
  if (!rows.length) return;
  const index = rows.indexOf(document.activeElement.closest && document.activeElement.closest(".event"));
  const next = rows[Math.min(Math.max(index + delta, 0), rows.length - 1)];
  next.focus();
  next.scrollIntoView({ block: "nearest" });
}

document.addEventListener("keydown", (event) => {
  const typing = event.target.matches("input, textarea");
  if (event.key === "/" && !typing) { event.preventDefault(); $("#q").focus(); return; }
  if (event.key === "Escape") {
    if (typing) event.target.blur();
    state.filters = {};
    $("#q").value = "";
    writeHash();
    reload();
    return;
  }
  if (typing) return;
  if (event.key === "j") move(1);
  else if (event.key === "k") move(-1);
  else if (event.key === "Enter" && event.target.classList.contains("event")) toggleDetails(event.target);
});

// -- start -----------------------------------------------------------------------

async function reload() {
  renderChips();
  $("#q").value = state.filters.q || "";
  const events = await loadPage(false);
  // The histogram ends at the newest event read from a source: the daemon's own
  // entries (alerts, its audit trail) are written at the time they happen, which on
  // a replayed or quiet timeline would pull the view away from the events.
  const read = events.find((e) => !(e.document.event?.dataset || "").startsWith("auditcorr."));
  const anchor = read || events[0];
  const newest = !state.filters.until && anchor ? anchor.document["@timestamp"] : null;
  await loadHistogram(newest);
  document.body.dataset.ready = "true";
}

$("#search").addEventListener("submit", (event) => {
  event.preventDefault();
  delete state.filters.q;
  parseSearch($("#q").value);
  writeHash();
  reload();
});
$("#more").addEventListener("click", () => loadPage(true));
$("#token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("#token").value.trim();
  sessionStorage.setItem("auditcorr-token", state.token);
  $("#token-box").hidden = true;
  start();
});
window.addEventListener("hashchange", () => { readHash(); reload(); showReview(); });

async function start() {
  try {
    const info = await api("/api/v1/info");
    state.zone = info.timezone;
    clock = null;
  } catch (_) { /* UTC until the token is given */ }
  readHash();
  await Promise.all([reload(), loadAlerts(), loadSources(), showReview()]);
}

start();
setInterval(poll, POLL_MS);
setInterval(loadAlerts, POLL_MS * 6);
