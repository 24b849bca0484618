// The playground: the form, submitting a job, following it through /stream,
// the result, errors next to their fields, and the history.

import { APIError, client, storedToken, storeToken } from "./api.js";
import * as history from "./history.js";
import { base64Blob, drawPreview, loadImage, readFile, thumbnail } from "./image.js";
import { PRESETS, framesFor, jobSize, presets } from "./size.js";

const $ = (id) => document.getElementById(id);

const STAGES = [
  ["queued", "Queued"],
  ["uploading", "Uploading the image"],
  ["loading_models", "Loading the models"],
  ["encoding_prompt", "Encoding the prompt"],
  ["sampling_high", "Sampling, high noise"],
  ["sampling_low", "Sampling, low noise"],
  ["decoding", "Decoding"],
  ["encoding_video", "Encoding the video"],
  ["delivering", "Delivering"],
];
// Stages only some jobs have: shown once a job reaches them.
const OPTIONAL_STAGES = { downloading_lora: "Downloading LoRAs", interpolating: "Interpolating frames" };
const STAGE_LABEL = { ...Object.fromEntries(STAGES), ...OPTIONAL_STAGES };
const STAGE_ORDER = ["queued", "downloading_lora", "uploading", "loading_models", "encoding_prompt", "sampling_high",
  "sampling_low", "decoding", "encoding_video", "interpolating", "delivering"];
const FINAL = new Set(["COMPLETED", "FAILED", "TIMED_OUT", "CANCELLED"]);
const STATUS_TEXT = {
  IN_QUEUE: "Waiting in the queue",
  IN_PROGRESS: "Running",
  COMPLETED: "Done",
  FAILED: "Failed",
  TIMED_OUT: "Timed out",
  CANCELLED: "Cancelled",
};

// The error fields of the job (docs/api.md) and the form control each one
// is shown next to.
const FIELDS = [
  ["prompt", "prompt"],
  ["negative_prompt", "negative"],
  ["image", "image"],
  ["end_image", "end-image"],
  ["options.width", "size"],
  ["options.height", "size"],
  ["options.resolution", "size"],
  ["options.aspect_ratio", "aspect"],
  ["options.fit", "fit"],
  ["options.length", "length"],
  ["options.preset", "preset"],
  ["options.distill_lora", "preset"],
  ["options.steps", "steps"],
  ["options.split_step", "steps"],
  ["options.cfg_high", "cfg-high"],
  ["options.cfg_low", "cfg-low"],
  ["options.cfg", "cfg-high"],
  ["options.shift", "shift"],
  ["options.frame_rate", "fps"],
  ["options.interpolate", "interpolate"],
  ["options.video_quality", "quality"],
  ["options.crf", "quality"],
  ["options.seed", "seed"],
  ["options.loras", "loras"],
];
const CONTROL = { image: "drop", "end-image": "end-file", loras: "lora-add" };

const state = {
  image: null, // {src (sent as the job's image), img (loaded <img>, or null)}
  endImage: "", // the job's end_image (a data URI or a URL), or ""
  job: null, // {id, t0, timer}
  videoURL: "", // object URL of the shown video
  result: null, // the last COMPLETED output
};

let tokenAsk = null;
function askToken(reason) {
  if (tokenAsk) return tokenAsk;
  const dlg = $("token-dialog");
  $("token-why").textContent = reason || "This server needs its API_TOKEN. It is kept in this browser's local storage.";
  $("token").value = storedToken();
  tokenAsk = new Promise((resolve) => {
    dlg.addEventListener(
      "close",
      () => {
        tokenAsk = null;
        resolve(dlg.returnValue === "ok" ? $("token").value.trim() : null);
      },
      { once: true },
    );
  });
  dlg.returnValue = "";
  dlg.showModal();
  return tokenAsk;
}

const api = client(askToken);

// --- the image ---------------------------------------------------------------

async function setImage(src, { isURL = false } = {}) {
  clearFieldError("image");
  state.image = { src, img: null };
  try {
    state.image.img = await loadImage(src);
  } catch {
    if (!isURL) {
      state.image = null;
      showFieldError("image", "the browser could not read this file as an image", "use a JPEG, PNG or WebP");
    } else {
      $("frame-info").textContent =
        "The browser could not show this URL; the worker downloads it itself when the job runs.";
    }
  }
  if (state.image && state.image.img) $("drop-help").textContent = "Drop, paste or press Enter to change the image.";
  refreshSizes();
}

async function takeFile(file) {
  if (!file) return;
  if (!file.type.startsWith("image/")) {
    showFieldError("image", `${file.name || "this file"} is not an image`, "use a JPEG, PNG or WebP");
    return;
  }
  $("image-url").value = "";
  await setImage(await readFile(file));
}

function isHTTP(s) {
  return /^https?:\/\/\S+$/i.test(s.trim());
}

function setupImageInput() {
  const drop = $("drop");
  $("file").addEventListener("change", () => takeFile($("file").files[0]));
  $("image-url").addEventListener("change", () => {
    const v = $("image-url").value.trim();
    if (v) setImage(v, { isURL: true });
  });
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      $("file").click();
    }
  });
  drop.addEventListener("click", () => $("file").click());
  for (const ev of ["dragenter", "dragover"]) {
    drop.addEventListener(ev, (e) => {
      e.preventDefault();
      drop.classList.add("over");
    });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const f = e.dataTransfer.files[0];
    if (f) return takeFile(f);
    const url = e.dataTransfer.getData("text/uri-list") || e.dataTransfer.getData("text/plain");
    if (url && isHTTP(url)) {
      $("image-url").value = url.trim();
      setImage(url.trim(), { isURL: true });
    }
  });
  document.addEventListener("paste", (e) => {
    const file = [...e.clipboardData.files].find((f) => f.type.startsWith("image/"));
    if (file) {
      e.preventDefault();
      takeFile(file);
      return;
    }
    const inField = e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement;
    const text = e.clipboardData.getData("text/plain");
    if (!inField && isHTTP(text)) {
      $("image-url").value = text.trim();
      setImage(text.trim(), { isURL: true });
    }
  });
}

async function setEndImage(src) {
  clearFieldError("end-image");
  state.endImage = src;
  $("end-preview").hidden = !src;
  $("end-clear").hidden = !src;
  if (src) $("end-preview").src = src;
  else $("end-preview").removeAttribute("src");
}

function setupEndImageInput() {
  $("end-file").addEventListener("change", async () => {
    const f = $("end-file").files[0];
    if (!f) return;
    $("end-url").value = "";
    await setEndImage(await readFile(f));
  });
  $("end-url").addEventListener("change", () => setEndImage($("end-url").value.trim()));
  $("end-clear").addEventListener("click", () => {
    $("end-file").value = "";
    $("end-url").value = "";
    setEndImage("");
    $("end-file").focus();
  });
}

// --- size, length and seed -------------------------------------------------

function imageSize() {
  const img = state.image && state.image.img;
  return img ? [img.naturalWidth, img.naturalHeight] : [832, 832];
}

function refreshSizes() {
  const sel = $("size");
  const keep = sel.value || "default";
  const [iw, ih] = imageSize();
  sel.replaceChildren();
  for (const p of presets(iw, ih, $("aspect").value)) {
    sel.add(new Option(`${p.width}×${p.height} (${p.label})`, p.key));
  }
  sel.add(new Option("custom…", "custom"));
  sel.value = keep;
  refreshPreview();
}

// videoSize is [width, height] of the video and the options that ask for it
// (none for the default: the server picks the same size).
function videoSize() {
  const [iw, ih] = imageSize();
  const key = $("size").value;
  let opts = {};
  if (key === "custom") {
    const w = intOrZero($("width").value);
    const h = intOrZero($("height").value);
    if (w) opts.width = w;
    if (h) opts.height = h;
  } else if (key !== "default") {
    opts.resolution = key;
  }
  if ($("aspect").value !== "auto") opts.aspect_ratio = $("aspect").value;
  return { size: jobSize(opts, iw, ih), opts };
}

function intOrZero(v) {
  const n = Number(v);
  return Number.isInteger(n) && n > 0 ? n : 0;
}

function refreshPreview() {
  const custom = $("size").value === "custom";
  $("custom-width").hidden = !custom;
  $("custom-height").hidden = !custom;
  const [w, h] = videoSize().size;
  const fit = $("fit").value;
  const canvas = $("preview");
  const img = state.image && state.image.img;
  canvas.hidden = !img;
  if (!img) {
    $("frame-info").textContent = state.image ? $("frame-info").textContent : "";
    return;
  }
  drawPreview(canvas, img, w, h, fit);
  const what = {
    crop: "the outlined frame is kept, the dimmed parts are cut",
    pad: "the whole image, black bars fill the rest",
    stretch: "the image is stretched to the frame",
  }[fit];
  $("frame-info").textContent = `Image ${img.naturalWidth}×${img.naturalHeight} → video ${w}×${h}, ${fit}: ${what}.`;
  $("frame-info").dataset.size = `${w}x${h}`;
}

// modelFPS is the rate of the model's frames: frame_rate, divided by the
// interpolation factor (frame_rate is then the delivered rate).
function modelFPS() {
  const factor = Number($("interpolate").value) || 1;
  $("fps").placeholder = String(16 * factor);
  return (Number($("fps").value) || 16 * factor) / factor;
}

function syncSeconds() {
  const n = Number($("length").value);
  if (n > 0) $("seconds").value = (n / modelFPS()).toFixed(2);
}

function syncFrames() {
  const s = Number($("seconds").value);
  if (s > 0) $("length").value = framesFor(s, modelFPS());
}

function syncPreset() {
  const p = PRESETS[$("preset").value] || PRESETS.fast;
  $("steps").placeholder = String(p.steps);
  $("cfg-high").placeholder = String(p.cfg_high);
  $("cfg-low").placeholder = String(p.cfg_low);
  $("shift").placeholder = String(p.shift);
}

function randomSeed() {
  const [a, b] = crypto.getRandomValues(new Uint32Array(2));
  return String((a & 0x1fffff) * 2 ** 32 + b); // below 2^53, as the worker's random seeds
}

// --- LoRAs -------------------------------------------------------------------

let loraCount = 0;
function addLoRA(l = {}) {
  const list = $("loras");
  if (list.children.length >= 4) return;
  const n = ++loraCount;
  const li = document.createElement("li");
  li.className = "lora";
  li.innerHTML = `
    <div class="field grow"><label for="lora-name-${n}">File or URL</label>
      <input id="lora-name-${n}" class="lora-name" placeholder="wan/style.safetensors or https://…/style.safetensors" autocomplete="off"></div>
    <div class="field"><label for="lora-strength-${n}">Strength</label>
      <input id="lora-strength-${n}" class="lora-strength" type="number" step="0.05" min="-4" max="4" value="1"></div>
    <div class="field"><label for="lora-expert-${n}">Expert</label>
      <select id="lora-expert-${n}" class="lora-expert">
        <option value="both">both</option><option value="high">high noise</option><option value="low">low noise</option>
      </select></div>
    <button type="button" class="lora-remove" aria-label="Remove this LoRA">Remove</button>`;
  li.querySelector(".lora-name").value = l.name || "";
  if (l.strength !== undefined) li.querySelector(".lora-strength").value = l.strength;
  if (l.expert) li.querySelector(".lora-expert").value = l.expert;
  li.querySelector(".lora-remove").addEventListener("click", () => {
    li.remove();
    $("lora-add").disabled = false;
    $("lora-add").focus();
  });
  list.append(li);
  $("lora-add").disabled = list.children.length >= 4;
  li.querySelector(".lora-name").focus();
}

function loras() {
  const out = [];
  for (const li of $("loras").children) {
    const name = li.querySelector(".lora-name").value.trim();
    if (!name) continue;
    out.push({
      ...(isHTTP(name) ? { url: name } : { name }),
      strength: numberOr(li.querySelector(".lora-strength").value),
      expert: li.querySelector(".lora-expert").value,
    });
  }
  return out;
}

// numberOr is the input's number, or its text when it is not one (the
// server then names the field).
function numberOr(v) {
  v = String(v).trim();
  if (v === "") return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : v;
}

// --- errors ------------------------------------------------------------------

function fieldKey(field) {
  if (!field) return "";
  for (const [f, key] of FIELDS) {
    if (field === f || field.startsWith(f + ".") || field.startsWith(f + "[")) return key;
  }
  return "";
}

function controlOf(key) {
  return $(CONTROL[key] || key);
}

function showFieldError(key, message, hint, code) {
  const box = $("err-" + key);
  if (!box) return false;
  box.replaceChildren();
  if (code) {
    const c = document.createElement("strong");
    c.textContent = code + " ";
    box.append(c);
  }
  box.append(message);
  if (hint) {
    const h = document.createElement("span");
    h.className = "hint";
    h.textContent = hint;
    box.append(h);
  }
  box.hidden = false;
  const ctl = controlOf(key);
  if (ctl) {
    ctl.setAttribute("aria-invalid", "true");
    const ids = new Set((ctl.getAttribute("aria-describedby") || "").split(" ").filter(Boolean));
    ids.add(box.id);
    ctl.setAttribute("aria-describedby", [...ids].join(" "));
  }
  return true;
}

function clearFieldError(key) {
  const box = $("err-" + key);
  if (!box) return;
  box.hidden = true;
  box.replaceChildren();
  const ctl = controlOf(key);
  if (ctl) ctl.removeAttribute("aria-invalid");
}

function clearErrors() {
  for (const box of document.querySelectorAll(".field-error")) clearFieldError(box.id.slice(4));
  $("error").hidden = true;
  $("error").replaceChildren();
}

// showError shows a job's typed error {code, message, field, hint}: next to
// its field, and in the box under the form. A merged error ("N problems:
// a; b") puts each problem next to the field it names.
function showError(err) {
  const box = $("error");
  box.replaceChildren();
  const head = document.createElement("p");
  const code = document.createElement("strong");
  code.textContent = err.code || "ERROR";
  head.append(code, " ", err.message || "");
  box.append(head);
  if (err.hint) {
    const h = document.createElement("p");
    h.className = "hint";
    h.textContent = "Hint: " + err.hint;
    box.append(h);
  }
  if (err.node_id) {
    const n = document.createElement("p");
    n.textContent = `ComfyUI node ${err.node_id} (${err.node_type || "?"})`;
    box.append(n);
  }
  box.hidden = false;

  let first = "";
  const key = fieldKey(err.field);
  if (key && showFieldError(key, err.message, err.hint, err.code)) first = key;
  const many = /^\d+ problems: (.*)$/s.exec(err.message || "");
  if (!key && many) {
    for (const part of many[1].split("; ")) {
      const m = /\b(prompt|negative_prompt|image|options\.[a-z_]+)/.exec(part);
      const k = m && fieldKey(m[1]);
      if (k && $("err-" + k).hidden) {
        showFieldError(k, part, "", err.code);
        first = first || k;
      }
    }
  }
  if (first) controlOf(first).focus();
}

function showAPIError(e) {
  if (e instanceof APIError && e.status === 413) {
    showFieldError("image", e.message, "", "HTTP 413");
  }
  showError({ code: e instanceof APIError && e.status ? "HTTP " + e.status : "ERROR", message: e.message });
}

// --- submitting and following a job ---------------------------------------

function jobBody() {
  const o = videoSize().opts;
  o.fit = $("fit").value;
  if ($("preset").value !== "fast") o.preset = $("preset").value;
  for (const [key, id] of [
    ["length", "length"],
    ["steps", "steps"],
    ["cfg_high", "cfg-high"],
    ["cfg_low", "cfg-low"],
    ["shift", "shift"],
    ["frame_rate", "fps"],
  ]) {
    const v = numberOr($(id).value);
    if (v !== undefined) o[key] = v;
  }
  if ($("interpolate").value) o.interpolate = { factor: Number($("interpolate").value), method: "ffmpeg" };
  if ($("quality").value) o.video_quality = $("quality").value;
  const l = loras();
  if (l.length) o.loras = l;
  o.last_frame = true; // for "continue from the last frame"
  const seed = $("seed").value.trim();
  // The seed may be above 2^53: write its digits into the JSON as they are.
  const digits = /^[0-9]+$/.test(seed);
  if (seed !== "") o.seed = digits ? "\u0000seed" : seed;
  const input = { prompt: $("prompt").value, image: state.image.src, options: o };
  if ($("negative").value !== "") input.negative_prompt = $("negative").value;
  if (state.endImage) input.end_image = state.endImage;
  const body = JSON.stringify({ input });
  return digits ? body.replace('"\\u0000seed"', seed) : body;
}

async function submit() {
  clearErrors();
  if (!state.image) {
    showFieldError("image", "choose an image first", "drop, paste or pick a JPEG, PNG or WebP, or give its URL");
    $("drop").focus();
    return;
  }
  if (!$("seed-lock").checked || $("seed").value.trim() === "") $("seed").value = randomSeed();
  const thumb = state.image.img ? thumbnail(state.image.img) : "";
  $("submit").disabled = true;
  let run;
  try {
    run = await api.run(jobBody());
  } catch (e) {
    $("submit").disabled = false;
    showAPIError(e);
    return;
  }
  history.add({ id: run.id, prompt: $("prompt").value, thumb, status: run.status, at: Date.now() });
  renderHistory();
  follow(run.id);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function resetProgress() {
  $("run").hidden = false;
  $("result").hidden = true;
  $("bar").value = 0;
  for (const id of ["stage", "step", "percent", "elapsed"]) $(id).textContent = "";
  $("stages").replaceChildren(
    ...STAGES.map(([key, label]) => {
      const li = document.createElement("li");
      li.dataset.stage = key;
      li.textContent = label;
      return li;
    }),
  );
}

function showProgress(p) {
  if (!p || !p.stage) return;
  $("bar").value = p.percent || 0;
  $("stage").textContent = STAGE_LABEL[p.stage] || p.stage;
  $("percent").textContent = `${p.percent || 0} %`;
  $("step").textContent = p.steps ? `step ${p.step}/${p.steps}` : "";
  if (!$("stages").querySelector(`li[data-stage="${p.stage}"]`)) {
    const li = document.createElement("li"); // a stage only some jobs have
    li.dataset.stage = p.stage;
    li.textContent = STAGE_LABEL[p.stage] || p.stage;
    const rank = (st) => (STAGE_ORDER.includes(st) ? STAGE_ORDER.indexOf(st) : STAGE_ORDER.length);
    const next = [...$("stages").children].find((o) => rank(o.dataset.stage) > rank(p.stage));
    $("stages").insertBefore(li, next || null);
  }
  for (const li of $("stages").children) {
    const current = li.dataset.stage === p.stage;
    if (current) li.classList.add("seen");
    if (current) li.setAttribute("aria-current", "step");
    else li.removeAttribute("aria-current");
  }
}

function setStatus(status) {
  $("status").textContent = STATUS_TEXT[status] || status;
  $("status").dataset.status = status;
  $("cancel").hidden = FINAL.has(status);
  if (FINAL.has(status)) {
    for (const li of $("stages").children) li.removeAttribute("aria-current");
  }
}

async function follow(id) {
  if (state.job) clearInterval(state.job.timer);
  const job = { id, t0: performance.now() };
  state.job = job;
  job.timer = setInterval(() => {
    $("elapsed").textContent = `${((performance.now() - job.t0) / 1000).toFixed(1)} s`;
  }, 200);
  resetProgress();
  setStatus("IN_QUEUE");
  $("submit").disabled = true;
  let status = "";
  let failures = 0;
  while (state.job === job) {
    try {
      const s = await api.stream(id);
      failures = 0;
      for (const c of s.stream || []) showProgress(c.output);
      status = s.status;
      if (state.job !== job) return;
      setStatus(status);
      if (FINAL.has(status)) break;
    } catch (e) {
      if (++failures >= 5 || (e instanceof APIError && e.status === 404)) {
        stop(job);
        showAPIError(e);
        history.update(id, { status: e.status === 404 ? "GONE" : "UNKNOWN" });
        renderHistory();
        return;
      }
    }
    await sleep(400);
  }
  if (state.job !== job) return;
  try {
    finish(await api.status(id));
  } catch (e) {
    showAPIError(e);
  }
  stop(job);
}

function stop(job) {
  clearInterval(job.timer);
  if (state.job === job) state.job = null;
  $("submit").disabled = false;
}

function finish(st) {
  setStatus(st.status);
  history.update(st.id, { status: st.status, seed: st.output && st.output.seed });
  renderHistory();
  if (st.status === "COMPLETED") {
    $("bar").value = 100;
    showResult(st);
  } else if (st.status === "FAILED" || st.status === "TIMED_OUT") {
    const e = (st.output && st.output.error) || {};
    showError({ code: e.code || st.status, message: e.message || st.error || "the job failed", ...e });
  }
}

function showResult(st) {
  const out = st.output || {};
  state.result = out;
  if (state.videoURL) URL.revokeObjectURL(state.videoURL);
  state.videoURL = "";
  let src = "";
  if (out.video) src = state.videoURL = URL.createObjectURL(base64Blob(out.video, out.mime_type || "video/mp4"));
  else if (out.video_url) src = out.video_url;
  const video = $("video");
  video.hidden = !src;
  $("download").hidden = !src;
  if (src) {
    video.src = src;
    $("download").href = src;
    $("download").download = out.filename ? `${st.id}-${out.filename}` : `${st.id}.mp4`;
  } else {
    video.removeAttribute("src");
  }
  $("video-path").hidden = !out.video_path;
  $("video-path").textContent = out.video_path ? `Written on the server to ${out.video_path}` : "";
  $("continue").disabled = !(out.last_frame || out.last_frame_url);

  const facts = [
    ["Seed", out.seed],
    ["Size", out.width && `${out.width}×${out.height}`],
    ["Frames", out.frames && `${out.frames} at ${out.frame_rate} fps = ${out.duration_s} s`],
    ["File", out.size_bytes && `${(out.size_bytes / 1e6).toFixed(2)} MB`],
    ["Job", st.id],
    ["Waited", st.delayTime !== undefined && `${(st.delayTime / 1000).toFixed(1)} s in the queue`],
  ];
  const t = out.timings_ms || {};
  for (const k of ["total", "inference", "validate", "upload", "queue", "fetch", "deliver"]) {
    if (t[k] !== undefined) facts.push([k === "total" ? "Time" : `· ${k}`, `${(t[k] / 1000).toFixed(2)} s`]);
  }
  const dl = $("facts");
  dl.replaceChildren();
  for (const [k, v] of facts) {
    if (v === undefined || v === false || v === "" || v === null) continue;
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = String(v);
    if (k === "Seed") dd.id = "result-seed";
    dl.append(dt, dd);
  }
  $("result").hidden = false;
}

async function continueFromLastFrame() {
  const out = state.result;
  if (!out) return;
  const src = out.last_frame ? "data:image/png;base64," + out.last_frame : out.last_frame_url;
  $("image-url").value = out.last_frame ? "" : src;
  await setImage(src, { isURL: !out.last_frame });
  await submit();
}

async function cancel() {
  const job = state.job;
  if (!job) return;
  $("cancel").disabled = true;
  try {
    const s = await api.cancel(job.id);
    setStatus(s.status);
  } catch (e) {
    showAPIError(e);
  } finally {
    $("cancel").disabled = false;
  }
}

// --- history -----------------------------------------------------------------

function renderHistory() {
  const list = history.load();
  $("history-empty").hidden = list.length > 0;
  $("history-clear").hidden = list.length === 0;
  $("history").replaceChildren(
    ...list.map((e) => {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "history-item";
      b.dataset.id = e.id;
      if (e.thumb) {
        const img = document.createElement("img");
        img.src = e.thumb;
        img.alt = "";
        b.append(img);
      }
      const text = document.createElement("span");
      text.className = "history-text";
      const p = document.createElement("span");
      p.className = "history-prompt";
      p.textContent = e.prompt || "(no prompt)";
      const meta = document.createElement("span");
      meta.className = "history-meta";
      meta.textContent = `${new Date(e.at).toLocaleString()} · ${e.id.slice(0, 8)}`;
      text.append(p, meta);
      const s = document.createElement("span");
      s.className = "badge " + String(e.status).toLowerCase();
      s.textContent = STATUS_TEXT[e.status] || (e.status === "GONE" ? "Expired" : e.status);
      b.append(text, s);
      b.setAttribute("aria-label", `Open ${e.prompt || "job"}, ${s.textContent}`);
      b.addEventListener("click", () => reopen(e));
      li.append(b);
      return li;
    }),
  );
}

async function reopen(e) {
  clearErrors();
  if (e.prompt) $("prompt").value = e.prompt;
  if (state.job && state.job.id === e.id) return;
  try {
    const st = await api.status(e.id);
    if (FINAL.has(st.status)) {
      resetProgress();
      finish(st);
    } else {
      follow(e.id);
    }
  } catch (err) {
    if (err instanceof APIError && err.status === 404) {
      history.update(e.id, { status: "GONE" });
      renderHistory();
      showError({
        code: "EXPIRED",
        message: `the server no longer has job ${e.id}`,
        hint: "finished jobs are kept for API_RESULT_TTL (1 hour by default) and are lost when the server restarts",
      });
      return;
    }
    showAPIError(err);
  }
}

// --- wiring ------------------------------------------------------------------

function init() {
  setupImageInput();
  setupEndImageInput();
  refreshSizes();
  syncPreset();
  $("preset").addEventListener("change", syncPreset);
  $("aspect").addEventListener("change", refreshSizes);
  $("interpolate").addEventListener("change", syncSeconds);
  $("size").addEventListener("change", refreshPreview);
  $("fit").addEventListener("change", refreshPreview);
  $("width").addEventListener("input", refreshPreview);
  $("height").addEventListener("input", refreshPreview);
  $("length").addEventListener("input", syncSeconds);
  $("seconds").addEventListener("change", () => {
    syncFrames();
    syncSeconds();
  });
  $("fps").addEventListener("input", syncSeconds);
  $("seed").value = randomSeed();
  $("seed-random").addEventListener("click", () => {
    $("seed").value = randomSeed();
  });
  $("lora-add").addEventListener("click", () => addLoRA());
  $("job").addEventListener("submit", (e) => {
    e.preventDefault();
    submit();
  });
  $("prompt").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      submit();
    }
  });
  $("cancel").addEventListener("click", cancel);
  $("token-cancel").addEventListener("click", () => $("token-dialog").close("cancel"));
  $("continue").addEventListener("click", continueFromLastFrame);
  $("token-button").addEventListener("click", async () => {
    const t = await askToken("The API token of this server (API_TOKEN); leave empty to forget it.");
    if (t !== null) storeToken(t);
  });
  $("history-clear").addEventListener("click", () => {
    history.clear();
    renderHistory();
  });
  syncSeconds();
  renderHistory();
  resume();
}

// resume brings the history's unfinished jobs up to date after a reload, and
// follows the newest one that still runs. It never asks for the token.
async function resume() {
  let follow_ = "";
  for (const e of history.load()) {
    if (FINAL.has(e.status) || e.status === "GONE") continue;
    try {
      const st = await api.statusQuiet(e.id);
      history.update(e.id, { status: st.status });
      if (!FINAL.has(st.status) && !follow_) follow_ = e.id;
    } catch (err) {
      if (err instanceof APIError && err.status === 404) history.update(e.id, { status: "GONE" });
    }
  }
  renderHistory();
  if (follow_ && !state.job) follow(follow_);
}

init();
