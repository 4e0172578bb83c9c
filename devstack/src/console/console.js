// devstack console: asks for the state every second and renders it. Every value from the
// stack is set as text (textContent), never as HTML: queue messages and log lines are data.
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const headers = { authorization: "Bearer " + token };
const openLogs = new Set();
let selectedTrace = null;
let busy = false;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function fill(tableId, rows) {
  const body = document.querySelector("#" + tableId + " tbody");
  body.replaceChildren(...rows);
}

function time(text) {
  return text ? text.replace("T", " ").replace(/\.\d+/, "").replace("Z", "") : "";
}

function renderResources(resources) {
  document.getElementById("resources").replaceChildren(...resources.map((r) => {
    const logs = el("details", { ontoggle: (e) => e.target.open ? openLogs.add(r.name) : openLogs.delete(r.name) },
      el("summary", {}, "recent log lines (" + r.logs.length + ")"),
      el("pre", { class: "log" }, r.logs.length ? r.logs.join("\n") : "(none: it runs in devstack's process, or has logged nothing yet)"));
    if (openLogs.has(r.name)) logs.open = true;
    return el("article", { class: "card " + (r.ready ? "ready" : "not-ready"), "data-resource": r.name, "data-ready": String(r.ready) },
      el("h3", {}, r.name, " ", el("span", { class: "badge" }, r.ready ? "ready" : "not ready")),
      el("p", { class: "kind" }, r.kind, " · ", el("code", {}, r.url)),
      el("p", { class: "detail" }, r.detail),
      logs);
  }));
}

async function setRole(key, held) {
  busy = true;
  try {
    const res = await fetch("/api/roles", {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body: JSON.stringify({ key, held }),
    });
    if (!res.ok) throw new Error(res.status + " " + (await res.text()));
  } catch (e) {
    document.getElementById("status").textContent = "role change failed: " + e.message;
  } finally {
    busy = false;
    refresh();
  }
}

function renderRoles(roles, tokens) {
  fill("roles", roles.map((r) => el("tr", { class: r.held ? "" : "revoked", "data-identity": r.identity, "data-role": r.role, "data-scope": r.scope, "data-held": String(r.held) },
    el("td", {}, r.identity), el("td", {}, r.role), el("td", {}, el("code", {}, r.role_id)), el("td", {}, r.scope),
    el("td", {}, r.held ? "held" : "revoked"),
    el("td", {}, el("button", { type: "button", class: r.held ? "revoke" : "grant", onclick: () => setRole(r.key, !r.held) }, r.held ? "revoke" : "grant back")))));
  fill("tokens", tokens.map((t) => el("tr", { "data-identity": t.identity },
    el("td", {}, t.identity), el("td", {}, el("code", {}, t.audience)), el("td", { class: "num" }, t.count))));
}

function renderDecisions(decisions) {
  fill("decisions", decisions.map((d) => {
    let verdict;
    if (d.allowed) verdict = el("span", { class: "allowed" }, "allowed");
    else if (d.missing) {
      verdict = el("div", { class: "denied" },
        el("strong", {}, "denied"), ": missing role ", el("strong", { class: "missing-role" }, d.missing.role),
        " (", el("code", {}, d.missing.role_id || "custom role"), ") on ", d.missing.scope,
        d.missing.grant ? el("pre", { class: "grant" }, d.missing.grant) : null);
    } else verdict = el("span", { class: "denied" }, el("strong", {}, "denied"), ": " + d.reason);
    return el("tr", { class: d.allowed ? "" : "denied-row", "data-identity": d.identity, "data-operation": d.operation, "data-allowed": String(d.allowed), "data-service": d.service },
      el("td", {}, time(d.at)), el("td", {}, d.identity), el("td", {}, d.service),
      el("td", {}, d.operation, d.count > 1 ? el("span", { class: "count" }, " ×" + d.count) : null),
      el("td", {}, d.resource), el("td", {}, verdict));
  }));
}

function renderQueues(queues, codes) {
  document.getElementById("queues").replaceChildren(...queues.map((q) => {
    if (q.error) return el("article", { class: "card not-ready", "data-queue": q.name }, el("h3", {}, q.name), el("p", {}, q.error));
    const counts = (q.visible_at_least ? "≥ " : "") + q.visible + " visible, " + q.hidden + " hidden (" + q.total + " in all)";
    const items = q.messages.map((m) => {
      const what = m.envelope ? m.kind + " " + m.envelope.code + " expires " + time(m.envelope.expires_at) : m.kind;
      return el("li", {}, el("code", {}, what), " · dequeued " + m.dequeue_count, m.reason ? el("div", { class: "reason" }, m.reason) : null);
    });
    return el("article", { class: "card", "data-queue": q.name, "data-total": String(q.total) },
      el("h3", {}, q.name), el("p", {}, counts),
      items.length ? el("ol", { class: "messages" }, items) : el("p", { class: "hint" }, "no visible message"));
  }));
  if (codes.error) fill("codes", [el("tr", {}, el("td", { colspan: "5" }, codes.error))]);
  else fill("codes", codes.recent.map((c) => el("tr", { "data-code-state": c.state },
    el("td", {}, el("code", {}, c.code)), el("td", { class: "state-" + c.state }, c.state),
    el("td", {}, time(c.issued_at)), el("td", {}, time(c.expires_at)), el("td", {}, time(c.used_at)))));
}

function renderTraces(traces) {
  const source = document.getElementById("traces-source");
  source.textContent = traces.collector
    ? "The services send their telemetry to your collector (" + traces.collector + "): no trace is shown here."
    : "The services export to this console (OTLP over HTTP): " + traces.recent.length + " recent traces, " + traces.log_records + " log records received.";
  const recent = traces.recent;
  if (!recent.some((t) => t.trace_id === selectedTrace)) {
    const crossing = recent.find((t) => t.services.length >= 3) || recent[0];
    selectedTrace = crossing ? crossing.trace_id : null;
  }
  document.getElementById("traces").replaceChildren(el("ul", { class: "trace-list" }, recent.map((t) =>
    el("li", { class: t.trace_id === selectedTrace ? "selected" : "", "data-trace": t.trace_id, "data-services": t.services.join(" ") },
      el("button", { type: "button", onclick: () => { selectedTrace = t.trace_id; renderTraces(traces); } },
        t.root, " · ", t.services.join(" → "), " · ", t.duration_ms.toFixed(1) + " ms")))));
  const trace = recent.find((t) => t.trace_id === selectedTrace);
  const timeline = document.getElementById("timeline");
  if (!trace) { timeline.replaceChildren(el("p", { class: "hint" }, "No trace yet: get a code on main-app's page.")); return; }
  const span = Math.max(trace.duration_ms, 0.001);
  const depth = new Map();
  const byId = new Map(trace.spans.map((s) => [s.span_id, s]));
  const levelOf = (s) => {
    if (depth.has(s.span_id)) return depth.get(s.span_id);
    const parent = byId.get(s.parent_id);
    const level = parent && parent !== s ? Math.min(levelOf(parent) + 1, 12) : 0;
    depth.set(s.span_id, level);
    return level;
  };
  timeline.replaceChildren(el("h3", {}, "Timeline of " + trace.root + " (" + trace.duration_ms.toFixed(1) + " ms, trace " + trace.trace_id + ")"),
    el("div", { class: "timeline", "data-trace": trace.trace_id, "data-services": trace.services.join(" ") }, trace.spans.map((s) => {
      const left = ((s.start_ns - trace.start_ns) / 1e6) / span * 100;
      const width = Math.max(((s.end_ns - s.start_ns) / 1e6) / span * 100, 0.4);
      return el("div", { class: "span-row", "data-service": s.service },
        el("div", { class: "span-label", style: null }, "\u00a0".repeat(levelOf(s) * 2), el("span", { class: "svc svc-" + s.service }, s.service), " ", s.name),
        el("div", { class: "span-track" },
          el("div", { class: "span-bar svc-" + s.service + (s.error ? " error" : ""), title: s.kind + ", " + ((s.end_ns - s.start_ns) / 1e6).toFixed(2) + " ms", "data-left": left.toFixed(3), "data-width": width.toFixed(3) })));
    })));
  // Positions are set through the CSSOM: the page's policy forbids inline style attributes.
  for (const bar of timeline.querySelectorAll(".span-bar")) {
    bar.style.marginLeft = bar.dataset.left + "%";
    bar.style.width = bar.dataset.width + "%";
  }
}

async function refresh() {
  if (busy) return;
  const status = document.getElementById("status");
  try {
    const res = await fetch("/api/state", { headers, cache: "no-store" });
    if (!res.ok) { status.textContent = res.status + ": " + (await res.text()); status.className = "error"; return; }
    const state = await res.json();
    renderResources(state.resources);
    renderRoles(state.roles, state.tokens);
    renderDecisions(state.decisions);
    renderQueues(state.queues, state.codes);
    renderTraces(state.traces);
    status.textContent = "live · updated " + new Date().toLocaleTimeString();
    status.className = "ok";
  } catch (e) {
    status.textContent = "devstack is not answering (" + e.message + "): is it still running?";
    status.className = "error";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  refresh();
  setInterval(refresh, 1000);
});
