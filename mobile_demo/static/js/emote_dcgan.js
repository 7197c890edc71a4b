// "New emote": the DCGAN emote generator. Ids are seeds: the same id gives the same emote
// (emote_noise.js turns an id into the generator's noise bit for bit as Python's noise_for_id).
// An expression generator (its manifest input lists "expression_labels") makes the emote of an
// expression: the face's on camera ("My face"), or one the user picks; id + expression -> one emote.
// "New" shows first the ids the judge rated best for that expression (models/emote-ids.json).
import {drawImage, downloadCanvas, loadPanel, outputRange, product, showCard, stickerUrl} from './emote_panel.js';
import {noiseForId, randomId} from './emote_noise.js';
import {wearFromFace} from './follow.js';
import {Runner} from './runtime.js';

/** The generator's input: the id's noise, then (an expression generator) the expression's one-hot. */
export function emoteInput(id, nz, labels, expression) {
  const noise = noiseForId(id, nz);
  if (!labels) return noise;
  const k = labels.indexOf(expression);
  if (k < 0) throw new RangeError(`unknown expression ${expression}; one of ${labels.join(', ')}`);
  const x = new Float32Array(nz + labels.length);
  x.set(noise);
  x[nz + k] = 1;
  return x;
}

async function rankedIds(entry) {
  try {
    const res = await fetch(new URL('emote-ids.json', new URL(entry.url, location.href)));
    return res.ok ? (await res.json()).ids || {} : {};
  } catch {
    return {};
  }
}

/** The DCGAN panel. Exposes generate(id[, expression]) and next() for the page and the tests. */
export async function setupDcgan(manifest, {onSticker, toast, face = () => null}) {
  const card = document.getElementById('dcgan');
  const panel = await loadPanel(card, manifest, ['emote-generator'], 'The emote generator failed to load',
    async (entry) => ({entry, runner: await Runner.load(entry.url)}));
  if (!panel) return null;
  const {entry, runner} = panel;
  const labels = Array.isArray(entry.input?.expression_labels) ? entry.input.expression_labels : null;
  const nz = labels ? entry.input.noise_size : product(runner.inputShape());
  const ranked = labels ? await rankedIds(entry) : {};
  const cursor = {};
  showCard(card, true, labels ? 'An emote of the expression on your face (or the one you pick); every emote has an id: type it to '
    + 're-create it.' : (entry.name ? `${entry.name}: every emote has an id; type one to re-create it.` : ''));
  const canvas = document.getElementById('emote-canvas');
  const idEl = document.getElementById('emote-id');
  const exprEl = document.getElementById('emote-expression-shown');
  const input = document.getElementById('emote-id-input');
  const select = document.getElementById('emote-expression');
  if (labels) {
    for (const name of labels) select.add(new Option(name, name));
    select.hidden = false;
  }
  const range = outputRange(entry);
  let current = null;
  let currentExpression = null;

  /** The expression asked for now: the picked one, or the face's ("My face"; happy without a face). */
  function asked() {
    if (!labels) return null;
    if (select.value !== 'face') return select.value;
    const f = face();
    return (f && wearFromFace(f.labels, f.probs, labels)?.name) || currentExpression || 'happy';
  }

  async function generate(id, expression = asked()) {
    const [out] = await runner.run(emoteInput(id, nz, labels, expression));
    drawImage(canvas, out.data, out.shape, range);
    current = id;
    currentExpression = expression;
    idEl.textContent = String(id);
    input.value = String(id);
    card.dataset.emoteId = String(id);
    if (labels) {
      card.dataset.emoteExpression = expression;
      exprEl.textContent = ` · ${expression}`;
    }
    return canvas.toDataURL('image/png');
  }

  /** New: the next of the judge's best ids for the expression, then random ids. */
  function next() {
    const expression = asked();
    const list = (expression && ranked[expression]) || [];
    const i = cursor[expression] || 0;
    cursor[expression] = i + 1;
    return generate(i < list.length ? list[i] : randomId(), expression);
  }

  document.getElementById('emote-new').addEventListener('click', () => next());
  select.addEventListener('change', () => {
    if (current !== null) generate(current);
  });
  const recreate = () => {
    const text = input.value.trim().replace(/^#/, '');
    const id = Number(text);
    if (!/^\d+$/.test(text) || !Number.isInteger(id) || id > 0xffffffff) {
      toast('An emote id is a whole number from 0 to 4294967295');
      return;
    }
    generate(id, labels && select.value === 'face' && currentExpression ? currentExpression : asked());
  };
  document.getElementById('emote-recreate').addEventListener('click', recreate);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') recreate();
  });
  const name = () => `emote-${current}${labels ? `-${currentExpression}` : ''}`;
  document.getElementById('emote-download').addEventListener('click', () => {
    if (current !== null) downloadCanvas(canvas, `${name()}.png`);
  });
  document.getElementById('emote-insert').addEventListener('click', () => {
    if (current !== null) onSticker(stickerUrl(canvas), `emote #${current}${labels ? ` ${currentExpression}` : ''}`);
  });
  if (labels) await next();
  else await generate(randomId());
  return {generate, next, labels};
}
