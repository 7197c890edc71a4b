// "New emote": the DCGAN emote generator. Ids are seeds: the same id gives the same emote
// (emote_noise.js turns an id into the generator's noise bit for bit as Python's noise_for_id).
import {drawImage, downloadCanvas, loadPanel, outputRange, product, showCard, stickerUrl} from './emote_panel.js';
import {noiseForId, randomId} from './emote_noise.js';
import {Runner} from './runtime.js';

/** The DCGAN panel. Exposes generate(id) for the page and the tests. */
export async function setupDcgan(manifest, {onSticker, toast}) {
  const card = document.getElementById('dcgan');
  const panel = await loadPanel(card, manifest, ['emote-generator'], 'The emote generator failed to load',
    async (entry) => ({entry, runner: await Runner.load(entry.url)}));
  if (!panel) return null;
  const {entry, runner} = panel;
  showCard(card, true, entry.name ? `${entry.name}: every emote has an id; type one to re-create it.` : '');
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
