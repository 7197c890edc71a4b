// Camera frame -> face (BlazeFace) -> 48x48 grey crop -> expression model -> ranked emoji.
// Everything runs here, in the page: no frame, crop or probability leaves the device.
import * as blazeface from './blazeface.js';
import {contractFrom, cropInput, cropPlan, cropRect, cropSquare, lumaTable} from './crop.js';

// Smoothing time constant of the expression probabilities (seconds): the bar settles in ~0.5 s.
export const SMOOTHING_SECONDS = 0.35;
export const SUGGESTIONS = 8;

/** The emoji table: [{emoji, name, vector}] with each weight vector in `labels` order, L2-normalised. */
export function parseEmojiTable(json, labels) {
  const entries = Array.isArray(json) ? json : json.emoji || [];
  const table = [];
  for (const e of entries) {
    const emoji = e.emoji || e.char;
    const weights = e.weights || {};
    const vector = labels.map((l) => Number(weights[l] || 0));
    const norm = Math.hypot(...vector);
    if (!emoji || norm === 0) continue;
    table.push({emoji, name: e.name || '', vector: vector.map((v) => v / norm)});
  }
  return table;
}

/** Ranks the table by the cosine between smoothed probabilities and each emoji's weights. */
export class EmojiRanker {
  constructor(table, labels, tau = SMOOTHING_SECONDS) {
    this.table = table;
    this.labels = labels;
    this.tau = tau;
    this.smoothed = null;
  }

  reset() {
    this.smoothed = null;
  }

  /** Folds in one frame's probabilities (dt seconds after the previous one). */
  update(probs, dt) {
    if (!this.smoothed) {
      this.smoothed = Float32Array.from(probs);
    } else {
      const a = 1 - Math.exp(-Math.max(dt, 0) / this.tau);
      for (let i = 0; i < probs.length; i++) this.smoothed[i] += a * (probs[i] - this.smoothed[i]);
    }
    return this.smoothed;
  }

  /** The top `k` emoji for the smoothed probabilities (ties keep the table's order). */
  top(k = SUGGESTIONS) {
    if (!this.smoothed) return [];
    const p = this.smoothed;
    const norm = Math.hypot(...p) || 1;
    const scored = this.table.map((e, i) => {
      let s = 0;
      for (let j = 0; j < p.length; j++) s += p[j] * e.vector[j];
      return {emoji: e.emoji, name: e.name, score: s / norm, i};
    });
    scored.sort((a, b) => b.score - a.score || a.i - b.i);
    return scored.slice(0, k);
  }

  topLabel() {
    if (!this.smoothed) return null;
    let best = 0;
    for (let i = 1; i < this.smoothed.length; i++) if (this.smoothed[i] > this.smoothed[best]) best = i;
    return this.labels[best];
  }
}

// While a face is tracked, the detector runs on every DETECT_EVERY-th frame only (MediaPipe's scheme: the box
// comes from the previous detection in between, and the detector runs again at once when it loses the face).
export const DETECT_EVERY = 3;
function isVideo(source) {
  return (typeof HTMLVideoElement !== 'undefined' && source instanceof HTMLVideoElement)
    || (typeof VideoFrame !== 'undefined' && source instanceof VideoFrame);
}

/**
 * Whether VideoFrame.copyTo converts to RGBA here: a browser that ignores its `format` option copies the frame's
 * own planes instead (three for a 2x2 I420 frame), which would pass for RGBA in a four-byte format.
 */
async function copiesToRgba() {
  let frame = null;
  try {
    frame = new VideoFrame(new Uint8Array(6), {format: 'I420', codedWidth: 2, codedHeight: 2, timestamp: 0});
    const layout = await frame.copyTo(new Uint8Array(16), {format: 'RGBA'});
    return layout.length === 1 && layout[0].stride === 8;
  } catch (e) {
    return false;
  } finally {
    if (frame) frame.close();
  }
}

// VideoFrame formats whose first plane is 8-bit luma (Y'), read alone for the crop.
const LUMA_FORMATS = ['I420', 'I420A', 'I422', 'I422A', 'I444', 'I444A', 'NV12'];
// A detection farther than this (in face widths) from the tracked face starts a new track.
const TRACK_JUMP = 0.5;

/**
 * Turns video frames into expression probabilities with the detector (optional) and the classifier.
 * The crop follows the model's contract (crop.js, from its manifest entry's "crop"), as `emojify` does.
 * Only the pixels the stage needs are read from the frame: the whole frame on a detection frame (the
 * detector's letterbox needs it all), else only the crop's rectangle.
 */
export class FacePipeline {
  constructor(detector, classifier, crop = null, {detectEvery = DETECT_EVERY} = {}) {
    this.detector = detector;
    this.classifier = classifier;
    const [, h, w] = classifier.inputShape();
    if ((w || 48) !== (h || 48)) throw new Error(`the expression model takes ${w}x${h} crops; the crop contract makes square ones`);
    this.contract = contractFrom(crop, w || 48);
    this.detectEvery = detectEvery;
    this.canvas = null;
    this.ctx = null;
    this.detInput = new Float32Array(blazeface.INPUT_SIZE * blazeface.INPUT_SIZE * 3);
    this.grey = null;
    this.input = new Float32Array(this.contract.size * this.contract.size);
    this.track = null; // {face, age}: the last detected face and the frames since
    this.scan = 0; // without a track: which view (the whole frame, then each tile) the next frame searches
  }

  reset() {
    this.track = null;
    this.scan = 0;
  }

  /** The source as a VideoFrame whose pixels are the frame's own (a camera's video, unrotated), else null. */
  videoFrame(source) {
    if (this.videoFrames === false || typeof VideoFrame === 'undefined') return null;
    if (!isVideo(source)) return null;
    const owned = !(source instanceof VideoFrame);
    let frame;
    try {
      frame = owned ? new VideoFrame(source) : source;
    } catch (e) {
      return null; // no frame to read yet (a video not playing): the canvas reads it
    }
    const v = frame.visibleRect;
    const w = owned ? source.videoWidth : frame.displayWidth;
    const h = owned ? source.videoHeight : frame.displayHeight;
    if (frame.displayWidth === v.width && frame.displayHeight === v.height && !frame.rotation && !frame.flip
      && v.width === w && v.height === h) return {frame, owned};
    if (owned) frame.close();
    return null;
  }

  /**
   * The pixels of the rectangle {x, y, w, h} of the source for the crop: {pixels, origin, luma}. A camera's
   * Y'CbCr video frame is read as its luma plane alone (one byte a pixel, no colour conversion: core.crop's
   * grey of such a frame; `origin` widened to even bounds as the chroma planes need), another as RGBA of
   * the rectangle only; straight into the crop module's memory where it is loaded.
   */
  async grabForCrop(source, rect) {
    const vf = this.videoFrame(source);
    if (vf) {
      const {frame} = vf;
      try {
        const v = frame.visibleRect;
        if (LUMA_FORMATS.includes(frame.format)) {
          const x0 = rect.x & ~1;
          const y0 = rect.y & ~1;
          const x1 = Math.min(v.width, (rect.x + rect.w + 1) & ~1);
          const y1 = Math.min(v.height, (rect.y + rect.h + 1) & ~1);
          const r = {x: v.x + x0, y: v.y + y0, width: x1 - x0, height: y1 - y0};
          const bytes = frame.allocationSize({rect: r});
          const out = cropInput(bytes) || new Uint8Array(bytes);
          const [y] = await frame.copyTo(out, {rect: r});
          if (y.offset === 0 && y.stride === r.width) {
            const full = !!(frame.colorSpace && frame.colorSpace.fullRange);
            this.lumaTables = this.lumaTables || {};
            const luma = this.lumaTables[full] || (this.lumaTables[full] = lumaTable(full));
            this.videoFrames = true;
            this.read = `VideoFrame ${frame.format} luma plane`;
            return {pixels: out, origin: {x: x0, y: y0, w: r.width, h: r.height}, luma};
          }
        }
        const out = await this.rgbaOf(frame, rect, cropInput(rect.w * rect.h * 4));
        this.read = `VideoFrame ${frame.format} as RGBA`;
        return {pixels: out, origin: rect, luma: null};
      } catch (e) {
        if (!this.videoFrames && this.rgbaCopy !== false) this.videoFrames = false; // as in grab
      } finally {
        if (vf.owned) frame.close();
      }
    }
    this.read = 'canvas';
    return {pixels: this.drawn(source, rect), origin: rect, luma: null};
  }

  /**
   * RGBA pixels of the rectangle {x, y, w, h} of the source, 1:1 (no resampling): a camera's VideoFrame
   * converted for that rectangle alone (into `out` if given, e.g. cropInput's view), other sources drawn on a canvas.
   */
  async grab(source, rect, out = null) {
    const vf = this.rgbaCopy === false ? null : this.videoFrame(source); // false: copyTo gives no RGBA here
    if (vf) {
      try {
        const px = await this.rgbaOf(vf.frame, rect, out);
        this.read = `VideoFrame ${vf.frame.format} as RGBA`;
        return px;
      } catch (e) {
        // This browser cannot use VideoFrames: the canvas from now on. (Where only the RGBA copy is missing,
        // rgbaCopy says so, and the crop's luma reads go on.)
        if (!this.videoFrames && this.rgbaCopy !== false) this.videoFrames = false;
      } finally {
        if (vf.owned) vf.frame.close();
      }
    }
    this.read = 'canvas';
    return this.drawn(source, rect);
  }

  /** The rectangle {x, y, w, h} of a VideoFrame converted to RGBA (into `out`, else a new array). */
  async rgbaOf(frame, rect, out = null) {
    if (this.rgbaCopy === undefined) this.rgbaCopy = await copiesToRgba();
    if (!this.rgbaCopy) throw new Error('copyTo gives no RGBA here');
    const v = frame.visibleRect;
    const px = out || new Uint8Array(rect.w * rect.h * 4);
    await frame.copyTo(px, {rect: {x: v.x + rect.x, y: v.y + rect.y, width: rect.w, height: rect.h}, format: 'RGBA'});
    this.videoFrames = true;
    return px;
  }

  /** RGBA pixels of the rectangle {x, y, w, h} of the source, drawn 1:1 on a canvas. */
  drawn(source, rect) {
    if (!this.canvas || this.canvas.width < rect.w || this.canvas.height < rect.h) {
      const old = this.canvas || {width: 1, height: 1};
      this.canvas = new OffscreenCanvas(Math.max(rect.w, old.width), Math.max(rect.h, old.height));
      this.ctx = this.canvas.getContext('2d', {willReadFrequently: true});
    }
    this.ctx.clearRect(0, 0, rect.w, rect.h);
    this.ctx.drawImage(source, rect.x, rect.y, rect.w, rect.h, 0, 0, rect.w, rect.h);
    return this.ctx.getImageData(0, 0, rect.w, rect.h).data;
  }

  /**
   * Faces (frame pixels, best first) from one detector pass over the rectangle `view` {x, y, w, h} of a whole
   * RGBA frame (the whole frame without one); ms gains the pass's letterbox, detector and decode times.
   */
  async detect(rgba, width, height, ms = {}, view = null) {
    let t = performance.now();
    if (view) {
      const sub = new Uint8ClampedArray(view.w * view.h * 4);
      for (let y = 0; y < view.h; y++) {
        const from = ((view.y + y) * width + view.x) * 4;
        sub.set(rgba.subarray(from, from + view.w * 4), y * view.w * 4);
      }
      blazeface.toInput(sub, view.w, view.h, this.detInput);
    } else blazeface.toInput(rgba, width, height, this.detInput);
    ms.letterbox = (ms.letterbox || 0) + performance.now() - t;
    t = performance.now();
    const outs = await this.detector.run(this.detInput);
    ms.detector = (ms.detector || 0) + performance.now() - t;
    t = performance.now();
    const reg = outs.find((o) => o.shape[o.shape.length - 1] === 16);
    const cls = outs.find((o) => o.shape[o.shape.length - 1] === 1);
    const vw = view ? view.w : width;
    const vh = view ? view.h : height;
    const faces = blazeface.decode(reg.data, cls.data).map((f) => {
      const g = blazeface.toFrame(f, vw, vh);
      if (!view) return g;
      return {...g, x: g.x + view.x, y: g.y + view.y, keypoints: g.keypoints.map(([x, y]) => [x + view.x, y + view.y])};
    });
    ms.decode = (ms.decode || 0) + performance.now() - t;
    return faces;
  }

  /**
   * A still image's faces, as face_detector.BlazeFaceDetector.detect: the whole frame, and where that finds
   * none scoring SURE_SCORE, every tile too (small faces), merged.
   */
  async detectAll(rgba, width, height, ms = {}) {
    const faces = await this.detect(rgba, width, height, ms);
    if (faces.some((f) => f.score >= blazeface.SURE_SCORE)) return faces;
    for (const view of blazeface.tiles(width, height)) faces.push(...(await this.detect(rgba, width, height, ms, view)));
    return blazeface.mergeFaces(faces);
  }

  /**
   * A live frame's faces, one or two detector passes: with a track, the whole frame, then the tile nearest the
   * tracked face if the whole frame lost it (a small face); without one, the whole frame and the tiles in turn,
   * one a frame (a small face is found within 1 + tiles frames, and a frame never runs more than two passes).
   */
  async detectLive(rgba, width, height, ms) {
    const tiles = blazeface.tiles(width, height);
    if (!this.track) {
      const k = this.scan++ % (tiles.length + 1);
      return k === 0 ? this.detect(rgba, width, height, ms) : this.detect(rgba, width, height, ms, tiles[k - 1]);
    }
    const faces = await this.detect(rgba, width, height, ms);
    if (!tiles.length || this.near(faces)) return faces;
    const t = this.track.face;
    const cx = t.x + t.width / 2;
    const cy = t.y + t.height / 2;
    const d = (v) => Math.hypot(v.x + v.w / 2 - cx, v.y + v.h / 2 - cy);
    const view = tiles.reduce((a, v) => (d(v) < d(a) ? v : a));
    return this.detect(rgba, width, height, ms, view);
  }

  /** The crop's plan (crop.js cropPlan: the square read, turned with the eyes) for a face, or the centre of the frame without one. */
  cropBox(face, width, height) {
    if (!face) {
      const side = Math.min(width, height) * 0.8;
      return {x: (width - side) / 2, y: (height - side) / 2, side};
    }
    return cropPlan(this.contract, face.x, face.y, face.width, face.height, face.keypoints);
  }

  /** The contract's grey crop (Uint8Array) of a square of an RGBA frame (or of its rectangle `origin`; luma: grabForCrop's). */
  crop(rgba, width, height, box, origin = null, luma = null) {
    const n = origin ? origin.w * origin.h : width * height;
    if (!this.grey || this.grey.length < n) this.grey = new Uint8Array(n);
    return cropSquare(rgba, width, height, box, this.contract, this.grey, origin, luma);
  }

  async classify(crop) {
    for (let i = 0; i < crop.length; i++) this.input[i] = crop[i];
    const [out] = await this.classifier.run(this.input);
    return out.data;
  }

  /** The detected face nearest the tracked one if it continues the track (within TRACK_JUMP face widths), else null. */
  near(faces) {
    if (!faces.length || !this.track) return null;
    const t = this.track.face;
    const d = (f) => Math.hypot(f.x + f.width / 2 - t.x - t.width / 2, f.y + f.height / 2 - t.y - t.height / 2);
    const best = faces.reduce((a, f) => (d(f) < d(a) ? f : a));
    return d(best) <= TRACK_JUMP * t.width ? best : null;
  }

  /** The detected face that continues the track, else the best one. */
  pick(faces) {
    return this.near(faces) || faces[0] || null;
  }

  /**
   * One frame: {face (frame pixels) | null, box, crop, probs, detected, ms}. ms holds each stage
   * (grab, letterbox, detector, decode, crop, classifier), js (all but the two models), total, and
   * detect / classify (the detection's and the classification's share, as Stats shows them).
   * track: false detects on this frame whatever came before (a still image).
   */
  async process(source, width, height, {track = true} = {}) {
    const t0 = performance.now();
    const ms = {grab: 0, letterbox: 0, detector: 0, decode: 0, crop: 0, classifier: 0};
    let face = null;
    let rgba = null;
    let origin = null;
    const detecting = this.detector && (!track || !this.track || this.track.age + 1 >= this.detectEvery);
    if (detecting) {
      const t = performance.now();
      origin = {x: 0, y: 0, w: width, h: height};
      rgba = await this.grab(source, origin, cropInput(width * height * 4)); // the letterbox reads it in place
      ms.grab += performance.now() - t;
      const faces = track ? await this.detectLive(rgba, width, height, ms) : await this.detectAll(rgba, width, height, ms);
      face = this.pick(faces);
      this.track = face && track ? {face, age: 0} : null;
    } else if (this.detector) {
      face = this.track.face;
      this.track.age += 1;
    }
    const t1 = performance.now();
    if (this.detector && !face) {
      const total = t1 - t0;
      return {face: null, box: null, crop: null, probs: null, detected: detecting,
        ms: {...ms, js: total - ms.detector, total, detect: total, classify: 0}};
    }
    const box = this.cropBox(face, width, height);
    let t = performance.now();
    let luma = null;
    // A camera's crop is read on its own even on a detection frame, so that every frame's crop has the same grey
    // (the luma plane; the whole frame's RGBA, which the detector needed, would be the browser's RGB of it).
    if (!rgba || (this.videoFrames !== false && isVideo(source))) {
      origin = cropRect(this.contract, box, width, height);
      if (origin.w && origin.h) ({pixels: rgba, origin, luma} = await this.grabForCrop(source, origin));
      else rgba = new Uint8ClampedArray(0);
      ms.grab += performance.now() - t;
      t = performance.now();
    }
    const crop = this.crop(rgba, width, height, box, origin, luma);
    ms.crop = performance.now() - t;
    t = performance.now();
    const probs = await this.classify(crop);
    ms.classifier = performance.now() - t;
    const t2 = performance.now();
    const total = t2 - t0;
    return {face, box, crop, probs, detected: detecting,
      ms: {...ms, js: total - ms.detector - ms.classifier, total, detect: t1 - t0, classify: t2 - t1}};
  }
}

/** Frames per second and mean ms per stage over a sliding window of frames. */
export class Stats {
  constructor(window = 60) {
    this.window = window;
    this.frames = [];
  }

  add(ms, now = performance.now()) {
    this.frames.push({t: now, ...ms});
    if (this.frames.length > this.window) this.frames.shift();
  }

  summary() {
    const f = this.frames;
    if (f.length < 2) return {fps: 0, detectMs: 0, classifyMs: 0, frames: f.length};
    const span = (f[f.length - 1].t - f[0].t) / 1000;
    const mean = (k) => f.reduce((s, x) => s + (x[k] || 0), 0) / f.length;
    return {fps: (f.length - 1) / span, detectMs: mean('detect'), classifyMs: mean('classify'), frames: f.length};
  }
}
