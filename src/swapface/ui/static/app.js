// swapface web UI: plain ES module, no build step, nothing fetched from outside this server.
// Routes: #/ (projects), #/p/NAME/TAB[/PERSON]; TAB is person, train, convert, evaluate, live, jobs.

import { $, el, toast, api, enc, P, guarded, optionsForm, changedOptions, readForm } from "./dom.js";
import { liveScreen } from "./live.js";

let screenRoot = null; // where the current screen draws: below a project's tabs, or the page
const view = () => screenRoot || $("#view");
let poll = null; // the current screen's refresh, run every second while it is shown
let leave = null; // the current screen's clean-up (the live page stops its camera and socket)

// ------------------------------------------------------------------ jobs
function jobLine(job) {
  const p = job.progress || {};
  const frac = p.fraction != null ? p.fraction : (job.state === "done" ? 1 : 0);
  const info = p.info || {};
  const figures = Object.entries(info).map(([k, v]) => `${k} ${typeof v === "number" && !Number.isInteger(v) ? v.toPrecision(4) : v}`).join(", ");
  const eta = p.eta != null && job.state === "running" ? `, ${Math.round(p.eta)} s left` : "";
  const rate = p.rate ? `, ${p.rate.toFixed(1)} ${p.unit}/s` : "";
  const fill = el("span");
  fill.style.width = `${Math.round(frac * 100)}%`; // CSSOM, not a style attribute: the CSP allows no inline styles
  const bar = el("div", { class: "bar", "data-fraction": frac.toFixed(3) }, fill);
  return el("div", { class: "row job", "data-job": job.id, "data-state": job.state },
    el("strong", {}, `#${job.id} ${job.kind}`),
    el("span", { class: `state-${job.state}` }, job.state),
    bar,
    el("span", { class: "muted" }, p.total ? `${p.done}/${p.total} ${p.unit}${rate}${eta}` : ""),
    figures ? el("span", { class: "muted" }, figures) : null,
    job.error ? el("span", { class: "state-failed" }, job.error) : null,
    job.state === "running" || job.state === "queued"
      ? el("button", { class: "secondary", onclick: () => guarded(() => api.post(`/api/jobs/${job.id}/cancel`)) }, job.state === "running" ? "Stop" : "Cancel") : null,
    job.state === "failed" || job.state === "cancelled"
      ? el("button", { class: "secondary", onclick: () => guarded(() => api.post(`/api/jobs/${job.id}/retry`)) }, "Retry") : null,
    el("button", { class: "secondary", onclick: () => showLog(job.id) }, "Log"));
}

async function showLog(id) {
  const text = await guarded(() => api.get(`/api/jobs/${id}/log`));
  if (text === undefined) return;
  openDialog(el("div", {}, el("h2", {}, `Job ${id} log`), el("pre", {}, text || "(empty)")));
}

function openDialog(content) {
  const body = $("#dialog-body");
  body.replaceChildren(content);
  $("#dialog").showModal();
}

async function submitJob(name, kind, params) {
  const job = await guarded(() => api.post(`${P(name)}/jobs`, { kind, params }));
  if (job) toast(`${kind} job #${job.id} queued`, true);
  return job;
}

// ------------------------------------------------------------------ screens
async function projectsScreen() {
  const list = await api.get("/api/projects");
  const nameIn = el("input", { id: "new-name", placeholder: "hepburn_to_ohara" });
  const aIn = el("input", { id: "new-a", placeholder: "hepburn" });
  const bIn = el("input", { id: "new-b", placeholder: "ohara" });
  const create = async () => {
    const made = await guarded(() => api.post("/api/projects", { name: nameIn.value.trim(), person_a: aIn.value.trim(), person_b: bIn.value.trim() }));
    if (!made) return;
    const target = `#/p/${enc(made.name)}/person/${enc(made.persons.a.name)}`;
    if (location.hash === target) render(); // already there (a link raced the request): draw it again
    else location.hash = target;
  };
  const remove = async (name) => {
    const typed = prompt(`Delete project "${name}" with all its media, faces, model and outputs? Type its name to confirm.`);
    if (typed === null) return;
    if (await guarded(() => api.post(`${P(name)}/delete`, { confirm: typed }))) render();
  };
  view().replaceChildren(
    el("h1", {}, "Projects"),
    el("div", { class: "card" }, el("h2", {}, "New project"),
      el("p", { class: "muted" }, "Person A's face is replaced by person B's."),
      el("div", { class: "row" }, el("label", {}, "project name", nameIn), el("label", {}, "person A (replaced)", aIn),
        el("label", {}, "person B (put in)", bIn), el("button", { id: "create", onclick: create }, "Create"))),
    el("div", { class: "card" }, list.length ? el("table", { id: "projects" },
      el("tr", {}, el("th", {}, "project"), el("th", {}, "A → B"), el("th", {}, "media"), el("th", {}, "trained"), el("th", {}, "outputs"), el("th", {})),
      list.map((p) => el("tr", { "data-project": p.name },
        el("td", {}, el("a", { href: `#/p/${enc(p.name)}/person/${enc(p.persons ? p.persons.a : "")}` }, p.name)),
        el("td", {}, p.persons ? `${p.persons.a} → ${p.persons.b}` : p.error),
        el("td", {}, p.media ?? ""), el("td", {}, p.trained ? "yes" : "no"), el("td", {}, p.outputs ?? ""),
        el("td", {}, el("button", { class: "danger", onclick: () => remove(p.name) }, "Delete")))))
      : el("p", { class: "muted" }, "No projects yet.")));
}

function tabs(name, status, tab, person) {
  const link = (href, text, on) => el("a", { href, class: on ? "on" : "", "data-tab": text }, text);
  return el("nav", { class: "tabs" },
    ["a", "b"].map((s) => link(`#/p/${enc(name)}/person/${enc(status.persons[s].name)}`,
      `${status.persons[s].name} (${s === "a" ? "A" : "B"})`, tab === "person" && person === status.persons[s].name)),
    link(`#/p/${enc(name)}/train`, "train", tab === "train"),
    link(`#/p/${enc(name)}/convert`, "convert", tab === "convert"),
    link(`#/p/${enc(name)}/evaluate`, "evaluate", tab === "evaluate"),
    link(`#/p/${enc(name)}/live`, "live", tab === "live"),
    link(`#/p/${enc(name)}/jobs`, "jobs", tab === "jobs"));
}

function jobsBox(status, kinds) {
  const box = el("div", { class: "jobs" });
  const fill = (st) => box.replaceChildren(...st.jobs.filter((j) => kinds.includes(j.kind)).slice(0, 4).map(jobLine));
  fill(status);
  return { box, fill };
}

async function personScreen(name, status, person) {
  const side = status.persons.a.name === person ? "a" : "b";
  const info = status.persons[side];
  const mediaIn = el("input", { type: "file", id: "upload-media", multiple: true, accept: "video/*,image/*" });
  const refIn = el("input", { type: "file", id: "upload-reference", multiple: true, accept: "image/*" });
  const upload = async (input, kind) => {
    for (const file of input.files) {
      toast(`uploading ${file.name}…`, true);
      await guarded(() => api.upload(`${P(name)}/persons/${enc(person)}/${kind}`, file));
    }
    input.value = "";
    render();
  };
  const jobs = jobsBox(status, ["extract"]);
  const sortSel = el("select", { id: "grid-sort" }, ["frame", "identity", "blur", "pose", "size"].map((s) => el("option", { value: s }, s)));
  const groupSel = el("select", { id: "grid-group" }, ["none", "identity"].map((s) => el("option", { value: s }, s)));
  const grid = el("div", { class: "grid", id: "face-grid" });
  const pager = el("span", { class: "muted", id: "grid-count" });
  const selected = new Set();
  let page = 0;
  const delBtn = el("button", { class: "danger", id: "delete-faces", disabled: true, onclick: async () => {
    if (!confirm(`Delete ${selected.size} face(s)? Their files move to persons/${person}/deleted/.`)) return;
    const done = await guarded(() => api.post(`${P(name)}/faces/delete`, { person, faces: [...selected] }));
    if (done) { toast(`${done.removed} face(s) deleted`, true); selected.clear(); loadGrid(); }
  } }, "Delete selected");
  const loadGrid = async () => {
    const data = await guarded(() => api.get(`${P(name)}/faces?person=${enc(person)}&sort=${sortSel.value}&group=${groupSel.value}&page=${page}&per_page=200`));
    if (!data) return;
    pager.textContent = `${data.total} faces` + (data.groups > 1 ? `, ${data.groups} identity groups` : "") + `, page ${page + 1} of ${Math.max(1, Math.ceil(data.total / data.per_page))}`;
    let group = null;
    const tiles = [];
    for (const f of data.faces) {
      if (groupSel.value === "identity" && f.group !== group) { group = f.group; tiles.push(el("div", { class: "group-head" }, group < 0 ? "no identity" : `group ${group + 1}`)); }
      const tile = el("div", { class: `face${selected.has(f.key) ? " selected" : ""}`, "data-key": f.key, title: `${f.media} frame ${f.frame} · blur ${f.blur} · yaw ${f.yaw}° · ${f.size}px`,
        onclick: () => { if (selected.has(f.key)) selected.delete(f.key); else selected.add(f.key); tile.classList.toggle("selected"); delBtn.disabled = !selected.size; delBtn.textContent = `Delete selected (${selected.size})`; } },
        el("img", { src: `${P(name)}/faces/${enc(person)}/${enc(f.media)}/${f.id}/thumb.jpg`, loading: "lazy", alt: "" }),
        el("span", { class: "tag" }, f.frame),
        el("span", { class: "open", onclick: (ev) => { ev.stopPropagation(); openDialog(el("div", {}, el("h2", {}, `${f.media}, frame ${f.frame}`),
          el("img", { src: `${P(name)}/faces/${enc(person)}/${enc(f.media)}/${f.id}/frame.jpg`, alt: "frame with landmarks and mask" }),
          el("p", { class: "label" }, "green: box · red: 68 landmarks · blue: extended mask"))); } }, "open"));
      tiles.push(tile);
    }
    grid.replaceChildren(...tiles);
  };
  sortSel.onchange = groupSel.onchange = () => { page = 0; loadGrid(); };
  const prev = el("button", { class: "secondary", onclick: () => { if (page > 0) { page--; loadGrid(); } } }, "‹");
  const next = el("button", { class: "secondary", onclick: () => { page++; loadGrid(); } }, "›");
  view().replaceChildren(
    el("h1", {}, `${person} — ${side === "a" ? "A, whose face is replaced" : "B, whose face is put in"}`),
    el("div", { class: "cols" },
      el("div", { class: "card" }, el("h2", {}, "Videos and photos"),
        el("table", { id: "media" }, info.media.map((m) => el("tr", { "data-media": m.name },
          el("td", {}, m.name), el("td", {}, m.kind),
          el("td", {}, m.extract.done ? `${m.extract.faces} faces` : "not extracted")))),
        el("div", { class: "row" }, mediaIn, el("button", { id: "do-upload", onclick: () => upload(mediaIn, "media") }, "Upload"))),
      el("div", { class: "card" }, el("h2", {}, "Reference photos"),
        el("p", { class: "muted" }, info.references.length ? info.references.join(", ") : "None: every face is kept. Add photos of this person to keep only their faces."),
        el("div", { class: "row" }, refIn, el("button", { class: "secondary", onclick: () => upload(refIn, "references") }, "Upload")))),
    el("div", { class: "card" }, el("div", { class: "row" },
      el("button", { id: "extract", onclick: () => submitJob(name, "extract", { person }) }, "Extract faces"),
      el("span", { class: "muted" }, `${info.faces} faces in the training set`)), jobs.box),
    el("div", { class: "card" }, el("h2", {}, "Faces"),
      el("div", { class: "row" }, el("label", {}, "sort", sortSel), el("label", {}, "group", groupSel), prev, next, pager, delBtn),
      el("p", { class: "muted" }, "Click faces to select them; 'open' shows the face in its frame."), grid));
  await loadGrid();
  let wasActive = status.jobs.some((j) => j.kind === "extract" && (j.state === "running" || j.state === "queued"));
  poll = async () => {
    const st = await api.get(P(name));
    jobs.fill(st);
    const active = st.jobs.some((j) => j.kind === "extract" && (j.state === "running" || j.state === "queued"));
    if (wasActive && !active) render(); // finished: show the new faces
    wasActive = active;
  };
}

function drawLoss(canvas, rows) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width = canvas.clientWidth * devicePixelRatio, h = canvas.height = canvas.clientHeight * devicePixelRatio;
  ctx.clearRect(0, 0, w, h);
  canvas.dataset.points = rows.length;
  if (rows.length < 1) { ctx.fillStyle = "#888"; ctx.font = `${14 * devicePixelRatio}px sans-serif`; ctx.fillText("no loss yet", 12, 24 * devicePixelRatio); return; }
  const keys = [["loss_a", "#2f5fd0"], ["loss_b", "#d04a2f"]];
  const values = rows.flatMap((r) => keys.map(([k]) => r[k]).filter((v) => v != null));
  const lo = Math.min(...values), hi = Math.max(...values) || 1;
  const x0 = rows[0].iteration, x1 = rows[rows.length - 1].iteration || 1;
  const X = (it) => 40 + (w - 50) * (x1 === x0 ? 0.5 : (it - x0) / (x1 - x0));
  const Y = (v) => h - 20 - (h - 30) * (hi === lo ? 0.5 : (v - lo) / (hi - lo));
  for (const [key, colour] of keys) {
    let ema = null;
    const smooth = [];
    ctx.strokeStyle = colour + "55"; ctx.lineWidth = 1; ctx.beginPath();
    rows.forEach((r, i) => { const v = r[key]; if (v == null) return; ema = ema == null ? v : 0.9 * ema + 0.1 * v; smooth.push([r.iteration, ema]); i ? ctx.lineTo(X(r.iteration), Y(v)) : ctx.moveTo(X(r.iteration), Y(v)); });
    ctx.stroke();
    ctx.strokeStyle = colour; ctx.lineWidth = 2.5; ctx.beginPath();
    smooth.forEach(([it, v], i) => (i ? ctx.lineTo(X(it), Y(v)) : ctx.moveTo(X(it), Y(v))));
    ctx.stroke();
  }
  ctx.fillStyle = "#555"; ctx.font = `${11 * devicePixelRatio}px sans-serif`;
  ctx.fillText(hi.toPrecision(3), 2, 14 * devicePixelRatio); ctx.fillText(lo.toPrecision(3), 2, h - 22);
  ctx.fillText(`A (blue), B (red): raw and smoothed; iterations ${x0}–${x1}`, 44, h - 4);
}

async function trainScreen(name, status) {
  const form = await optionsForm("train", status.train.model ? { model: status.train.model, minutes: status.train.minutes } : {});
  form.querySelector('[data-opt="model_option"]').closest("label").hidden = true; // the model's form below
  const modelBox = el("div", { id: "model-options" });
  const loadModelForm = async () => {
    const model = form.querySelector('[data-opt="model"]').value;
    const box = await guarded(() => optionsForm(`model/${enc(model)}`));
    if (box) modelBox.replaceChildren(el("h2", {}, `${model} options`), box);
  };
  form.querySelector('[data-opt="model"]').addEventListener("change", loadModelForm);
  const jobs = jobsBox(status, ["train"]);
  const canvas = el("canvas", { id: "loss-chart" });
  const img = el("img", { id: "train-preview", class: "wide", alt: "training preview" });
  const figures = el("p", { id: "train-figures", class: "muted" });
  let shown = null;
  const refresh = async () => {
    const t = await api.get(`${P(name)}/train`);
    drawLoss(canvas, t.loss);
    if (t.preview && t.preview !== shown) { shown = t.preview; img.src = `${P(name)}/file/model/preview.png?v=${t.preview}`; }
    const p = t.job && t.job.progress ? t.job.progress : null;
    const spent = (t.state.seconds || 0) + (p && t.job.state === "running" ? p.elapsed : 0);
    const budget = (t.state.minutes || 0) * 60;
    figures.textContent = `iterations ${p ? p.done : (t.state.iteration || 0)}` +
      (p && p.info && p.info.eg_per_s ? ` · ${p.info.eg_per_s.toFixed(1)} EG/s` : "") +
      (budget ? ` · ${Math.max(0, (budget - spent) / 60).toFixed(1)} of ${(budget / 60).toFixed(1)} min left in the budget` : "") +
      (t.state.stopped_by ? ` · last stop: ${t.state.stopped_by}` : "");
    const st = await api.get(P(name));
    jobs.fill(st);
  };
  view().replaceChildren(el("h1", {}, "Train"),
    el("div", { class: "card" }, form, modelBox, el("div", { class: "row" },
      el("button", { id: "train-start", onclick: () => {
        const params = readForm(form);
        const box = modelBox.querySelector("[data-form]");
        params.model_option = box ? changedOptions(box) : [];
        return submitJob(name, "train", params);
      } }, status.train.iteration ? "Resume" : "Start"),
      el("span", { class: "muted" }, "Stop saves a checkpoint; Resume continues from it within the same budget.")), jobs.box),
    el("div", { class: "cols" },
      el("div", { class: "card" }, el("h2", {}, "Loss"), canvas, figures),
      el("div", { class: "card preview" }, el("h2", {}, "Preview"), img,
        el("p", { class: "label" }, "columns: A, A→A, A→B, B, B→B, B→A · synthetic media"))));
  await Promise.all([refresh(), loadModelForm()]);
  poll = refresh;
}

async function convertScreen(name, status) {
  const videos = status.persons.a.media.filter((m) => m.kind === "video" || m.kind === "photos");
  if (!videos.length) { view().replaceChildren(el("h1", {}, "Convert"), el("p", {}, `Add a video of ${status.persons.a.name} first.`)); return; }
  const videoSel = el("select", { id: "convert-video" }, videos.map((m) => el("option", { value: m.name }, m.name)));
  const swapForm = await optionsForm("swap");
  const convertForm = await optionsForm("convert");
  const viewSel = el("select", { id: "preview-view" }, ["after", "before", "mask", "split"].map((v) => el("option", { value: v }, v)));
  const slider = el("input", { type: "range", id: "preview-slider", min: 0, max: 0, value: 0 });
  const frameLabel = el("span", { class: "muted", id: "preview-frame" });
  const img = el("img", { id: "preview-image", class: "wide", alt: "preview" });
  const timing = el("p", { class: "label", id: "preview-timing" });
  const result = el("div", { id: "result" });
  const jobs = jobsBox(status, ["convert"]);
  let pending = null, seq = 0;
  const showPreview = () => {
    clearTimeout(pending);
    pending = setTimeout(async () => {
      const mine = ++seq;
      const options = { ...readForm(swapForm), face_filter: readForm(convertForm).face_filter };
      frameLabel.textContent = `frame ${slider.value}`;
      try {
        const url = `${P(name)}/preview.jpg?video=${enc(videoSel.value)}&frame=${slider.value}&view=${viewSel.value}&options=${enc(JSON.stringify(options))}`;
        const response = await fetch(url, { credentials: "same-origin" });
        if (!response.ok) throw new Error((await response.json()).error);
        const blob = await response.blob();
        if (mine !== seq) return;
        URL.revokeObjectURL(img.src);
        img.src = URL.createObjectURL(blob);
        img.dataset.frame = slider.value;
        timing.textContent = `${response.headers.get("X-Faces")} face(s) swapped in ${(1000 * response.headers.get("X-Swap-Seconds")).toFixed(0)} ms (request ${(1000 * response.headers.get("X-Total-Seconds")).toFixed(0)} ms) · synthetic media`;
      } catch (err) { timing.textContent = err.message; }
    }, 120);
  };
  const showResult = async () => {
    const info = await api.get(`${P(name)}/videos/${enc(videoSel.value)}`);
    slider.max = Math.max(0, (info.frames || 1) - 1);
    if (info.output) {
      const src = `${P(name)}/file/${info.output.path.split("/").map(enc).join("/")}?v=${Math.round(info.output.at)}`;
      if (!result.dataset.src || result.dataset.src !== src) {
        result.dataset.src = src;
        result.replaceChildren(el("h2", {}, "Result"), el("video", { id: "result-video", controls: true, src, preload: "auto" }),
          el("p", { class: "label" }, `${info.output.frames} frames · labelled as synthetic media in the file's metadata`));
      }
    } else result.replaceChildren();
    return info;
  };
  slider.oninput = showPreview;
  viewSel.onchange = showPreview;
  swapForm.onchange = showPreview;
  videoSel.onchange = async () => { await showResult(); showPreview(); };
  view().replaceChildren(el("h1", {}, "Convert"),
    el("div", { class: "card" }, el("div", { class: "row" }, el("label", {}, "video of A", videoSel), el("label", {}, "preview", viewSel)),
      el("h2", {}, "Swap options"), swapForm, convertForm),
    el("div", { class: "card preview" }, el("h2", {}, "Preview"), el("div", { class: "row" }, slider), frameLabel, img, timing),
    el("div", { class: "card" }, el("div", { class: "row" },
      el("button", { id: "convert-start", onclick: () => submitJob(name, "convert", { video: videoSel.value, swap: readForm(swapForm), ...readForm(convertForm) }) }, "Convert video")),
      jobs.box, result));
  await showResult();
  if (status.model) showPreview(); else timing.textContent = "Train a model to see a preview.";
  poll = async () => { const st = await api.get(P(name)); jobs.fill(st); await showResult(); };
}

function figureRows(fig) {
  const f = (v, d = 3) => (v === null || v === undefined ? "n/a" : Number(v).toFixed(d));
  const pct = (v) => (v === null || v === undefined ? "n/a" : `${(100 * v).toFixed(1)} %`);
  return [
    ["identity: closer to B", pct(fig.identity.closer_to_b)],
    ["identity: distance to B", f(fig.identity.mean_distance_b)],
    ["pose error", `${f(fig.pose.error, 2)}°`],
    ["expression error", f(fig.expression.error, 4)],
    ["jitter ratio", f(fig.temporal.jitter_ratio)],
    ["sharpness ratio", f(fig.detail.sharpness_ratio)],
    ["seam ΔE excess", f(fig.detail.seam_delta_e, 2)],
  ];
}

async function evaluateScreen(name, status) {
  const done = Object.keys(status.outputs || {});
  if (!done.length) { view().replaceChildren(el("h1", {}, "Evaluate"), el("p", {}, "Convert a video first.")); return; }
  const sel = el("select", { id: "evaluate-video" }, done.map((v) => el("option", { value: v }, v)));
  const out = el("div", { id: "evaluation" });
  const jobs = jobsBox(status, ["evaluate"]);
  const show = async () => {
    const ev = status.evaluations && status.evaluations[sel.value];
    if (!ev) { out.replaceChildren(el("p", { class: "muted" }, "Not evaluated yet.")); return; }
    if (out.dataset.at === String(ev.at)) return;
    out.dataset.at = String(ev.at);
    out.replaceChildren(
      el("table", { class: "figures", id: "figures" }, figureRows(ev.figures).map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", {}, v)))),
      el("h2", {}, "Contact sheet (worst frames by each figure)"),
      el("img", { class: "wide", id: "contact-sheet", src: `${P(name)}/file/${ev.report}/contact_sheet.png?v=${Math.round(ev.at)}`, alt: "contact sheet" }),
      el("pre", {}, ev.lines.join("\n")));
  };
  sel.onchange = () => { out.dataset.at = ""; show(); };
  view().replaceChildren(el("h1", {}, "Evaluate"),
    el("div", { class: "card" }, el("div", { class: "row" }, el("label", {}, "converted video", sel),
      el("button", { id: "evaluate-start", onclick: () => submitJob(name, "evaluate", { video: sel.value }) }, "Evaluate")), jobs.box),
    el("div", { class: "card" }, out));
  await show();
  poll = async () => { status = await api.get(P(name)); jobs.fill(status); await show(); };
}

async function jobsScreen(name, status) {
  const box = el("div", { id: "all-jobs" });
  const fill = (st) => box.replaceChildren(...(st.jobs.length ? st.jobs.map(jobLine) : [el("p", { class: "muted" }, "No jobs yet.")]));
  fill(status);
  view().replaceChildren(el("h1", {}, "Jobs"), el("div", { class: "card" }, box));
  poll = async () => fill(await api.get(P(name)));
}

// ------------------------------------------------------------------ router
async function render() {
  poll = null;
  if (leave) { const done = leave; leave = null; done(); }
  screenRoot = null;
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const crumbs = $("#crumbs");
  crumbs.replaceChildren(el("a", { href: "#/" }, "projects"));
  try {
    if (parts[0] !== "p" || !parts[1]) { await projectsScreen(); return; }
    const name = parts[1], tab = parts[2] || "person";
    const status = await api.get(P(name));
    crumbs.append(el("a", { href: `#/p/${enc(name)}/person/${enc(status.persons.a.name)}` }, name));
    const person = parts[3] || status.persons.a.name;
    const body = el("div", { id: "screen", "data-screen": tab });
    $("#view").replaceChildren(tabs(name, status, tab, person), body);
    screenRoot = body;
    const screens = { person: () => personScreen(name, status, person), train: () => trainScreen(name, status),
      convert: () => convertScreen(name, status), evaluate: () => evaluateScreen(name, status), jobs: () => jobsScreen(name, status),
      live: async () => { const screen = await liveScreen(view(), name, status); poll = screen.poll; leave = screen.leave; } };
    await (screens[tab] || screens.person)();
  } catch (err) {
    screenRoot = null;
    view().replaceChildren(el("h1", {}, "Something went wrong"), el("p", {}, err.message), el("a", { href: "#/" }, "back to projects"));
  }
}

async function tick() {
  if (poll && !document.hidden) {
    try { await poll(); } catch (err) { /* the next tick tries again */ }
  }
  setTimeout(tick, 1000);
}

async function start() {
  const info = await api.get("/api/info");
  $("#consent").textContent = info.consent;
  window.addEventListener("hashchange", render);
  await render();
  tick();
}
start();
