// The console's script: sign in and out, purge with a confirmation, and
// keep the Offices page live. Every change goes to the JSON API with the
// session's CSRF token (from the page's <meta name="csrf-token">).
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content ?? "";

function problem(text) {
  const p = document.getElementById("problem");
  p.textContent = text;
  p.hidden = !text;
}

// Sends a request to the API: `body` as JSON, or as it is when `type`
// names its media type. A refusal throws its error line (and its
// problems, one per line).
async function api(method, path, body, type) {
  const headers = { "X-CSRF-Token": csrf() };
  if (body !== undefined) headers["Content-Type"] = type ?? "application/json";
  const answer = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined || type ? body : JSON.stringify(body),
  });
  if (!answer.ok) {
    let said = answer.statusText;
    try {
      const refusal = await answer.json();
      said = [refusal.error, ...(refusal.problems ?? [])].join("\n");
    } catch (_) { /* not JSON */ }
    throw new Error(said);
  }
  return answer;
}

function line(list, text) {
  const li = document.createElement("li");
  li.textContent = text;
  list.append(li);
}

// The Topology page: preview an uploaded sheet, then apply it.
function topology(form) {
  let sheet = null;
  const preview = document.getElementById("preview");
  const lines = document.getElementById("preview-lines");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem("");
    preview.hidden = true;
    sheet = await document.getElementById("sheet").files[0].text();
    try {
      const change = await (await api("POST", "/api/v1/topology/preview", sheet, "text/csv")).json();
      lines.replaceChildren();
      line(lines, `${change.offices} offices in the sheet`);
      for (const name of change.added) line(lines, `added: ${name}`);
      for (const name of change.removed) line(lines, `removed: ${name}`);
      for (const office of change.changed) line(lines, `changed ${office.office}: ${office.what.join("; ")}`);
      for (const m of change.moved) line(lines, `client ${m.client} moves from ${m.from} to ${m.to}`);
      preview.hidden = false;
    } catch (e) { problem(e.message); }
  });
  document.getElementById("apply")?.addEventListener("click", async () => {
    try {
      const done = await (await api("PUT", "/api/v1/topology", sheet, "text/csv")).json();
      const applied = document.getElementById("applied");
      applied.textContent = `applied: ${done.offices} offices`;
      applied.hidden = false;
      preview.hidden = true;
    } catch (e) { problem(e.message); }
  });
}

function signIn(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    try {
      await api("POST", "/api/v1/session", { name: data.get("name"), password: data.get("password") });
      location.assign("/offices");
    } catch (e) { problem(e.message); }
  });
}

const mib = (bytes) => (bytes / 1048576).toFixed(1) + " MiB";

// The figures of one office row, as the page shows them.
function cells(row) {
  const shown = {
    clients: row.link.clients,
    rvps: row.office.rvps.join(", "),
    from_peers: mib(row.link.from_peers),
    from_parent: mib(row.link.from_parent),
    from_origin: mib(row.link.from_origin),
    efficiency: row.efficiency_pct === null ? "–" : row.efficiency_pct.toFixed(1) + " %",
  };
  if (row.rollout) Object.assign(shown, row.rollout);
  return shown;
}

function live(marker) {
  const source = new EventSource(marker.dataset.live);
  source.addEventListener("offices", (event) => {
    const view = JSON.parse(event.data);
    const shown = new Set([...document.querySelectorAll("tr[data-office]")].map((tr) => tr.dataset.office));
    const sent = new Set(view.offices.map((row) => row.office.name));
    if (shown.size !== sent.size || [...sent].some((name) => !shown.has(name))) {
      location.reload(); // the tree changed
      return;
    }
    for (const row of view.offices) {
      const tr = document.querySelector(`tr[data-office="${CSS.escape(row.office.name)}"]`);
      for (const [field, value] of Object.entries(cells(row))) {
        const td = tr.querySelector(`[data-field="${field}"]`);
        if (td && td.textContent !== String(value)) td.textContent = value;
      }
    }
    marker.textContent = "live, " + new Date(view.at_ms).toLocaleTimeString();
    marker.dataset.at = view.at_ms;
  });
  source.addEventListener("problem", (event) => problem(event.data));
  source.onerror = () => { marker.textContent = "reconnecting..."; };
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("sign-in");
  if (form) signIn(form);
  document.getElementById("sign-out")?.addEventListener("click", async () => {
    try { await api("DELETE", "/api/v1/session"); } catch (_) { /* ended already */ }
    location.assign("/sign-in");
  });
  for (const button of document.querySelectorAll("button.purge")) {
    button.addEventListener("click", async () => {
      if (!confirm(`Purge ${button.dataset.name}? Every client drops it from its cache.`)) return;
      try {
        await api("DELETE", `/api/v1/contents/${button.dataset.id}`);
        location.reload();
      } catch (e) { problem(e.message); }
    });
  }
  const upload = document.getElementById("topology-upload");
  if (upload) topology(upload);
  const marker = document.getElementById("updated");
  if (marker?.dataset.live) live(marker);
});
