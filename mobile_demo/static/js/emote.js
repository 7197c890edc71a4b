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

/**
 * The StyleGAN sliders: "stylegan-mapping" (z -> w) and "stylegan-synthesis" (w -> image), with a
 * `directions` JSON {attribute: [w vector]} on either entry. The face's id seeds z like an emote id.
 */
export async function setupStylegan(manifest, {onSticker}) {
  const card = document.getElementById('stylegan');
  const mapEntry = findModel(manifest, 'stylegan-mapping');
  const synEntry = findModel(manifest, 'stylegan-synthesis');
  if (!mapEntry || !synEntry) {
    setup(card, false);
    return null;
  }
  let mapping;
  let synthesis;
  let directions = {};
  try {
    mapping = await Runner.load(mapEntry.url, mapEntry);
    synthesis = await Runner.load(synEntry.url, synEntry);
    const dirUrl = synEntry.directions_url || mapEntry.directions_url;
    if (dirUrl) directions = await fetchJson(dirUrl);
  } catch (e) {
    setup(card, false);
    card.querySelector('[data-role=note]').textContent = `The sliders aren't available: ${e.message}`;
    return null;
  }
  setup(card, true, Object.keys(directions).length ? '' : 'No attribute directions shipped yet: only new faces.');
  const canvas = document.getElementById('style-canvas');
  const range = outputRange(synEntry);
  const zdim = product(mapping.inputShape());
  const wsize = product(synthesis.inputShape());
  const values = {};
  let w = null;
  let id = null;

  async function render() {
    const x = Float32Array.from(w);
    for (const [name, dir] of Object.entries(directions)) {
      const a = values[name] || 0;
      if (!a) continue;
      for (let i = 0; i < x.length; i++) x[i] += a * dir[i % dir.length];
    }
    const [out] = await synthesis.run(x);
    drawImage(canvas, out.data, out.shape, range);
  }
  async function newFace(newId) {
    id = newId;
    document.getElementById('style-id').textContent = String(id);
    const [out] = await mapping.run(noiseForId(id, zdim));
    // Broadcast a single w over every synthesis input position when the mapping gives one.
    w = new Float32Array(wsize);
    for (let i = 0; i < wsize; i++) w[i] = out.data[i % out.data.length];
    await render();
  }
  const box = document.getElementById('style-sliders');
  for (const name of Object.keys(directions)) {
    const label = document.createElement('label');
    label.className = 'slider';
    const input = document.createElement('input');
    Object.assign(input, {type: 'range', min: -3, max: 3, step: 0.1, value: 0});
    input.addEventListener('input', () => {
      values[name] = Number(input.value);
      render();
    });
    label.append(name, input);
    box.append(label);
  }
  document.getElementById('style-new').addEventListener('click', () => newFace(randomId()));
  document.getElementById('style-download').addEventListener('click', () => downloadCanvas(canvas, `face-${id}.png`));
  document.getElementById('style-insert').addEventListener('click', () => onSticker(stickerUrl(canvas), `face #${id}`));
  await newFace(randomId());
  return {newFace};
}
