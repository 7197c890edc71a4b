// "Morph a character into an expression", two modes:
// - wear (when the latents file has "expression_vectors"): the character wearing the expression, reference
//   001's latent attribute vector: z = character.z + WEAR_MAX * slider * scale * vector, the vectors found
//   within the characters from the expression model's tags (`python -m export expression-directions`);
// - fade: the decoder slides from a character's latent z to an emoji expression's, (1 - t) z_c + t z_e.
// The latents file is the one `python -m train vae-latents` writes and export ships beside the decoder,
// named under its manifest entry's "latents": {characters: [{name, z}], expressions: [{name, char, z}],
// expression_vectors?: {name: {vector, scale}}}.
import {downloadCanvas, drawImage, loadPanel, outputRange, product, showCard, stickerUrl} from './emote_panel.js';
import {followToggle, wearFromFace} from './follow.js';
import {Runner, fetchJson} from './runtime.js';

// The slider's end in wear mode: three standard deviations of the samples along the expression's vector.
export const WEAR_MAX = 3;
const EXPRESSION_EMOJI = {happy: '😄', surprise: '😮', sad: '😢', angry: '😠', fear: '😨', disgust: '🤢', neutral: '😐'};

/** The latent of `character` wearing expression vector `e` ({vector, scale}) at slider value `t` (0..1). */
export function wearLatent(character, e, t, zdim = character.z.length) {
  const k = WEAR_MAX * t * e.scale;
  return Array.from({length: zdim}, (_, i) => character.z[i] + k * e.vector[i]);
}

/** The VAE morph panel. Exposes update() (redraws at the slider's value), setMode(mode) and mode() for the tests. */
export async function setupMorph(manifest, {onSticker, face}) {
  const card = document.getElementById('morph');
  const panel = await loadPanel(card, manifest, ['vae-decoder'], 'The morph isn\'t available', async (entry) => {
    const runner = await Runner.load(entry.url);
    if (!entry.latents_url) throw new Error('its manifest entry names no "latents" file');
    const latents = await fetchJson(entry.latents_url);
    if (!Array.isArray(latents.characters) || !Array.isArray(latents.expressions)) {
      throw new Error('its latents file lists no "characters" and "expressions"');
    }
    return {entry, runner, latents};
  });
  if (!panel) return null;
  const {entry, runner, latents} = panel;
  showCard(card, true, 'Pick a character (left) and an expression (right), then slide: the character wears it, or fades into the emoji.');
  const range = outputRange(entry);
  const zdim = product(runner.inputShape());
  // Up to four rows of three per side (python -m train vae-latents writes 12 of each by default).
  const left = latents.characters.slice(0, 12);
  const fades = latents.expressions.slice(0, 12);
  const wears = Object.entries(latents.expression_vectors || {})
    .filter(([, e]) => Array.isArray(e.vector) && e.vector.length >= zdim && Number.isFinite(Number(e.scale)))
    .map(([name, e]) => ({name, char: EXPRESSION_EMOJI[name] || '', vector: e.vector, scale: Number(e.scale)}));
  const canvas = document.getElementById('morph-canvas');
  const slider = document.getElementById('morph-slider');
  const modeBox = document.getElementById('morph-mode');
  let mode = wears.length ? 'wear' : 'fade';
  let right = mode === 'wear' ? wears : fades;
  const sel = {left: left[0], right: right[0]};

  async function decode(z, target) {
    const [out] = await runner.run(Float32Array.from(z.slice(0, zdim)));
    drawImage(target, out.data, out.shape, range);
  }
  async function update() {
    if (!sel.left || !sel.right) return;
    const t = Number(slider.value);
    const z = mode === 'wear' ? wearLatent(sel.left, sel.right, t, zdim) : sel.left.z.map((v, i) => (1 - t) * v + t * sel.right.z[i]);
    await decode(z, canvas);
  }
  // A thumbnail on the right: the emoji's own latent (fade), or the picked character wearing it fully (wear).
  const thumbLatent = (item, side) => (side === 'right' && mode === 'wear' ? wearLatent(sel.left, item, 1, zdim) : item.z);
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
        // In wear mode the right side shows the picked character: draw it again for the new one.
        if (side === 'left' && mode === 'wear') grid(rightEl, right, 'right').then(update);
        else update();
      });
      el.append(c);
      await decode(thumbLatent(item, side), c);
    }
  }
  const rightEl = document.getElementById('morph-right');
  async function setMode(m) {
    if (m !== 'wear' && m !== 'fade') throw new Error(`unknown morph mode ${m}`);
    if (m === 'wear' && !wears.length) return;
    mode = m;
    right = mode === 'wear' ? wears : fades;
    sel.right = right[0];
    rightEl.setAttribute('aria-label', mode === 'wear' ? 'Expressions to wear' : 'Expressions to fade into');
    slider.setAttribute('aria-label', mode === 'wear' ? 'How much of the expression' : 'Character to expression');
    for (const b of modeBox?.querySelectorAll('input') || []) b.checked = b.value === mode;
    await grid(rightEl, right, 'right');
    await update();
  }
  if (modeBox) {
    modeBox.hidden = !wears.length;
    for (const b of modeBox.querySelectorAll('input')) b.addEventListener('change', () => b.checked && setMode(b.value));
  }
  // Follow my face (wear mode): the expression the face shows most, worn as much as it shows it.
  const followBox = document.getElementById('morph-follow');
  if (followBox) followBox.closest('label').hidden = !(wears.length && face);
  if (wears.length && face) {
    followToggle(followBox, face, async (f) => {
      const w = wearFromFace(f.labels, f.probs, wears.map((e) => e.name));
      if (!w) return;
      if (mode !== 'wear') {
        await setMode('wear');
        delete followBox.dataset.drawn;  // setMode drew its first expression: draw the face's
      }
      const item = wears.find((e) => e.name === w.name);
      if (item !== sel.right) {
        sel.right = item;
        for (const x of rightEl.children) x.setAttribute('aria-selected', String(x.title.endsWith(` ${item.name}`)));
      }
      const v = w.strength.toFixed(2);
      if (followBox.dataset.drawn === `${item.name}@${v}`) return;  // this frame's expression is already drawn
      slider.value = v;
      followBox.dataset.drawn = `${item.name}@${v}`;
      await update();
    });
  }
  await grid(document.getElementById('morph-left'), left, 'left');
  await setMode(mode);
  slider.addEventListener('input', update);
  document.getElementById('morph-download').addEventListener('click', () => downloadCanvas(canvas, 'morph.png'));
  document.getElementById('morph-insert').addEventListener('click', () => onSticker(stickerUrl(canvas), 'morph'));
  const selected = () => ({character: sel.left?.name, expression: sel.right?.name, t: Number(slider.value)});
  return {update, setMode, mode: () => mode, selected};
}
