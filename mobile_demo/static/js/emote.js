// "Make an emote": the DCGAN emote generator (ids are seeds: the same id gives the same emote),
// the VAE morph (character -> expression through the decoder) and the StyleGAN sliders.
// A panel whose model isn't in the manifest says so instead of faking it.
import {noiseForId, randomId} from './emote_noise.js';
import {Runner, findModel} from './runtime.js';

const NOT_SHIPPED = 'Not shipped yet: this model isn\'t in mobile_demo/models/manifest.json.';

/** The [lo, hi] range of a generator's output, from its manifest entry (default tanh: [-1, 1]). */
export function outputRange(entry) {
  // export/cli.py writes "outputs": [{name, shape, dtype, range}]; older entries may say "output".
  const first = Array.isArray(entry.outputs) ? entry.outputs[0] : null;
  const r = (first && first.range) || (entry.output && entry.output.range) || entry.output_range || entry.range;
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

function product(shape) {
  return shape.slice(1).reduce((a, b) => a * b, 1);
}

function downloadCanvas(canvas, name) {
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
function stickerUrl(canvas) {
  const c = document.createElement('canvas');
  c.width = c.height = 128;
  const ctx = c.getContext('2d');
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(canvas, 0, 0, 128, 128);
  return c.toDataURL('image/png');
}

function setup(card, available, note) {
  card.querySelector('[data-role=note]').textContent = available ? note || '' : NOT_SHIPPED;
  card.querySelector('[data-role=body]').hidden = !available;
  card.dataset.shipped = String(available);
}

async function fetchJson(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

/** The DCGAN panel. Exposes generate(id) for the page and the tests. */
export async function setupDcgan(manifest, {onSticker, toast}) {
  const card = document.getElementById('dcgan');
  const entry = findModel(manifest, 'emote-generator');
  if (!entry) {
    setup(card, false);
    return null;
  }
  let runner;
  try {
    runner = await Runner.load(entry.url, entry);
  } catch (e) {
    setup(card, false);
    card.querySelector('[data-role=note]').textContent = `The emote generator failed to load: ${e.message}`;
    return null;
  }
  setup(card, true, entry.name ? `${entry.name}: every emote has an id; type one to re-create it.` : '');
  const canvas = document.getElementById('emote-canvas');
  const idEl = document.getElementById('emote-id');
  const input = document.getElementById('emote-id-input');
  const nz = product(runner.inputShape());
  const range = outputRange(entry);
  let current = null;

  async function generate(id) {
    const [out] = await runner.run(noiseForId(id, nz));
    drawImage(canvas, out.data, out.shape, range);
    current = id;
    idEl.textContent = String(id);
    input.value = String(id);
    card.dataset.emoteId = String(id);
    return canvas.toDataURL('image/png');
  }

  document.getElementById('emote-new').addEventListener('click', () => generate(randomId()));
  const recreate = () => {
    const text = input.value.trim().replace(/^#/, '');
    const id = Number(text);
    if (!/^\d+$/.test(text) || !Number.isInteger(id) || id > 0xffffffff) {
      toast('An emote id is a whole number from 0 to 4294967295');
      return;
    }
    generate(id);
  };
  document.getElementById('emote-recreate').addEventListener('click', recreate);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') recreate();
  });
  document.getElementById('emote-download').addEventListener('click', () => {
    if (current !== null) downloadCanvas(canvas, `emote-${current}.png`);
  });
  document.getElementById('emote-insert').addEventListener('click', () => {
    if (current !== null) onSticker(stickerUrl(canvas), `emote #${current}`);
  });
  await generate(randomId());
  return {generate};
}

/** The VAE morph panel: decoder entry with a `latents` JSON {characters: [{name, z}], expressions: [...]}. */
export async function setupMorph(manifest, {onSticker}) {
  const card = document.getElementById('morph');
  const entry = findModel(manifest, 'vae-decoder');
  if (!entry) {
    setup(card, false);
    return null;
  }
  let runner;
  let latents;
  try {
    runner = await Runner.load(entry.url, entry);
    if (!entry.latents_url) throw new Error('its manifest entry names no "latents" file');
    latents = await fetchJson(entry.latents_url);
  } catch (e) {
    setup(card, false);
    card.querySelector('[data-role=note]').textContent = `The morph isn't available: ${e.message}`;
    return null;
  }
  setup(card, true, 'Pick a character (left) and an expression (right), then slide between them.');
  const range = outputRange(entry);
  const zdim = product(runner.inputShape());
  // Up to four rows of three per side (python -m train vae-latents writes 12 of each by default).
  const left = (latents.characters || latents.left || []).slice(0, 12);
  const right = (latents.expressions || latents.right || []).slice(0, 12);
  const canvas = document.getElementById('morph-canvas');
  const slider = document.getElementById('morph-slider');
  const sel = {left: left[0], right: right[0]};

  async function decode(z, target) {
    const [out] = await runner.run(Float32Array.from(z.slice(0, zdim)));
    drawImage(target, out.data, out.shape, range);
  }
  async function update() {
    if (!sel.left || !sel.right) return;
    const t = Number(slider.value);
    const z = sel.left.z.map((v, i) => (1 - t) * v + t * sel.right.z[i]);
    await decode(z, canvas);
  }
  async function grid(el, items, side) {
    el.replaceChildren();
    for (const item of items) {
      const c = document.createElement('canvas');
      // Decoded emoji are soft: name the expression (its emoji character first) for the tooltip and screen readers.
      c.title = [item.char, item.name].filter(Boolean).join(' ');
      c.setAttribute('role', 'button');
      c.setAttribute('aria-label', c.title || (side === 'left' ? 'character' : 'expression'));
      c.setAttribute('aria-selected', String(item === sel[side]));
      c.addEventListener('click', () => {
        sel[side] = item;
        for (const x of el.children) x.setAttribute('aria-selected', String(x === c));
        update();
      });
      el.append(c);
      await decode(item.z, c);
    }
  }
  await grid(document.getElementById('morph-left'), left, 'left');
  await grid(document.getElementById('morph-right'), right, 'right');
  slider.addEventListener('input', update);
  document.getElementById('morph-download').addEventListener('click', () => downloadCanvas(canvas, 'morph.png'));
  document.getElementById('morph-insert').addEventListener('click', () => onSticker(stickerUrl(canvas), 'morph'));
  await update();
  return {update};
}

// Truncation of the faces: w_avg + psi (w - w_avg), at the default --psi of `python -m train
// stylegan-edit` and `stylegan-sheet` (train/stylegan.py), so an id gives the face Python renders.
export const STYLE_PSI = 0.8;
const f32 = Math.fround;

/**
 * The directions file `python -m train stylegan-directions` writes and `python -m export tflite`
 * ships as the "stylegan-directions" entry (keras_models/stylegan/directions.py): {format, w_dim,
 * w_avg, directions: {name: {vector, scale, kind, description}}}. Returns {wAvg, sliders} with the
 * named (InterFaceGAN) directions first; GANSpace "pc*" ones only when there are no named ones.
 */
export function parseDirections(doc, wdim) {
  if (!doc || doc.format !== 'emotekit-stylegan-directions') throw new Error('not an Emotekit StyleGAN directions file');
  const wAvg = Float32Array.from(doc.w_avg || []);
  if (wAvg.length !== wdim) throw new Error(`its w_avg has ${wAvg.length} values, the mapping gives ${wdim}`);
  const all = Object.entries(doc.directions || {}).map(([name, e]) => ({
    name, vector: Float32Array.from(e.vector || []), scale: Number(e.scale), description: e.description || '',
  })).filter((d) => d.vector.length === wdim && Number.isFinite(d.scale));
  const named = all.filter((d) => !/^pc\d+$/.test(d.name));
  return {wAvg, sliders: named.length ? named : all};
}

/** Truncation as keras_models/stylegan/directions.py `truncate`, in float32 like numpy. */
export function truncate(w, wAvg, psi = STYLE_PSI) {
  const p = f32(psi);
  return w.map((v, i) => f32(wAvg[i] + f32(p * f32(v - wAvg[i]))));
}

/** `apply_edits`: w + alpha * scale * vector for each slider not at 0, in float32 like numpy. */
export function applyEdits(w, sliders, values) {
  const x = Float32Array.from(w);
  for (const d of sliders) {
    const a = values[d.name] || 0;
    if (!a) continue;
    const k = f32(a * d.scale);
    for (let i = 0; i < x.length; i++) x[i] = f32(x[i] + f32(k * d.vector[i]));
  }
  return x;
}

/**
 * The StyleGAN sliders: "stylegan-mapping" (z -> w), "stylegan-synthesis" (w -> image; a per-layer
 * (num_ws, w_dim) input gets the same w in every row) and the "stylegan-directions" file. A face's
 * id seeds z exactly as an emote id (train/stylegan.py ws_for_ids), w is truncated at STYLE_PSI
 * towards the file's w_avg, then each slider adds alpha * scale * vector (alpha from -3 to +3).
 */
export async function setupStylegan(manifest, {onSticker}) {
  const card = document.getElementById('stylegan');
  const mapEntry = findModel(manifest, 'stylegan-mapping');
  const synEntry = findModel(manifest, 'stylegan-synthesis');
  const dirEntry = findModel(manifest, 'stylegan-directions');
  if (!mapEntry || !synEntry) {
    setup(card, false);
    return null;
  }
  let mapping;
  let synthesis;
  try {
    [mapping, synthesis] = await Promise.all([Runner.load(mapEntry.url, mapEntry), Runner.load(synEntry.url, synEntry)]);
  } catch (e) {
    setup(card, false);
    card.querySelector('[data-role=note]').textContent = `The sliders aren't available: ${e.message}`;
    return null;
  }
  const zdim = product(mapping.inputShape());
  const wsize = product(synthesis.inputShape());
  const wdim = product(Array.from(mapping.model.getOutputDetails()[0].shape, (v) => (v < 0 ? 1 : v)));
  if (wsize % wdim) {
    setup(card, false);
    card.querySelector('[data-role=note]').textContent = `The sliders aren't available: the synthesis takes ${wsize} values, `
      + `not a multiple of the mapping's w (${wdim})`;
    return null;
  }
  let note = 'No attribute directions shipped yet: only new faces.';
  let dirs = {wAvg: null, sliders: []};
  try {
    if (dirEntry) {
      dirs = parseDirections(await fetchJson(dirEntry.url), wdim);
      note = '';
    }
  } catch (e) {
    note = `No sliders (${e.message}): only new faces.`;
  }
  setup(card, true, note);
  const canvas = document.getElementById('style-canvas');
  const range = outputRange(synEntry);
  const values = {};
  let w = null;
  let id = null;
  let drawn = null;
  let busy = null;
  let dirty = false;

  async function draw() {
    const x = applyEdits(w, dirs.sliders, values);
    drawn = x;
    const input = new Float32Array(wsize);
    for (let i = 0; i < wsize; i++) input[i] = x[i % wdim];
    const [out] = await synthesis.run(input);
    drawImage(canvas, out.data, out.shape, range);
  }
  /** Redraws with the current sliders; one model run at a time, the latest values win. */
  function render() {
    dirty = true;
    busy ||= (async () => {
      try {
        while (dirty) {
          dirty = false;
          await draw();
        }
      } finally {
        busy = null; // in the same turn as the last check of `dirty`: no change is left undrawn
      }
    })();
    return busy;
  }
  async function newFace(newId) {
    id = newId;
    document.getElementById('style-id').textContent = String(id);
    card.dataset.faceId = String(id);
    const [out] = await mapping.run(noiseForId(id, zdim));
    w = dirs.wAvg ? truncate(out.data, dirs.wAvg) : out.data;
    await render();
    return canvas.toDataURL('image/png');
  }
  const box = document.getElementById('style-sliders');
  const inputs = [];
  for (const d of dirs.sliders) {
    const label = document.createElement('label');
    label.className = 'slider';
    label.title = d.description;
    const input = document.createElement('input');
    Object.assign(input, {type: 'range', min: -3, max: 3, step: 0.1, value: 0});
    input.dataset.name = d.name;
    input.setAttribute('aria-label', d.name.replace(/_/g, ' '));
    input.addEventListener('input', () => {
      values[d.name] = Number(input.value);
      render();
    });
    const text = document.createElement('span');
    text.textContent = d.name.replace(/_/g, ' ');
    label.append(text, input);
    box.append(label);
    inputs.push(input);
  }
  document.getElementById('style-reset').hidden = !inputs.length;
  document.getElementById('style-reset').addEventListener('click', () => {
    for (const input of inputs) input.value = '0';
    for (const k of Object.keys(values)) delete values[k];
    render();
  });
  document.getElementById('style-new').addEventListener('click', () => newFace(randomId()));
  document.getElementById('style-download').addEventListener('click', () => downloadCanvas(canvas, `face-${id}.png`));
  document.getElementById('style-insert').addEventListener('click', () => onSticker(stickerUrl(canvas), `face #${id}`));
  await newFace(randomId());
  // For the tests: newFace(id) -> PNG data URL; idle() resolves once the sliders' last change is drawn;
  // current() is the face's id, psi and the w (truncated and edited) the synthesis drew.
  return {
    newFace,
    idle: () => busy || Promise.resolve(),
    current: () => ({id, psi: dirs.wAvg ? STYLE_PSI : 1, w: Array.from(drawn || [])}),
  };
}
