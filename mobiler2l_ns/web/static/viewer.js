// mobiler2l-view page: renders a mobiler2l-onnx export with onnxruntime-web.
//
// Per frame: pose -> sampler.onnx -> points -> embedder.onnx -> encoding -> model.onnx -> image,
// the chain of mobiler2l_ns/export/runtime.py (same tensors, same float32 pose), drawn 1:1 into a
// canvas of the exported size H x W. Reduced resolution 1/f: the encoding of every f-th ray
// (both directions) goes through /preview/model.onnx (model.onnx with symbolic spatial dims) and
// the smaller image is drawn scaled by f, aligned on its rays. While the camera moves, frames use
// the "while moving" resolution; 200 ms after it stops, one frame at the chosen resolution.
//
// For tests and scripts: window.mobiler2l (see the API object at the end of this file).

import * as ort from '/ort/ort.min.mjs';
import { composePose, elevationOf, lookAt, toNormalised, viewerPose, orbitPoses } from '/static/camera.js';

const STILL_MS = 200;
const ELEVATION_LIMIT = Math.PI / 2 - 0.05;
const LEVELS = [1, 2, 4, 8];
const params = new URLSearchParams(window.location.search);
const $ = (id) => document.getElementById(id);

const api = {
  ready: false,
  error: null,
  provider: null,
  threads: null,
  metadata: null,
  lastFrameMs: null,
  lastStageMs: null,
  lastLevel: null,
  frames: 0,
  levelsRendered: [],
  previewAvailable: false,
};
window.mobiler2l = api;

function showError(message) {
  api.error = message;
  const box = $('error');
  box.textContent = message;
  box.hidden = false;
  $('status').textContent = 'error';
  console.error(message);
}

function errorText(err) {
  return (err && err.message ? err.message : String(err)).split('\n')[0];
}

// --------------------------------------------------------------------------- loading

async function fetchMetadata() {
  let response;
  try {
    response = await fetch('/export/metadata.json');
  } catch (err) {
    throw new Error(`Cannot load metadata.json: ${errorText(err)}`);
  }
  if (!response.ok) throw new Error(`Cannot load metadata.json: HTTP ${response.status}`);
  try {
    return await response.json();
  } catch (err) {
    throw new Error(`metadata.json is not valid JSON: ${errorText(err)}`);
  }
}

async function chooseProvider() {
  const wanted = params.get('ep');
  if (wanted === 'wasm') return 'wasm';
  const adapter = navigator.gpu ? await navigator.gpu.requestAdapter().catch(() => null) : null;
  if (wanted === 'webgpu' && !adapter) {
    console.warn('mobiler2l: ?ep=webgpu asked for, but the browser has no WebGPU adapter: using wasm');
  }
  return adapter ? 'webgpu' : 'wasm';
}

async function createSession(url, label, provider) {
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new Error(`Cannot load ${label}: ${errorText(err)}`);
  }
  if (!response.ok) throw new Error(`Cannot load ${label}: HTTP ${response.status} ${response.statusText}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  try {
    const options = { executionProviders: [provider], graphOptimizationLevel: 'all', logSeverityLevel: 3 };
    return await ort.InferenceSession.create(bytes, options);
  } catch (err) {
    throw new Error(`Cannot load ${label}: ${errorText(err)}`);
  }
}

/** The metadata's tensor names and shapes against the session's (throws a one-line Error). */
function checkSession(session, spec, file) {
  const describe = (list) => list.map((x) => x.name).join(', ');
  for (const [kind, mine, theirs] of [
    ['inputs', session.inputMetadata, spec.inputs],
    ['outputs', session.outputMetadata, spec.outputs],
  ]) {
    if (!mine) continue;
    if (mine.length !== theirs.length || mine.some((m, i) => m.name !== theirs[i].name)) {
      throw new Error(`${file}: ${kind} [${describe(mine)}] but metadata.json describes [${describe(theirs)}]`);
    }
    mine.forEach((m, i) => {
      const want = theirs[i].shape;
      if (m.shape && JSON.stringify(m.shape) !== JSON.stringify(want)) {
        throw new Error(`${file}: ${m.name} has shape [${m.shape}] but metadata.json says [${want}]`);
      }
    });
  }
}

// --------------------------------------------------------------------------- state

const state = {
  meta: null,
  sessions: {},
  names: null,
  base: null, // pose the orbit starts from (normalised world)
  a: 0,
  b: 0,
  zoom: 1,
  moving: false,
  stillTimer: null,
  dirty: false,
  loopRunning: false,
  lock: Promise.resolve(),
  canvas: null,
  ctx: null,
  scratch: document.createElement('canvas'),
};

function currentPose() {
  return viewerPose(state.base, state.meta.orbit, state.a, state.b, state.zoom);
}

/** Run `fn` after every frame already queued (frames never overlap). */
function withLock(fn) {
  const run = state.lock.then(fn, fn);
  state.lock = run.catch(() => {});
  return run;
}

function availableLevels() {
  const { lowres_height: h, lowres_width: w } = state.meta;
  return LEVELS.filter((f) => f === 1 || (api.previewAvailable && Math.min(Math.ceil(h / f), Math.ceil(w / f)) >= 2));
}

function levelLabel(f) {
  const m = state.meta;
  if (f === 1) return `${m.width}\u00d7${m.height} (exported)`;
  const w = Math.ceil(m.lowres_width / f) * m.sr_factor;
  const h = Math.ceil(m.lowres_height / f) * m.sr_factor;
  return `1/${f}: ${w}\u00d7${h}, every ${f === 2 ? '2nd' : `${f}th`} ray`;
}

// --------------------------------------------------------------------------- rendering

/** Encoding [1, C, h, w] -> every f-th ray in both directions: [1, C, ceil(h/f), ceil(w/f)]. */
function subsample(encoding, f) {
  const [, C, h, w] = encoding.dims;
  const hp = Math.ceil(h / f);
  const wp = Math.ceil(w / f);
  const src = encoding.data;
  const dst = new Float32Array(C * hp * wp);
  let o = 0;
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < hp; i++) {
      const row = c * h * w + i * f * w;
      for (let j = 0; j < wp; j++) dst[o++] = src[row + j * f];
    }
  }
  return new ort.Tensor('float32', dst, [1, C, hp, wp]);
}

/** NCHW float RGB in [0, 1] -> ImageData (rounded as runtime.to_uint8: floor(clip(x) * 255 + 0.5)). */
function toImageData(image) {
  const [, , H, W] = image.dims;
  const data = image.data;
  const out = new ImageData(W, H);
  const px = out.data;
  const plane = H * W;
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      const v = data[c * plane + p];
      px[4 * p + c] = Math.floor((v > 1 ? 1 : v > 0 ? v : 0) * 255 + 0.5);
    }
    px[4 * p + 3] = 255;
  }
  return out;
}

/** Draw a 1/f image onto the H x W canvas, each preview ray's block centred on that ray's block. */
function drawPreview(imageData, f) {
  const { ctx, scratch } = state;
  const s = state.meta.sr_factor;
  const { width: W, height: H } = state.canvas;
  scratch.width = imageData.width;
  scratch.height = imageData.height;
  scratch.getContext('2d').putImageData(imageData, 0, 0);
  const offset = (-s * (f - 1)) / 2;
  const dw = imageData.width * f;
  const dh = imageData.height * f;
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(scratch, offset, offset, dw, dh);
  const right = offset + dw;
  const bottom = offset + dh;
  const iw = imageData.width;
  const ih = imageData.height;
  if (right < W) ctx.drawImage(scratch, iw - 1, 0, 1, ih, right, offset, W - right, dh);
  if (bottom < H) ctx.drawImage(scratch, 0, ih - 1, iw, 1, offset, bottom, dw, H - bottom);
  if (right < W && bottom < H) ctx.drawImage(scratch, iw - 1, ih - 1, 1, 1, right, bottom, W - right, H - bottom);
}

/** One frame of `pose` at level f (1: full): runs the chain and draws. Returns its timings. */
async function renderFrame(pose, f) {
  const { sessions, names } = state;
  const start = performance.now();
  const rotation = Float32Array.from([0, 1, 2].flatMap((i) => pose[i].slice(0, 3)));
  const translation = Float32Array.from([pose[0][3], pose[1][3], pose[2][3]]);
  const sampled = await sessions.sampler.run({
    [names.rotation]: new ort.Tensor('float32', rotation, [3, 3]),
    [names.translation]: new ort.Tensor('float32', translation, [3]),
  });
  const t1 = performance.now();
  const embedded = await sessions.embedder.run({ [names.points]: sampled[names.points] });
  const t2 = performance.now();
  const encoding = f === 1 ? embedded[names.encoding] : subsample(embedded[names.encoding], f);
  const result = await (f === 1 ? sessions.model : sessions.preview).run({ [names.encoding]: encoding });
  const t3 = performance.now();
  const image = toImageData(result[names.image]);
  if (f === 1) state.ctx.putImageData(image, 0, 0);
  else drawPreview(image, f);
  state.lastRaw = image;
  const end = performance.now();
  const timing = { ms: end - start, sampler: t1 - start, embedder: t2 - t1, model: t3 - t2, draw: end - t3 };
  api.lastFrameMs = timing.ms;
  api.lastStageMs = timing;
  api.lastLevel = f;
  api.frames += 1;
  api.levelsRendered.push(f);
  if (api.levelsRendered.length > 100) api.levelsRendered.shift();
  $('frame-ms').textContent =
    `${timing.ms.toFixed(1)} ms/frame (model ${timing.model.toFixed(1)} ms) \u00b7 ` +
    `${f === 1 ? 'full' : `1/${f}`} \u00b7 ${api.provider}${api.threads ? `, ${api.threads} thread(s)` : ''}`;
  $('pose').textContent = pose.map((row) => row.map((x) => x.toPrecision(8)).join(' ')).join('  ');
  return timing;
}

function stillLevel() {
  return Number($('resolution').value);
}

function movingLevel() {
  return Math.max(stillLevel(), Number($('moving').value));
}

function schedule() {
  state.dirty = true;
  if (!state.loopRunning) renderLoop();
}

async function renderLoop() {
  state.loopRunning = true;
  try {
    while (state.dirty) {
      state.dirty = false;
      const level = state.moving ? movingLevel() : stillLevel();
      await withLock(() => renderFrame(currentPose(), level));
    }
  } catch (err) {
    showError(`Rendering failed: ${errorText(err)}`);
  } finally {
    state.loopRunning = false;
  }
}

function cameraMoved() {
  state.moving = true;
  clearTimeout(state.stillTimer);
  state.stillTimer = setTimeout(() => {
    state.moving = false;
    schedule();
  }, STILL_MS);
  schedule();
}

// --------------------------------------------------------------------------- input

const pointers = new Map();

function orbitBy(dx, dy) {
  const meta = state.meta;
  const size = Math.max(state.canvas.clientWidth, 1);
  if (meta.orbit.kind === 'turntable') {
    const k = Math.PI / size; // half a turn per canvas width
    const a = state.a - dx * k;
    const b = state.b - dy * k;
    state.a = a;
    const before = Math.abs(elevationOf(viewerPose(state.base, meta.orbit, a, state.b, state.zoom), meta.orbit));
    const after = Math.abs(elevationOf(viewerPose(state.base, meta.orbit, a, b, state.zoom), meta.orbit));
    if (after < ELEVATION_LIMIT || after < before) state.b = b; // never over a pole
  } else {
    const k = 4 / size; // four orbit radii per canvas width
    state.a = Math.max(-4, Math.min(4, state.a - dx * k));
    state.b = Math.max(-4, Math.min(4, state.b + dy * k));
  }
  cameraMoved();
}

function zoomBy(factor) {
  state.zoom = Math.max(0.2, Math.min(5, state.zoom * factor));
  cameraMoved();
}

function pinchDistance() {
  const [p, q] = [...pointers.values()];
  return Math.hypot(p.x - q.x, p.y - q.y);
}

function installInput(canvas) {
  canvas.addEventListener('pointerdown', (e) => {
    try {
      canvas.setPointerCapture(e.pointerId); // keep receiving moves outside the canvas
    } catch {
      // synthetic or already released pointers cannot be captured
    }
    pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    e.preventDefault();
  });
  canvas.addEventListener('pointermove', (e) => {
    const previous = pointers.get(e.pointerId);
    if (!previous) return;
    if (pointers.size === 1) {
      pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
      orbitBy(e.clientX - previous.x, e.clientY - previous.y);
    } else if (pointers.size === 2) {
      const before = pinchDistance();
      pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
      const after = pinchDistance();
      if (before > 0 && after > 0) zoomBy(before / after);
    }
    e.preventDefault();
  });
  const release = (e) => pointers.delete(e.pointerId);
  canvas.addEventListener('pointerup', release);
  canvas.addEventListener('pointercancel', release);
  canvas.addEventListener(
    'wheel',
    (e) => {
      zoomBy(Math.exp(e.deltaY * 0.001));
      e.preventDefault();
    },
    { passive: false },
  );
  canvas.addEventListener('dblclick', () => resetCamera());
}

function resetCamera(base) {
  state.base = base || state.meta.reference_pose;
  state.a = 0;
  state.b = 0;
  state.zoom = 1;
  schedule();
}

// --------------------------------------------------------------------------- API

/** Resolves when the camera is still and no frame is queued or running. */
async function idle() {
  while (state.moving || state.loopRunning || state.dirty) await new Promise((r) => setTimeout(r, 10));
  await state.lock;
}

/**
 * Render a pose and resolve when it is on the canvas. rotation: 3x3 (nested or 9 numbers,
 * row-major), translation: 3 numbers; options.originalCoords: the pose is in the capture's
 * coordinates (mapped with metadata.dataparser_transform); options.level: 1 (full, default), 2, 4.
 * The orbit camera continues from this pose.
 */
async function renderPose(rotation, translation, options = {}) {
  let pose = composePose(rotation, translation);
  if (options.originalCoords) {
    const dp = state.meta.dataparser_transform;
    pose = toNormalised(pose, dp.transform, dp.scale);
  }
  const level = options.level || 1;
  if (level !== 1 && !availableLevels().includes(level)) throw new Error(`level ${level} is not available`);
  await idle();
  state.base = pose;
  state.a = 0;
  state.b = 0;
  state.zoom = 1;
  const timing = await withLock(() => renderFrame(pose, level));
  return { ...timing, level, pose, width: state.lastRaw.width, height: state.lastRaw.height };
}

/**
 * Timings of `repeats` frames of the reference pose at `level`, after untimed frames: at least
 * `warmup` of them and for at least `warmupMs` (V8 first runs wasm with its baseline compiler
 * and moves hot functions to its optimising one in the background, over the first seconds).
 */
async function benchmark(repeats = 5, warmup = 2, level = 1, warmupMs = 0) {
  await idle();
  const pose = state.meta.reference_pose;
  const start = performance.now();
  for (let i = 0; i < warmup || performance.now() - start < warmupMs; i++) {
    await withLock(() => renderFrame(pose, level));
  }
  const times = [];
  for (let i = 0; i < repeats; i++) times.push(await withLock(() => renderFrame(pose, level)));
  return times;
}

Object.assign(api, {
  renderPose,
  idle,
  benchmark,
  availableLevels,
  setLevels(still, moving) {
    if (still !== undefined) $('resolution').value = String(still);
    if (moving !== undefined) $('moving').value = String(moving);
  },
  cameraPose: () => currentPose(),
  lookAt,
  cameraParams: () => ({ a: state.a, b: state.b, zoom: state.zoom }),
  viewerPose: (a, b, zoom, base) => viewerPose(base || state.meta.reference_pose, state.meta.orbit, a, b, zoom),
  orbitPoses: (frames, base) => orbitPoses(base || state.meta.reference_pose, state.meta.orbit, frames),
  toNormalised: (c2w) => toNormalised(c2w, state.meta.dataparser_transform.transform, state.meta.dataparser_transform.scale),
  rawPixels: () => ({ width: state.lastRaw.width, height: state.lastRaw.height, data: Array.from(state.lastRaw.data) }),
});

// --------------------------------------------------------------------------- start

function fillSelect(select, levels, selected) {
  select.replaceChildren(
    ...levels.map((f) => {
      const option = document.createElement('option');
      option.value = String(f);
      option.textContent = levelLabel(f);
      option.selected = f === selected;
      return option;
    }),
  );
}

async function main() {
  const meta = await fetchMetadata();
  if (meta.format !== 'mobiler2l-onnx') throw new Error('metadata.json is not a mobiler2l-onnx metadata file');
  if (meta.target === 'snap') throw new Error('a --target snap export runs only in Lens Studio');
  state.meta = meta;
  api.metadata = meta;
  const graphs = meta.graphs;
  state.names = {
    rotation: graphs.sampler.inputs[0].name,
    translation: graphs.sampler.inputs[1].name,
    points: graphs.sampler.outputs[0].name,
    encoding: graphs.embedder.outputs[0].name,
    image: graphs.model.outputs[0].name,
  };
  if (params.has('threads')) ort.env.wasm.numThreads = Math.max(1, Number(params.get('threads')) || 1);
  ort.env.wasm.wasmPaths = '/ort/';
  ort.env.logLevel = 'error';
  let provider = await chooseProvider();
  $('status').textContent = `loading graphs (${provider})\u2026`;

  const load = async (ep) => {
    const sessions = {};
    for (const name of ['sampler', 'embedder', 'model']) {
      const file = graphs[name].file;
      sessions[name] = await createSession(`/export/${file}`, file, ep);
      checkSession(sessions[name], graphs[name], file);
    }
    return sessions;
  };
  try {
    state.sessions = await load(provider);
  } catch (err) {
    if (provider !== 'webgpu' || /metadata\.json/.test(err.message)) throw err;
    console.warn(`mobiler2l: WebGPU failed (${errorText(err)}): using wasm`);
    provider = 'wasm';
    state.sessions = await load(provider);
  }
  api.provider = provider;
  api.threads = provider === 'wasm' ? ort.env.wasm.numThreads || null : null;

  const canvas = $('view');
  canvas.width = meta.width;
  canvas.height = meta.height;
  canvas.style.setProperty('--aspect', String(meta.width / meta.height));
  state.canvas = canvas;
  state.ctx = canvas.getContext('2d', { willReadFrequently: true });
  $('title').textContent = `${meta.width}\u00d7${meta.height} \u00b7 ${meta.network.parameters.toLocaleString()} parameters`;
  fillSelect($('resolution'), [1], 1);
  fillSelect($('moving'), [1], 1);
  installInput(canvas);
  $('reset').addEventListener('click', () => resetCamera());
  $('resolution').addEventListener('change', () => schedule());
  state.base = meta.reference_pose;
  await withLock(() => renderFrame(currentPose(), 1));
  $('status').textContent = '';
  api.ready = true;

  try {
    state.sessions.preview = await createSession('/preview/model.onnx', 'preview model (reduced resolutions)', provider);
    api.previewAvailable = true;
  } catch (err) {
    console.warn(`mobiler2l: reduced resolutions unavailable: ${errorText(err)}`);
    $('status').textContent = `reduced resolutions unavailable (${errorText(err)})`;
  }
  const levels = availableLevels();
  fillSelect($('resolution'), levels, 1);
  fillSelect($('moving'), levels, levels[Math.min(levels.length - 1, 2)]);
  api.previewReady = true;
}

main().catch((err) => showError(errorText(err)));
