// The Live page: the browser's camera swapped through a WebSocket, or a source on the server
// shown as MJPEG. Settings (swap on/off, badge, mask, colour, sharpening) apply while it runs.
//
// Camera path: each new camera frame is drawn to a canvas, encoded as JPEG and sent with a
// 4-byte id; at most two frames are in flight, and camera frames that arrive while two are
// waiting are skipped (counted), so latency stays bounded instead of growing a queue. A reply
// with id N settles every frame up to N (older ones were dropped by the server as stale).
// Latency is camera-frame grab → swapped frame drawn, measured in this page.

import { el, api, P, toast, fieldInput, readForm } from "./dom.js";

const HOT = ["mask_type", "color", "sharpen", "blur_size", "erosion", "occlusion"];
const MAX_SIDE = 640; // frames sent are scaled to at most this many pixels on their long side
const IN_FLIGHT = 2;
const KEEP = 40; // frames kept for snapshots (tests and benchmarks read them)

function percentile(values, q) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function blobToDataUrl(blob) {
  return new Promise((resolve) => { const r = new FileReader(); r.onload = () => resolve(r.result); r.readAsDataURL(blob); });
}

// What the page measured: window.swapfaceLive, also read by the Chromium test and benchmark.
function newFigures() {
  const f = { camera: 0, sent: 0, shown: 0, skipped: 0, dropped: 0, latencies: [], shownAt: [], server: {},
    sentFrames: new Map(), shownFrames: new Map(), started: performance.now() };
  f.summary = () => {
    const now = performance.now(), recent = f.shownAt.filter((t) => now - t < 2000);
    const span = recent.length > 1 ? (recent[recent.length - 1] - recent[0]) / 1000 : 0;
    return { camera: f.camera, sent: f.sent, shown: f.shown, skipped: f.skipped, dropped: f.dropped,
      fps: span > 0 ? (recent.length - 1) / span : 0,
      fps_overall: f.shown / Math.max(1e-3, (now - f.started) / 1000),
      latency_median_ms: percentile(f.latencies, 0.5), latency_p95_ms: percentile(f.latencies, 0.95), server: f.server };
  };
  f.snapshots = async () => {
    const ids = [...f.shownFrames.keys()].filter((id) => f.sentFrames.has(id));
    return Promise.all(ids.map(async (id) => ({ id, sent: await blobToDataUrl(f.sentFrames.get(id)),
      shown: await blobToDataUrl(f.shownFrames.get(id)) })));
  };
  return f;
}

function keep(map, id, blob) {
  map.set(id, blob);
  if (map.size > KEEP) map.delete(map.keys().next().value);
}

function statsText(d) {
  const ms = (v) => (v === null || v === undefined ? "–" : `${Math.round(v)} ms`);
  return `${(d.fps || 0).toFixed(1)} fps · latency median ${ms(d.latency_median_ms)}, p95 ${ms(d.latency_p95_ms)} · ` +
    `${d.dropped || 0} dropped` + (d.skipped !== undefined ? `, ${d.skipped} camera frames skipped` : "") +
    (d.server && d.server.server_ms ? ` · server ${ms(d.server.server_ms)}/frame` : "") + " · synthetic media";
}

class CameraSwap {
  constructor(name, camera, canvas, onStats) {
    Object.assign(this, { name, camera, canvas, onStats, ws: null, stream: null, running: false });
    this.grab = document.createElement("canvas");
    this.inFlight = new Map(); // id → grab time
    this.nextId = 1;
    this.figures = window.swapfaceLive = newFigures();
  }

  async start(settings) {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) throw new Error("this browser gives no camera access (a page on http://127.0.0.1 or https is needed)");
    this.stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
    this.camera.srcObject = this.stream;
    await this.camera.play();
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.ws = new WebSocket(`${scheme}://${location.host}${P(this.name)}/live/socket`);
    this.ws.binaryType = "arraybuffer";
    this.ws.onmessage = (ev) => (typeof ev.data === "string" ? this.onText(JSON.parse(ev.data)) : this.onFrame(ev.data));
    this.ws.onclose = () => { if (this.running) { toast("the live connection closed"); this.stop(); } };
    await new Promise((resolve, reject) => { this.ws.onopen = resolve; this.ws.onerror = () => reject(new Error("could not open the live connection")); });
    this.running = true;
    this.settings(settings);
    this.next();
  }

  next() {
    if (!this.running) return;
    if (this.camera.requestVideoFrameCallback) this.camera.requestVideoFrameCallback(() => { this.capture(); this.next(); });
    else setTimeout(() => { this.capture(); this.next(); }, 33);
  }

  capture() {
    const f = this.figures, cam = this.camera;
    f.camera += 1;
    if (this.inFlight.size >= IN_FLIGHT || this.ws.readyState !== WebSocket.OPEN || !cam.videoWidth) { f.skipped += 1; return; }
    const scale = Math.min(1, MAX_SIDE / Math.max(cam.videoWidth, cam.videoHeight));
    this.grab.width = Math.round(cam.videoWidth * scale);
    this.grab.height = Math.round(cam.videoHeight * scale);
    this.grab.getContext("2d").drawImage(cam, 0, 0, this.grab.width, this.grab.height);
    const id = this.nextId++;
    this.inFlight.set(id, performance.now());
    this.grab.toBlob(async (blob) => {
      if (!this.running || !blob) { this.inFlight.delete(id); return; }
      const head = new Uint8Array(4);
      new DataView(head.buffer).setUint32(0, id);
      this.ws.send(await new Blob([head, blob]).arrayBuffer());
      f.sent += 1;
      keep(f.sentFrames, id, blob);
    }, "image/jpeg", 0.85);
  }

  async onFrame(buffer) {
    const f = this.figures, id = new DataView(buffer).getUint32(0);
    const grabbed = this.inFlight.get(id);
    for (const other of [...this.inFlight.keys()]) {
      if (other <= id) { this.inFlight.delete(other); if (other < id) f.dropped += 1; }
    }
    const blob = new Blob([buffer.slice(4)], { type: "image/jpeg" });
    const bitmap = await createImageBitmap(blob);
    if (this.canvas.width !== bitmap.width) { this.canvas.width = bitmap.width; this.canvas.height = bitmap.height; }
    this.canvas.getContext("2d").drawImage(bitmap, 0, 0);
    bitmap.close();
    const now = performance.now();
    f.shown += 1;
    f.shownAt.push(now);
    if (f.shownAt.length > 120) f.shownAt.shift();
    if (grabbed !== undefined) { f.latencies.push(now - grabbed); if (f.latencies.length > 600) f.latencies.shift(); }
    keep(f.shownFrames, id, blob);
  }

  onText(message) {
    if (message.error) { toast(message.error); this.inFlight.clear(); }
    if (message.stats) this.figures.server = message.stats;
  }

  settings(values) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(values));
  }

  stop() {
    this.running = false;
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close();
    this.stream = null;
  }
}

export async function liveScreen(root, name, status) {
  const specs = (await api.get("/api/forms/swap")).filter((s) => HOT.includes(s.name));
  const form = el("div", { class: "row", "data-form": "live" }, specs.map((s) => fieldInput(s)));
  const swapOn = el("input", { type: "checkbox", id: "live-swap", checked: true });
  const badge = el("input", { type: "checkbox", id: "live-badge", checked: true });
  const mode = el("select", { id: "live-mode" }, el("option", { value: "camera" }, "this browser's camera"),
    el("option", { value: "server" }, "a source on the server"));
  const videos = status.persons.a.media.filter((m) => m.kind === "video").map((m) => m.name);
  const sourceList = el("datalist", { id: "live-sources" }, ["0", ...videos].map((v) => el("option", { value: v })));
  const source = el("input", { id: "live-source", list: "live-sources", value: videos[0] || "0", placeholder: "0, /dev/video0, rtsp://…, or a video of A" });
  const sourceLabel = el("label", { hidden: true }, "server source", source, sourceList);
  const startBtn = el("button", { id: "live-start" }, "Start");
  const stopBtn = el("button", { id: "live-stop", class: "secondary", disabled: true }, "Stop");
  const camera = el("video", { id: "live-camera", muted: true, playsinline: true, autoplay: true });
  const canvas = el("canvas", { id: "live-output", class: "live" });
  const stream = el("img", { id: "live-stream", class: "wide", alt: "live (server source)", hidden: true });
  const statsLine = el("p", { class: "label", id: "live-stats" }, "Not running.");
  let cam = null;

  const values = () => ({ swap: swapOn.checked, badge: badge.checked, options: readForm(form) });
  const running = () => (mode.value === "camera" ? cam && cam.running : !stream.hidden);
  const setRunning = (on) => { startBtn.disabled = on; stopBtn.disabled = !on; mode.disabled = on; };

  const start = async () => {
    try {
      if (mode.value === "camera") {
        cam = new CameraSwap(name, camera, canvas);
        canvas.hidden = false; camera.hidden = false; stream.hidden = true;
        await cam.start(values());
      } else {
        await api.post(`${P(name)}/live/start`, { source: source.value, options: readForm(form) });
        await api.post(`${P(name)}/live/settings`, { swap: swapOn.checked });
        canvas.hidden = true; camera.hidden = true;
        stream.src = `${P(name)}/live/stream.mjpg?t=${Date.now()}`;
        stream.hidden = false;
      }
      setRunning(true);
    } catch (err) { toast(err.message); if (cam) cam.stop(); }
  };
  const stop = async () => {
    if (mode.value === "camera") { if (cam) cam.stop(); }
    else { try { await api.post(`${P(name)}/live/stop`); } catch (err) { toast(err.message); } stream.hidden = true; stream.removeAttribute("src"); }
    setRunning(false);
    statsLine.textContent = "Stopped.";
  };
  const changed = async () => {
    if (!running()) return;
    if (mode.value === "camera") cam.settings(values());
    else { try { await api.post(`${P(name)}/live/settings`, { swap: swapOn.checked, options: readForm(form) }); } catch (err) { toast(err.message); } }
  };
  startBtn.onclick = start;
  stopBtn.onclick = stop;
  form.onchange = changed;
  swapOn.onchange = changed;
  badge.onchange = changed;
  mode.onchange = () => { sourceLabel.hidden = mode.value !== "server"; };

  root.replaceChildren(el("h1", {}, "Live"),
    el("div", { class: "card" },
      el("p", { class: "muted" }, `Swaps ${status.persons.a.name}'s face for ${status.persons.b.name}'s as it is filmed. ` +
        "Only film people who have agreed to it; the output shows a SYNTHETIC badge unless you turn it off."),
      el("div", { class: "row" }, el("label", {}, "input", mode), sourceLabel, startBtn, stopBtn,
        el("label", { class: "check" }, swapOn, "swap"), el("label", { class: "check" }, badge, "badge")),
      el("h2", {}, "Settings (applied while it runs)"), form),
    el("div", { class: "card cols" }, el("div", {}, el("h2", {}, "Camera"), camera),
      el("div", {}, el("h2", {}, "Swapped"), canvas, stream)), statsLine);
  if (!status.model) { startBtn.disabled = true; statsLine.textContent = "Train a model first."; }

  // A server session survives leaving the page: show it again.
  const server = await api.get(`${P(name)}/live`);
  if (server.running) {
    mode.value = "server"; sourceLabel.hidden = false; source.value = server.source;
    camera.hidden = true; canvas.hidden = true;
    stream.src = `${P(name)}/live/stream.mjpg?t=${Date.now()}`; stream.hidden = false; setRunning(true);
  }
  const poll = async () => {
    if (mode.value === "camera") { if (cam && cam.running) statsLine.textContent = statsText(cam.figures.summary()); return; }
    if (stream.hidden) return;
    const st = await api.get(`${P(name)}/live`);
    statsLine.textContent = st.error ? `stopped: ${st.error}` : `${st.running ? "" : "ended · "}${statsText({ ...st.stats, fps: st.stats.fps })}`;
    if (!st.running) setRunning(false);
  };
  return { poll, leave: () => { if (cam) cam.stop(); } };
}

