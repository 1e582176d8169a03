// What the console's pages share: the token, API calls and table helpers.
// A token, when the host needs one, is passed once as #token=... and kept for the tab.
"use strict";

const token = (() => {
  const match = location.hash.match(/token=([^&]+)/);
  if (match) {
    sessionStorage.setItem("millrace-token", decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname);
  }
  return sessionStorage.getItem("millrace-token");
})();

// GETs a JSON API path; throws with the API's reason.
async function api(path) {
  const response = await fetch(path, { headers: token ? { Authorization: "Bearer " + token } : {} });
  if (!response.ok) {
    let message = response.status + " " + response.statusText;
    try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
    throw new Error(path + ": " + message);
  }
  return response.json();
}

// An element; `on...` attributes become listeners, null children show as a dash.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(child === null || child === undefined ? "–" : String(child)));
  }
  return node;
}

const num = (value, cls) => el("td", { class: "num" + (cls ? " " + cls : "") }, value);

// Replaces the rows of table #id, or says `empty`.
function fill(id, rows, empty) {
  const tbody = document.querySelector("#" + id + " tbody");
  const columns = document.querySelectorAll("#" + id + " thead th").length;
  tbody.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: columns, class: "muted" }, empty))]));
}

// Runs `refresh` now and every two seconds; its errors show in #error.
function poll(refresh) {
  const run = async () => {
    try {
      await refresh();
      document.getElementById("error").textContent = "";
      document.body.setAttribute("data-loaded", "true");
    } catch (e) {
      document.getElementById("error").textContent = e.message;
    }
  };
  run();
  setInterval(run, 2000);
}
