// Camera frame -> face (BlazeFace) -> 48x48 grey crop -> expression model -> ranked emoji.
// Everything runs here, in the page: no frame, crop or probability leaves the device.
import * as blazeface from './blazeface.js';
import {contractFrom, cropSquare, square} from './crop.js';

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

/**
 * Turns video frames into expression probabilities with the detector (optional) and the classifier.
 * The crop follows the model's contract (crop.js, from its manifest entry's "crop"), as `emojify` does.
 */
export class FacePipeline {
  constructor(detector, classifier, crop = null) {
    this.detector = detector;
    this.classifier = classifier;
    const [, h, w] = classifier.inputShape();
    if ((w || 48) !== (h || 48)) throw new Error(`the expression model takes ${w}x${h} crops; the crop contract makes square ones`);
    this.contract = contractFrom(crop, w || 48);
    this.frameCanvas = null;
    this.frameCtx = null;
    this.detInput = new Float32Array(blazeface.INPUT_SIZE * blazeface.INPUT_SIZE * 3);
    this.grey = null;
    this.input = new Float32Array(this.contract.size * this.contract.size);
  }

  /** The frame's RGBA pixels, drawn 1:1 (no resampling by the canvas). */
  grab(source, width, height) {
    if (!this.frameCanvas || this.frameCanvas.width !== width || this.frameCanvas.height !== height) {
      this.frameCanvas = new OffscreenCanvas(width, height);
      this.frameCtx = this.frameCanvas.getContext('2d', {willReadFrequently: true});
      this.grey = new Uint8Array(width * height);
    }
    this.frameCtx.clearRect(0, 0, width, height);
    this.frameCtx.drawImage(source, 0, 0, width, height);
    return this.frameCtx.getImageData(0, 0, width, height).data;
  }

  /** Faces (frame pixels, best first) in an RGBA frame. */
  async detect(rgba, width, height) {
    blazeface.toInput(rgba, width, height, this.detInput);
    const outs = await this.detector.run(this.detInput);
    const reg = outs.find((o) => o.shape[o.shape.length - 1] === 16);
    const cls = outs.find((o) => o.shape[o.shape.length - 1] === 1);
    const faces = blazeface.decode(reg.data, cls.data);
    return faces.map((f) => blazeface.toFrame(f, width, height));
  }

  /** The crop square {x, y, side} (frame pixels) for a face, or the centre of the frame without one. */
  cropBox(face, width, height) {
    if (!face) {
      const side = Math.min(width, height) * 0.8;
      return {x: (width - side) / 2, y: (height - side) / 2, side};
    }
    return square(this.contract, face.x, face.y, face.width, face.height);
  }

  /** The contract's grey crop (Uint8Array) of a square of an RGBA frame. */
  crop(rgba, width, height, box) {
    return cropSquare(rgba, width, height, box, this.contract, this.grey);
  }

  async classify(crop) {
    for (let i = 0; i < crop.length; i++) this.input[i] = crop[i];
    const [out] = await this.classifier.run(this.input);
    return out.data;
  }

  /** One frame: {face (frame pixels) | null, box, crop, probs, ms: {detect, classify}}. */
  async process(source, width, height) {
    const t0 = performance.now();
    const rgba = this.grab(source, width, height);
    let face = null;
    if (this.detector) {
      const faces = await this.detect(rgba, width, height);
      face = faces[0] || null;
    }
    const t1 = performance.now();
    if (this.detector && !face) return {face: null, box: null, crop: null, probs: null, ms: {detect: t1 - t0, classify: 0}};
    const box = this.cropBox(face, width, height);
    const crop = this.crop(rgba, width, height, box);
    const probs = await this.classify(crop);
    const t2 = performance.now();
    return {face, box, crop, probs, ms: {detect: t1 - t0, classify: t2 - t1}};
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
