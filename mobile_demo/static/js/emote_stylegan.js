// "Anime face sliders": the StyleGAN mapping (z -> w) and synthesis (w -> image) with the attribute
// directions `python -m train stylegan-directions` finds, truncated and edited as Python does.
import {downloadCanvas, drawImage, failCard, loadPanel, outputRange, product, showCard, stickerUrl} from './emote_panel.js';
import {noiseForId, randomId} from './emote_noise.js';
import {followToggle, mouthFromFace} from './follow.js';
import {Runner, fetchJson, findModel} from './runtime.js';

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

/** The directions to slide along, and the note the card shows without them. */
async function loadDirections(manifest, wdim) {
  const entry = findModel(manifest, 'stylegan-directions');
  if (!entry) return {dirs: {wAvg: null, sliders: []}, note: 'No attribute directions shipped yet: only new faces.'};
  try {
    return {dirs: parseDirections(await fetchJson(entry.url), wdim), note: ''};
  } catch (e) {
    return {dirs: {wAvg: null, sliders: []}, note: `No sliders (${e.message}): only new faces.`};
  }
}

/** One range input per direction, in `box`; `onChange(name, value)` as it moves. Returns the inputs. */
function sliderInputs(box, sliders, onChange) {
  return sliders.map((d) => {
    const label = document.createElement('label');
    label.className = 'slider';
    label.title = d.description;
    const input = document.createElement('input');
    Object.assign(input, {type: 'range', min: -3, max: 3, step: 0.1, value: 0});
    input.dataset.name = d.name;
    input.setAttribute('aria-label', d.name.replace(/_/g, ' '));
    input.addEventListener('input', () => onChange(d.name, Number(input.value)));
    const text = document.createElement('span');
    text.textContent = d.name.replace(/_/g, ' ');
    label.append(text, input);
    box.append(label);
    return input;
  });
}

/**
 * The StyleGAN sliders: "stylegan-mapping" (z -> w), "stylegan-synthesis" (w -> image; a per-layer
 * (num_ws, w_dim) input gets the same w in every row) and the "stylegan-directions" file. A face's
 * id seeds z exactly as an emote id (train/stylegan.py ws_for_ids), w is truncated at STYLE_PSI
 * towards the file's w_avg, then each slider adds alpha * scale * vector (alpha from -3 to +3).
 */
export async function setupStylegan(manifest, {onSticker, face}) {
  const card = document.getElementById('stylegan');
  const failure = 'The sliders aren\'t available';
  const tasks = ['stylegan-mapping', 'stylegan-synthesis'];
  const panel = await loadPanel(card, manifest, tasks, failure, async (mapEntry, synEntry) => {
    const [mapping, synthesis] = await Promise.all([Runner.load(mapEntry.url), Runner.load(synEntry.url)]);
    return {synEntry, mapping, synthesis};
  });
  if (!panel) return null;
  const {synEntry, mapping, synthesis} = panel;
  const zdim = product(mapping.inputShape());
  const wsize = product(synthesis.inputShape());
  const wdim = product(Array.from(mapping.model.getOutputDetails()[0].shape, (v) => (v < 0 ? 1 : v)));
  if (wsize % wdim) {
    failCard(card, `${failure}: the synthesis takes ${wsize} values, not a multiple of the mapping's w (${wdim})`);
    return null;
  }
  const {dirs, note} = await loadDirections(manifest, wdim);
  showCard(card, true, note);
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
  const inputs = sliderInputs(document.getElementById('style-sliders'), dirs.sliders, (name, value) => {
    values[name] = value;
    render();
  });
  document.getElementById('style-reset').hidden = !inputs.length;
  document.getElementById('style-reset').addEventListener('click', () => {
    for (const input of inputs) input.value = '0';
    for (const k of Object.keys(values)) delete values[k];
    render();
  });
  // Follow my face: the mouth_open slider follows the face's mouth (mouthFromFace in follow.js).
  const mouth = inputs.find((x) => x.dataset.name === 'mouth_open');
  const followBox = document.getElementById('style-follow');
  if (followBox) followBox.closest('label').hidden = !(mouth && face);
  if (mouth && face) {
    followToggle(followBox, face, (f) => {
      const v = mouthFromFace(f.labels, f.probs, f.coeffs);
      if (v === null || values.mouth_open === v) return null;
      mouth.value = String(v);
      values.mouth_open = v;
      return render();
    });
  }
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
