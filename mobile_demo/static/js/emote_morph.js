// "Morph a character into an expression": the VAE decoder slides from a character's latent z to an
// expression's. The latents file is the one `python -m train vae-latents` writes and export ships
// beside the decoder, named under its manifest entry's "latents":
// {characters: [{name, z}], expressions: [{name, char, z}]}.
import {downloadCanvas, drawImage, loadPanel, outputRange, product, showCard, stickerUrl} from './emote_panel.js';
import {Runner, fetchJson} from './runtime.js';

/** The VAE morph panel. Exposes update() (redraws at the slider's value) for the tests. */
export async function setupMorph(manifest, {onSticker}) {
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
  showCard(card, true, 'Pick a character (left) and an expression (right), then slide between them.');
  const range = outputRange(entry);
  const zdim = product(runner.inputShape());
  // Up to four rows of three per side (python -m train vae-latents writes 12 of each by default).
  const left = latents.characters.slice(0, 12);
  const right = latents.expressions.slice(0, 12);
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
