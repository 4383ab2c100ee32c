// Shared by the UI's screens: DOM building, JSON requests, generated option forms.

const $ = (sel, root = document) => root.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function toast(message, info = false) {
  const box = $("#toast");
  box.textContent = message;
  box.className = info ? "toast info" : "toast";
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, info ? 2500 : 7000);
}

async function request(method, url, body, isForm = false) {
  const headers = method === "GET" ? {} : { "X-Swapface-CSRF": "1" };
  const init = { method, headers, credentials: "same-origin" };
  if (body !== undefined) {
    if (isForm) init.body = body;
    else { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
  }
  const response = await fetch(url, init);
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
  return data;
}
const api = {
  get: (url) => request("GET", url),
  post: (url, body = {}) => request("POST", url, body),
  upload: (url, file) => { const form = new FormData(); form.append("file", file); return request("POST", url, form, true); },
};
const enc = encodeURIComponent;
const P = (name) => `/api/projects/${enc(name)}`;

async function guarded(fn) {
  $("#busy").hidden = false;
  try { return await fn(); } catch (err) { toast(err.message); return undefined; } finally { $("#busy").hidden = true; }
}

// ------------------------------------------------------------------ generated forms
function fieldInput(spec, value) {
  const id = `opt-${spec.name}`;
  const val = value === undefined ? spec.default : value;
  if (spec.type === "bool") {
    return el("label", { class: "check", title: spec.help }, el("input", { type: "checkbox", id, "data-opt": spec.name, "data-type": "bool", checked: !!val }), spec.name.replace(/_/g, " "));
  }
  let input;
  if (spec.choices) {
    input = el("select", { id, "data-opt": spec.name, "data-type": spec.type },
      spec.choices.map((c) => el("option", { value: c, selected: c === val }, c)));
  } else {
    const numeric = spec.type === "int" || spec.type === "float";
    input = el("input", { id, "data-opt": spec.name, "data-type": spec.type, type: numeric ? "number" : "text",
      step: spec.type === "float" ? "any" : undefined,
      value: Array.isArray(val) ? val.join(" ") : (val === null ? "" : val) });
  }
  return el("label", { title: spec.help }, spec.name.replace(/_/g, " "), input);
}

async function optionsForm(form, values = {}) {
  const specs = await api.get(`/api/forms/${form}`);
  const box = el("div", { class: "row", "data-form": form }, specs.map((s) => fieldInput(s, values[s.name])));
  box.specs = specs;
  return box;
}

// A model's own options as key=value words: only those changed from the defaults.
function changedOptions(box) {
  const values = readForm(box);
  return box.specs.filter((s) => values[s.name] !== undefined && JSON.stringify(values[s.name]) !== JSON.stringify(s.default))
    .map((s) => `${s.name}=${Array.isArray(values[s.name]) ? values[s.name].join(",") : values[s.name]}`);
}

function readForm(root) {
  const out = {};
  for (const input of root.querySelectorAll("[data-opt]")) {
    const type = input.dataset.type, name = input.dataset.opt;
    if (type === "bool") out[name] = input.checked;
    else if (input.value === "") { if (type.includes("None") || type === "float") continue; }
    else if (type === "int") out[name] = parseInt(input.value, 10);
    else if (type === "float") out[name] = parseFloat(input.value);
    else if (type.startsWith("list")) out[name] = input.value.split(/\s+/).filter(Boolean);
    else out[name] = input.value;
  }
  return out;
}

export { $, el, toast, request, api, enc, P, guarded, fieldInput, optionsForm, changedOptions, readForm };
