// Camera frame -> face (BlazeFace) -> 48x48 grey crop -> expression model -> ranked emoji.
// Everything runs here, in the page: no frame, crop or probability leaves the device.
import * as blazeface from './blazeface.js';

// The square crop around BlazeFace's box, as FER-2013's faces are framed (forehead to chin).
export const CROP_SCALE = 1.25;
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

/** Turns video frames into expression probabilities with the detector (optional) and the classifier. */
export class FacePipeline {
  constructor(detector, classifier) {
    this.detector = detector;
    this.classifier = classifier;
    const [, h, w] = classifier.inputShape();
    this.cropSize = [w || 48, h || 48];
    this.detCanvas = new OffscreenCanvas(blazeface.INPUT_SIZE, blazeface.INPUT_SIZE);
    this.detCtx = this.detCanvas.getContext('2d', {willReadFrequently: true});
    this.cropCanvas = new OffscreenCanvas(this.cropSize[0], this.cropSize[1]);
    this.cropCtx = this.cropCanvas.getContext('2d', {willReadFrequently: true});
    this.detInput = new Float32Array(blazeface.INPUT_SIZE * blazeface.INPUT_SIZE * 3);
    this.grey = new Float32Array(this.cropSize[0] * this.cropSize[1]);
  }

  async detect(source, width, height) {
    const lb = blazeface.letterbox(width, height);
    const ctx = this.detCtx;
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, blazeface.INPUT_SIZE, blazeface.INPUT_SIZE);
    ctx.drawImage(source, 0, 0, width, height, lb.padX, lb.padY, lb.w, lb.h);
    const rgba = ctx.getImageData(0, 0, blazeface.INPUT_SIZE, blazeface.INPUT_SIZE).data;
    blazeface.toInput(rgba, this.detInput);
    const outs = await this.detector.run(this.detInput);
    const reg = outs.find((o) => o.shape[o.shape.length - 1] === 16);
    const cls = outs.find((o) => o.shape[o.shape.length - 1] === 1);
    const faces = blazeface.decode(reg.data, cls.data);
    return faces.map((f) => blazeface.toFrame(f, width, height));
  }

  /** The square crop box (frame pixels) for a face, or the centre of the frame without one. */
  static cropBox(face, width, height) {
    if (!face) {
      const side = Math.min(width, height) * 0.8;
      return {x: (width - side) / 2, y: (height - side) / 2, side};
    }
    const side = Math.max(face.width, face.height) * CROP_SCALE;
    const cx = face.x + face.width / 2;
    const cy = face.y + face.height / 2;
    return {x: cx - side / 2, y: cy - side / 2, side};
  }

  async classify(source, box) {
    const [w, h] = this.cropSize;
    const ctx = this.cropCtx;
    ctx.fillStyle = '#808080';
    ctx.fillRect(0, 0, w, h);
    ctx.drawImage(source, box.x, box.y, box.side, box.side, 0, 0, w, h);
    const rgba = ctx.getImageData(0, 0, w, h).data;
    // Raw grey 0..255 (ITU-R 601 luma, as OpenCV's cvtColor), what the model was trained on.
    for (let i = 0, j = 0; i < rgba.length; i += 4, j++) {
      this.grey[j] = 0.299 * rgba[i] + 0.587 * rgba[i + 1] + 0.114 * rgba[i + 2];
    }
    const [out] = await this.classifier.run(this.grey);
    return out.data;
  }

  /** One frame: {face (frame pixels) | null, box, probs, ms: {detect, classify}}. */
  async process(source, width, height) {
    const t0 = performance.now();
    let face = null;
    if (this.detector) {
      const faces = await this.detect(source, width, height);
      face = faces[0] || null;
    }
    const t1 = performance.now();
    if (this.detector && !face) return {face: null, box: null, probs: null, ms: {detect: t1 - t0, classify: 0}};
    const box = FacePipeline.cropBox(face, width, height);
    const probs = await this.classify(source, box);
    const t2 = performance.now();
    return {face, box, probs, ms: {detect: t1 - t0, classify: t2 - t1}};
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
