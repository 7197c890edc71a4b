// What the three "Make an emote" panels share (emote_dcgan.js, emote_morph.js, emote_stylegan.js):
// finding and loading their models, the card's note, drawing a generator's image, PNG and sticker out.
// A panel whose model isn't in the manifest says so instead of faking it.
import {findModel} from './runtime.js';

const NOT_SHIPPED = 'Not shipped yet: this model isn\'t in mobile_demo/models/manifest.json.';

/** The [lo, hi] range of a generator's image: its entry's "outputs"[0].range (export/cli.py), else tanh's [-1, 1]. */
export function outputRange(entry) {
  const r = entry.outputs?.[0]?.range;
  if (Array.isArray(r) && r.length === 2) return r.map(Number);
  return [-1, 1];
}

/** Draws an NHWC float image (1 or 3 channels) in [lo, hi] on a canvas of its own size. */
export function drawImage(canvas, data, shape, [lo, hi]) {
  const [, h, w, c = 1] = shape.length === 4 ? shape : [1, shape[1], shape[2], 1];
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(w, h);
  const k = 255 / (hi - lo);
  for (let i = 0; i < w * h; i++) {
    for (let ch = 0; ch < 3; ch++) {
      const v = data[i * c + (c === 1 ? 0 : ch)];
      img.data[i * 4 + ch] = Math.max(0, Math.min(255, Math.round((v - lo) * k)));
    }
    img.data[i * 4 + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

/** The number of values in one batch row of a shape. */
export function product(shape) {
  return shape.slice(1).reduce((a, b) => a * b, 1);
}

export function downloadCanvas(canvas, name) {
  canvas.toBlob((blob) => {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }, 'image/png');
}

/** A sticker-sized PNG data URL of a canvas (scaled up smoothly to 128 px). */
export function stickerUrl(canvas) {
  const c = document.createElement('canvas');
  c.width = c.height = 128;
  const ctx = c.getContext('2d');
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(canvas, 0, 0, 128, 128);
  return c.toDataURL('image/png');
}

/** Shows a card's body with `note`, or hides it and says the model isn't shipped. */
export function showCard(card, available, note) {
  card.querySelector('[data-role=note]').textContent = available ? note || '' : NOT_SHIPPED;
  card.querySelector('[data-role=body]').hidden = !available;
  card.dataset.shipped = String(available);
}

/** Hides a card's body and says why its models can't be used. */
export function failCard(card, message) {
  showCard(card, false);
  card.querySelector('[data-role=note]').textContent = message;
}

/**
 * A panel's models: the manifest entries of `tasks`, handed to `load(...entries)`, whose result this
 * returns. Null when one isn't in the manifest (the card says "not shipped") or when `load` throws
 * (the card says `${failure}: ${message}`).
 */
export async function loadPanel(card, manifest, tasks, failure, load) {
  const entries = tasks.map((task) => findModel(manifest, task));
  if (entries.some((e) => !e)) {
    showCard(card, false);
    return null;
  }
  try {
    return await load(...entries);
  } catch (e) {
    failCard(card, `${failure}: ${e.message}`);
    return null;
  }
}
