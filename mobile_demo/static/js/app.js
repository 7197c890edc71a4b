// The Emotekit keyboard page: wires the models, the camera loop, the keyboard and the panels.
import {toInput as detectorInput} from './blazeface.js';
import {DEFAULT_CONTRACT, contractFrom, cropBox, cropEngine, cropPlan, cropRect, cropSquare, dropCropWasm, loadCropWasm} from './crop.js';
import {rankLive} from './cues.js';
import {setupDcgan} from './emote_dcgan.js';
import {setupMorph} from './emote_morph.js';
import {setupStylegan} from './emote_stylegan.js';
import {MESH_URL} from './face_mesh.js';
import {Keyboard, TextField, pushRecent} from './keyboard.js';
import {LiveFace, LiveTracker, Recorder} from './live.js';
import {drawLiveEmoji} from './live_emoji.js';
import {Runner, fetchJson, findModel, loadManifest, loadRuntime} from './runtime.js';
import {EmojiRanker, FacePipeline, Stats, SUGGESTIONS, parseEmojiTable} from './suggest.js';

const DETECTOR_URL = '/vendor/face_detection_short_range.tflite';

const $ = (id) => document.getElementById(id);
const state = {
  pipeline: null,
  ranker: null,
  stream: null,
  running: false,
  stats: new Stats(),
  lastTime: 0,
  shown: '',
  detectorNote: '',
  pipelineNote: 'The expression model isn\'t shipped yet: no suggestions from the camera. The keyboard still works.',
  labels: [], // the expression model's classes, in its output order (its manifest entry's "labels")
  live: {
    on: false,
    tracker: null, // LiveTracker once the face mesh is loaded
    loading: null, // the mesh's Runner.load promise
    face: new LiveFace(),
    recorder: new Recorder(),
    sticker: null, // the last sticker: {url (blob), blob, frames}
    drawn: 0, // frames drawn since live went on
    seen: false, // whether the last frame had a face
  },
};
const field = new TextField($('text'));

let toastTimer = 0;
function toast(msg) {
  $('toast').textContent = msg;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => ($('toast').textContent = ''), 2500);
}
function status(msg) {
  $('status').textContent = msg;
}

function insertEmoji(emoji) {
  field.insertText(emoji);
}

// ---- suggestions ----------------------------------------------------------------------------

function renderSuggestions(list) {
  const key = list.map((s) => s.emoji).join('');
  if (key === state.shown) return;
  state.shown = key;
  const bar = $('suggestions');
  bar.replaceChildren(
    ...list.map((s) => {
      const b = document.createElement('button');
      b.dataset.emoji = s.emoji;
      b.textContent = s.emoji;
      b.title = b.ariaLabel = s.name;
      return b;
    }),
  );
}

$('suggestions').addEventListener('click', (ev) => {
  const b = ev.target.closest('button[data-emoji]');
  if (!b) return;
  pushRecent(b.dataset.emoji);
  insertEmoji(b.dataset.emoji);
});

function drawOverlay(result, width, height) {
  const c = $('overlay');
  const ctx = c.getContext('2d');
  ctx.clearRect(0, 0, c.width, c.height);
  if (!result.box) return;
  const sx = c.width / width;
  const sy = c.height / height;
  ctx.strokeStyle = result.face ? '#ffcc4d' : '#9aa3b5';
  ctx.lineWidth = 2;
  const t = result.box.turn;
  if (!t) {
    ctx.strokeRect(result.box.x * sx, result.box.y * sy, result.box.side * sx, result.box.side * sy);
    return;
  }
  // The crop's own square, turned with the eyes.
  ctx.beginPath();
  [[-1, -1], [1, -1], [1, 1], [-1, 1]].forEach(([u, v], i) => {
    const x = (t.cx + (t.side / 2) * (u * t.c - v * t.s)) * sx;
    const y = (t.cy + (t.side / 2) * (u * t.s + v * t.c)) * sy;
    if (i) ctx.lineTo(x, y);
    else ctx.moveTo(x, y);
  });
  ctx.closePath();
  ctx.stroke();
}

// ---- live emoji -----------------------------------------------------------------------------

/**
 * One live frame: the tracked mesh and the expression (live.js LiveTracker), the face's smoothed coefficients
 * and the emoji drawn from them; ms gains geometry and draw (and total them). result.coeffs: null without a face.
 */
async function liveFrame(source, w, h) {
  const L = state.live;
  const r = await L.tracker.process(source, w, h);
  let t = performance.now();
  r.coeffs = null;
  if (r.landmarks) {
    if (r.newTrack) L.face.restart();
    r.coeffs = L.face.update(r.landmarks, t / 1000);
  }
  r.ms.geometry = performance.now() - t;
  t = performance.now();
  if (r.coeffs) {
    const c = $('live-emoji');
    const ctx = c.getContext('2d');
    ctx.clearRect(0, 0, c.width, c.height);
    drawLiveEmoji(ctx, r.coeffs, c.width);
    L.drawn += 1;
  }
  L.seen = !!r.coeffs;
  r.ms.draw = performance.now() - t;
  r.ms.total += r.ms.geometry + r.ms.draw;
  return r;
}

/** The suggestions while live is on: the table ranked with the face's cues (cues.js rankLive); ms gains rank. */
function liveRanking(result) {
  const t = performance.now();
  const top = rankLive(state.ranker.table, state.ranker.smoothed, result.coeffs, SUGGESTIONS);
  result.ms.rank = performance.now() - t;
  result.ms.total += result.ms.rank;
  return top;
}

function liveNote() {
  const L = state.live;
  if (!L.on) return '';
  if (L.face.calibrating) return 'Calibrating: a neutral face for 2 s…';
  if (L.recorder.recording) return 'Recording…';
  return L.seen ? 'Live · your neutral face is kept on this device' : 'Live · looking for a face';
}

function liveUi(on) {
  $('live').hidden = !on;
  const t = $('live-toggle');
  t.setAttribute('aria-pressed', String(on));
  t.textContent = on ? '🙂 Live on' : '🙂 Live';
  document.body.dataset.live = on ? 'on' : 'off';
  if (on) {
    const c = $('live-emoji');
    c.getContext('2d').clearRect(0, 0, c.width, c.height);
  }
  $('live-note').textContent = liveNote();
}

async function setLive(on) {
  const L = state.live;
  if (!on) {
    L.on = false;
    L.recorder.cancel();
    $('live-record').disabled = false;
    if (state.pipeline) state.pipeline.reset();
    liveUi(false);
    return;
  }
  if (!state.pipeline || !state.pipeline.detector) {
    status(state.pipeline ? 'The live emoji needs the face detector (run scripts/setup.sh --web).' : state.pipelineNote);
    return;
  }
  if (!L.tracker) {
    L.loading = L.loading || Runner.load(MESH_URL);
    try {
      L.tracker = new LiveTracker(state.pipeline, await L.loading);
    } catch (e) {
      L.loading = null;
      console.warn('face mesh:', e.message);
      status(`No live emoji: the face mesh did not load (${e.message}; run scripts/setup.sh --web).`);
      return;
    }
  }
  L.tracker.reset();
  L.face.start();
  L.drawn = 0;
  L.seen = false;
  L.on = true;
  liveUi(true);
  if (!state.running) await startCamera();
  if (!state.running) setLive(false);
}

async function finishRecording() {
  const L = state.live;
  const frames = L.recorder.frames.length;
  const blob = await L.recorder.finish();
  if (L.sticker) URL.revokeObjectURL(L.sticker.url);
  L.sticker = {url: URL.createObjectURL(blob), blob, frames};
  const a = $('live-sticker');
  a.href = L.sticker.url;
  a.dataset.frames = String(frames);
  a.hidden = false;
  $('live-insert').hidden = false;
  $('live-record').disabled = false;
  $('live-record').textContent = '⏺ Record 2 s';
  toast(`Sticker ready: ${frames} frames, ${Math.round(blob.size / 1024)} kB`);
}

$('live-toggle').addEventListener('click', () => setLive(!state.live.on));
$('live-record').addEventListener('click', () => {
  const L = state.live;
  if (!L.on || L.recorder.recording) return;
  L.recorder.start(performance.now());
  $('live-record').disabled = true;
  $('live-record').textContent = '⏺ Recording…';
});
$('live-insert').addEventListener('click', () => {
  const s = state.live.sticker;
  if (!s) return;
  // A data URL: the sticker outlives the blob URL of the next recording.
  const reader = new FileReader();
  reader.onload = () => {
    field.insertSticker(reader.result, 'live emoji');
    toast('Inserted live emoji');
  };
  reader.readAsDataURL(s.blob);
});

// ---- camera loop ----------------------------------------------------------------------------

async function step() {
  const video = $('video');
  if (!state.running) return;
  if (video.readyState >= 2 && video.videoWidth) {
    const w = video.videoWidth;
    const h = video.videoHeight;
    const live = state.live.on && state.live.tracker;
    let result;
    try {
      result = live ? await liveFrame(video, w, h) : await state.pipeline.process(video, w, h);
    } catch (e) {
      console.error(e);
      stopCamera();
      status(`The models failed on a camera frame: ${e.message}`);
      return;
    }
    const now = performance.now();
    const L = state.live;
    if (live && result.coeffs && L.recorder.recording && L.recorder.add(result.coeffs, now)) {
      finishRecording().catch((e) => {
        console.error(e);
        $('live-record').disabled = false;
        toast(`The sticker failed: ${e.message}`);
      });
    }
    drawOverlay(result, w, h);
    if (result.probs) {
      const dt = state.lastTime ? (now - state.lastTime) / 1000 : 0;
      state.lastTime = now;
      state.ranker.update(result.probs, dt);
      renderSuggestions(live ? liveRanking(result) : state.ranker.top(SUGGESTIONS));
      const s = state.stats.summary();
      document.body.dataset.expression = state.ranker.topLabel();
      status(`${state.detectorNote}${state.ranker.topLabel()} · ${s.fps.toFixed(0)} fps${live ? ' · live' : ''}`);
    } else {
      status('No face in view');
    }
    state.stats.add(result.ms, now);
    if (live) {
      const note = liveNote();
      if ($('live-note').textContent !== note) $('live-note').textContent = note;
    }
  }
  scheduleStep();
}

function scheduleStep() {
  if (!state.running) return;
  const video = $('video');
  // One inference per new camera frame where the browser can tell us; else once per paint.
  if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(() => step());
  else requestAnimationFrame(() => step());
}

// ---- camera ---------------------------------------------------------------------------------

function cameraUi(on) {
  $('camera-indicator').hidden = !on;
  $('preview').hidden = !on;
  const t = $('camera-toggle');
  t.setAttribute('aria-pressed', String(on));
  t.textContent = on ? '📷 Camera on' : '📷 Camera off';
  document.body.dataset.camera = on ? 'on' : 'off';
}

async function startCamera() {
  if (!state.pipeline) {
    status(state.pipelineNote);
    return;
  }
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    status('The camera needs a secure page: open it on https (python -m mobile_demo --https) or on localhost.');
    return;
  }
  status('Asking for the camera…');
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({
      audio: false,
      video: {facingMode: 'user', width: {ideal: 640}, height: {ideal: 480}},
    });
  } catch (e) {
    const why = {
      NotAllowedError: 'Camera permission was refused',
      NotFoundError: 'No camera found',
      NotReadableError: 'The camera is busy in another app',
      OverconstrainedError: 'The camera can\'t give a usable picture',
    }[e.name] || `The camera failed (${e.name})`;
    status(`${why}. The keyboard works without it.`);
    cameraUi(false);
    return;
  }
  const video = $('video');
  video.srcObject = state.stream;
  await video.play().catch(() => {});
  state.stream.getVideoTracks()[0].addEventListener('ended', stopCamera);
  state.running = true;
  state.lastTime = 0;
  state.ranker.reset();
  state.pipeline.reset(); // a new stream: find the face again
  cameraUi(true);
  status(`${state.detectorNote}Looking for a face…`);
  scheduleStep();
}

function stopCamera() {
  state.running = false;
  if (state.live.on) setLive(false);
  if (state.stream) for (const t of state.stream.getTracks()) t.stop();
  state.stream = null;
  $('video').srcObject = null;
  cameraUi(false);
  renderSuggestions([]);
  delete document.body.dataset.expression;
  status('Camera off. Nothing left this device.');
}

$('camera-toggle').addEventListener('click', () => (state.running ? stopCamera() : startCamera()));
document.addEventListener('visibilitychange', () => {
  if (document.hidden && state.running) stopCamera();
});

// ---- text actions ---------------------------------------------------------------------------

async function copyText() {
  const text = field.text();
  try {
    await navigator.clipboard.writeText(text);
    toast('Copied');
  } catch {
    const r = document.createRange();
    r.selectNodeContents($('text'));
    const sel = document.getSelection();
    sel.removeAllRanges();
    sel.addRange(r);
    toast(document.execCommand('copy') ? 'Copied' : 'Select the text and copy it');
  }
}

async function shareText() {
  const text = field.text();
  const files = [];
  for (const img of field.stickers()) {
    const blob = await (await fetch(img.src)).blob();
    files.push(new File([blob], `${img.alt.replace(/[^a-z0-9]+/gi, '-')}.png`, {type: 'image/png'}));
  }
  const data = files.length && navigator.canShare && navigator.canShare({files}) ? {text, files} : {text};
  try {
    await navigator.share(data);
  } catch (e) {
    if (e.name !== 'AbortError') toast('Sharing failed');
  }
}

$('copy').addEventListener('click', copyText);
if (navigator.share) $('share').addEventListener('click', shareText);
else {
  $('share').disabled = true;
  $('share').title = 'This browser can\'t share; use Copy';
}
$('clear').addEventListener('click', () => field.clear());

// ---- emote panel ----------------------------------------------------------------------------

$('emote-open').addEventListener('click', () => $('emote-panel').showModal());
$('emote-close').addEventListener('click', () => $('emote-panel').close());
function onSticker(url, label) {
  field.insertSticker(url, label);
  $('emote-panel').close();
  toast(`Inserted ${label}`);
}

// ---- start ----------------------------------------------------------------------------------

/** The expression model's classes in its output order: the "labels" export writes in its manifest entry. */
function expressionLabels(entry) {
  const labels = entry.labels;
  if (!Array.isArray(labels) || !labels.length || !labels.every((l) => typeof l === 'string' && l)) {
    throw new Error('the expression model\'s manifest entry lists no "labels" (export it again: python -m export tflite)');
  }
  const classes = entry.outputs?.[0]?.shape?.at(-1);
  if (classes && classes !== labels.length) {
    throw new Error(`the expression model gives ${classes} probabilities, its manifest entry lists ${labels.length} "labels"`);
  }
  return labels;
}

async function loadDetector() {
  try {
    return await Runner.load(DETECTOR_URL);
  } catch (e) {
    console.warn('face detector:', e.message);
    state.detectorNote = 'No face detector (run scripts/setup.sh --web): centre crop · ';
    return null;
  }
}

async function main() {
  const keyboardData = await fetchJson('/emoji_keyboard.json');
  new Keyboard({tabs: $('tabs'), grid: $('grid'), search: $('search')}, keyboardData, insertEmoji);

  const manifest = await loadManifest();
  const expression = findModel(manifest, 'expression');
  const notes = [];
  await loadRuntime();
  if (expression) {
    const [classifier, detector, table, wasmCrop] = await Promise.all([
      Runner.load(expression.url),
      loadDetector(),
      fetchJson('/emoji_map.json').catch(() => null),
      loadCropWasm(), // the crop in WebAssembly, the same bits as its JavaScript twin
    ]);
    if (!wasmCrop) console.warn('crop: WebAssembly module not loaded, the JavaScript crop runs');
    try {
      state.labels = expressionLabels(expression);
      state.pipeline = new FacePipeline(detector, classifier, expression.crop || null);
    } catch (e) {
      console.warn('expression model:', e.message);
      notes.push(`No camera suggestions: ${e.message}`);
      state.pipelineNote = `No suggestions from the camera: ${e.message}. The keyboard still works.`;
    }
    if (state.labels.length) {
      const entries = table ? parseEmojiTable(table, state.labels) : [];
      if (!entries.length) notes.push('emoji table missing');
      state.ranker = new EmojiRanker(entries, state.labels);
    }
    document.body.dataset.detector = detector ? 'blazeface' : 'centre-crop';
  } else {
    notes.push('The expression model isn\'t shipped yet: no camera suggestions');
  }
  // The live face for the panels' "Follow my face": the smoothed expression while the camera runs, and the
  // mesh's coefficients while the live emoji is on; null with the camera off.
  const face = () => (state.running && state.ranker?.smoothed
    ? {labels: state.labels, probs: state.ranker.smoothed, coeffs: state.live?.on ? state.live.face?.coeffs || null : null}
    : null);
  const hooks = {onSticker, toast, face};
  const [dcgan, morph, stylegan] = await Promise.all([
    setupDcgan(manifest, hooks).catch((e) => console.error(e)),
    setupMorph(manifest, hooks).catch((e) => console.error(e)),
    setupStylegan(manifest, hooks).catch((e) => console.error(e)),
  ]);
  Object.assign(window.emotekit, {dcgan, morph, stylegan, manifest});
  document.body.dataset.state = 'ready';
  status(notes.length ? notes.join(' · ') : 'Ready. Turn the camera on for suggestions.');
}

// Automation and benchmark hooks (read-only views of the page's state).
window.emotekit = {
  stats: () => state.stats.summary(),
  probs: () => (state.ranker && state.ranker.smoothed ? Array.from(state.ranker.smoothed) : null),
  labels: () => state.labels,
  /** The live emoji's state: on, calibrating, the smoothed coefficients and raw measures of the last face, frames drawn. */
  live: () => {
    const L = state.live;
    return {on: L.on, calibrating: L.face.calibrating, calibrated: !!L.face.neutral, coeffs: L.face.coeffs,
      measures: L.face.measures, drawn: L.drawn, face: L.seen, tracks: L.tracker ? L.tracker.tracks : 0,
      recording: L.recorder.recording, sticker: L.sticker && {frames: L.sticker.frames, bytes: L.sticker.blob.size}};
  },
  /**
   * Runs the pipeline `n` times back to back on the camera's frames, tracking as the live loop does: the
   * Stats summary, plus the median and mean of every stage (ms) and how many frames ran the detector. With the
   * live emoji on, its pipeline: the tracked mesh, the expression, the geometry, the drawing and the ranking.
   * plain: true runs it as the page did before the crop module and VideoFrame reads (the JavaScript crop, the
   * frame drawn on a canvas), for a side-by-side figure; `crop` and `grab` say what ran.
   */
  async benchmark(n = 50, {plain = false} = {}) {
    const video = $('video');
    const s = new Stats(n + 1);
    const per = {};
    let detected = 0;
    let found = 0;
    // The live loop pauses meanwhile: one pipeline, one frame at a time (its track is the loop's).
    const live = state.running;
    const emoji = !!(state.live.on && state.live.tracker);
    state.running = false;
    await new Promise((r) => setTimeout(r, 100));
    if (emoji) state.live.tracker.reset();
    else state.pipeline.reset();
    const frames = state.pipeline.videoFrames;
    const wasmOn = cropEngine() === 'wasm';
    if (plain) {
      dropCropWasm();
      state.pipeline.videoFrames = false;
    }
    let grab;
    const crop = cropEngine();
    state.pipeline.read = null;
    try {
      for (let i = 0; i < n; i++) {
        let r;
        if (emoji) {
          r = await liveFrame(video, video.videoWidth, video.videoHeight);
          if (r.probs) liveRanking(r);
        } else r = await state.pipeline.process(video, video.videoWidth, video.videoHeight);
        s.add(r.ms);
        for (const [k, v] of Object.entries(r.ms)) (per[k] = per[k] || []).push(v);
        detected += r.detected ? 1 : 0;
        found += r.face ? 1 : 0;
      }
      grab = state.pipeline.read || 'canvas';
    } finally {
      state.pipeline.videoFrames = frames;
      if (plain && wasmOn) await loadCropWasm();
      state.running = live;
      if (live) scheduleStep();
    }
    const median = (a) => {
      const b = [...a].sort((x, y) => x - y);
      return b.length % 2 ? b[(b.length - 1) / 2] : (b[b.length / 2 - 1] + b[b.length / 2]) / 2;
    };
    const stages = {};
    for (const [k, v] of Object.entries(per)) stages[k] = {median: median(v), mean: v.reduce((a, x) => a + x, 0) / v.length};
    return {...s.summary(), n, detected, found, stages, live: emoji, width: video.videoWidth, height: video.videoHeight, crop, grab};
  },
  frames: {
    /** The page's crop contract (from the manifest), and the one it falls back on without a "crop" entry. */
    contract: () => state.pipeline && state.pipeline.contract,
    /** Which crop runs: 'wasm' (mobile_demo/wasm/crop.c) or 'js' (its fallback). */
    cropEngine: () => cropEngine(),
    defaultContract: () => DEFAULT_CONTRACT,
    /** Runs the page's pipeline (detector, crop, model) on a PNG frame given as base64. */
    async process(png64) {
      const bmp = await decodePng(png64);
      const r = await state.pipeline.process(bmp, bmp.width, bmp.height, {track: false});
      const out = {width: bmp.width, height: bmp.height, face: r.face, box: r.box, ms: r.ms,
        probs: r.probs && Array.from(r.probs), crop: r.crop && Array.from(r.crop)};
      bmp.close();
      return out;
    },
    /**
     * The pipeline's crops of boxes on a camera-like VideoFrame, read as a tracked frame is (FacePipeline.grabForCrop):
     * format 'I420' (the luma plane given as base64, chroma mid-grey, full or limited range) or 'RGBX' (RGBA
     * pixels as base64). ignoreFormat: copyTo behaves as a browser that ignores its `format` option (the page as if
     * just opened); detectFirst: the whole frame is read for the detector first.
     */
    async cropVideo(b64, width, height, boxes, {format = 'I420', fullRange = false, ignoreFormat = false, detectFirst = false} = {}) {
      const p = state.pipeline;
      const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
      let data = bytes;
      if (format === 'I420') {
        data = new Uint8Array(width * height + 2 * ((width + 1) >> 1) * ((height + 1) >> 1)).fill(128);
        data.set(bytes);
      }
      const frame = new VideoFrame(data, {format, codedWidth: width, codedHeight: height, timestamp: 0,
        colorSpace: {matrix: 'smpte170m', primaries: 'smpte170m', transfer: 'smpte170m', fullRange}});
      const copyTo = VideoFrame.prototype.copyTo;
      if (ignoreFormat) VideoFrame.prototype.copyTo = function (dest, {rect} = {}) { return copyTo.call(this, dest, {rect}); };
      const flags = [p.videoFrames, p.rgbaCopy];
      if (ignoreFormat) [p.videoFrames, p.rgbaCopy] = [undefined, undefined]; // as a page just opened in that browser
      try {
        if (detectFirst) await p.grab(frame, {x: 0, y: 0, w: width, h: height}); // a detection frame's read comes first
        const crops = [];
        for (const b of boxes) {
          const sq = cropPlan(p.contract, b.x, b.y, b.width, b.height, b.keypoints);
          const want = cropRect(p.contract, sq, width, height);
          if (!want.w || !want.h) {
            crops.push(null);
            continue;
          }
          const {pixels, origin, luma} = await p.grabForCrop(frame, want);
          crops.push(Array.from(p.crop(pixels, width, height, sq, origin, luma)));
        }
        return {crops, read: p.read, engine: cropEngine()};
      } finally {
        VideoFrame.prototype.copyTo = copyTo;
        [p.videoFrames, p.rgbaCopy] = flags;
        frame.close();
      }
    },
    /** The contract's crop of a PNG frame for a detector box {x, y, width, height} (contract: the page's unless given). */
    async crop(png64, boxes, contract = null, region = false) {
      const c = contract ? contractFrom(contract) : state.pipeline ? state.pipeline.contract : contractFrom(null);
      const bmp = await decodePng(png64);
      const rgba = pixels(bmp);
      const crops = boxes.map((b) => {
        if (!region) return Array.from(cropBox(rgba, bmp.width, bmp.height, b, c));
        // Only the pixels of the crop's rectangle, as the pipeline reads them on a tracked frame.
        const sq = cropPlan(c, b.x, b.y, b.width, b.height, b.keypoints);
        const r = cropRect(c, sq, bmp.width, bmp.height);
        const sub = new Uint8ClampedArray(r.w * r.h * 4);
        for (let y = 0; y < r.h; y++) {
          const from = ((r.y + y) * bmp.width + r.x) * 4;
          sub.set(rgba.subarray(from, from + r.w * 4), y * r.w * 4);
        }
        return Array.from(cropSquare(sub, bmp.width, bmp.height, sq, c, null, r));
      });
      bmp.close();
      return crops;
    },
    /** The live pipeline (tracking) on the same PNG frame `n` times: what each frame gives. */
    async track(png64, n = 3) {
      const bmp = await decodePng(png64);
      state.pipeline.reset();
      const out = [];
      for (let i = 0; i < n; i++) {
        const r = await state.pipeline.process(bmp, bmp.width, bmp.height);
        out.push({face: r.face, detected: r.detected, ms: r.ms, probs: r.probs && Array.from(r.probs), crop: r.crop && Array.from(r.crop)});
      }
      state.pipeline.reset();
      bmp.close();
      return out;
    },
    /** The detector's 128x128x3 input for a PNG frame. */
    async detectorInput(png64) {
      const bmp = await decodePng(png64);
      const rgba = pixels(bmp);
      const t = Array.from(detectorInput(rgba, bmp.width, bmp.height));
      bmp.close();
      return t;
    },
  },
};

function pixels(bmp) {
  const ctx = new OffscreenCanvas(bmp.width, bmp.height).getContext('2d', {willReadFrequently: true});
  ctx.drawImage(bmp, 0, 0);
  return ctx.getImageData(0, 0, bmp.width, bmp.height).data;
}

async function decodePng(png64) {
  const bytes = Uint8Array.from(atob(png64), (ch) => ch.charCodeAt(0));
  return createImageBitmap(new Blob([bytes], {type: 'image/png'}), {colorSpaceConversion: 'none', premultiplyAlpha: 'none'});
}

main().catch((e) => {
  console.error(e);
  document.body.dataset.state = 'error';
  status(`Could not start: ${e.message}`);
});

if ('serviceWorker' in navigator && window.isSecureContext) {
  navigator.serviceWorker.register('/sw.js', {scope: '/'}).catch((e) => console.warn('service worker:', e));
  // The first visit loads before the worker controls the page: hand it the files this browser
  // used (the LiteRT wasm variant it picked, the models) so the next visit works offline.
  navigator.serviceWorker.ready.then(async (reg) => {
    while (document.body.dataset.state === 'loading') await new Promise((r) => setTimeout(r, 200));
    const urls = performance.getEntriesByType('resource').map((e) => new URL(e.name))
      .filter((u) => u.origin === location.origin).map((u) => u.pathname);
    reg.active?.postMessage({cache: [...new Set(urls)]});
  });
}
