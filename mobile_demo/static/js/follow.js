// "Follow my face": the keyboard's live expression (the ranker's smoothed probabilities, and the face mesh's
// coefficients while the live emoji is on) sets a "Make an emote" panel's controls, on the device, once per
// animation frame while the panel's toggle is on. Nothing leaves the page.

// The probability at which an expression is worn fully (the slider at 1): the smoothed probability of a
// clear expression on camera sits around 0.5-0.8, a faint one around 0.3.
export const FULL_AT = 0.6;

/**
 * The expression to wear and how much: of `names` (the panel's expressions), the one the face shows most,
 * {name, strength} with strength = min(1, p / FULL_AT); null without probabilities.
 */
export function wearFromFace(labels, probs, names) {
  if (!probs || !labels?.length) return null;
  let best = null;
  for (const name of names) {
    const i = labels.indexOf(name);
    if (i < 0) continue;
    if (!best || probs[i] > best.p) best = {name, p: probs[i]};
  }
  return best && {name: best.name, strength: Math.min(1, best.p / FULL_AT)};
}

/**
 * The anime face's "mouth_open" slider (-3..3) from the face: the mesh's jaw opening (0..1) when there is one,
 * else how much the face smiles or gapes (p(happy) + p(surprise)); -1 is a closed mouth, +3 a wide one.
 */
export function mouthFromFace(labels, probs, coeffs) {
  let open = null;
  if (coeffs && Number.isFinite(coeffs.jaw_open)) open = coeffs.jaw_open;
  else if (probs && labels?.length) {
    const p = (n) => (labels.indexOf(n) >= 0 ? probs[labels.indexOf(n)] : 0);
    open = Math.min(1, (p('happy') + p('surprise')) / FULL_AT);
  }
  return open === null ? null : Math.round((-1 + 4 * Math.max(0, Math.min(1, open))) * 10) / 10;
}

/**
 * Calls `apply(face)` with `read()`'s {labels, probs, coeffs} once per animation frame while on, never two at
 * once (apply may be async: a frame is skipped while the last one draws). Returns {stop()}.
 */
export function follow(read, apply) {
  let on = true;
  let busy = false;
  const tick = async () => {
    if (!on) return;
    const face = read();
    if (face && !busy) {
      busy = true;
      try {
        await apply(face);
      } catch (e) {
        console.error(e);
      } finally {
        busy = false;
      }
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  return {stop: () => { on = false; }};
}

/** Wires a "Follow my face" checkbox: starts follow(read, apply) when checked, stops it when not. */
export function followToggle(box, read, apply) {
  if (!box) return;
  let run = null;
  box.addEventListener('change', () => {
    run?.stop();
    run = box.checked ? follow(read, apply) : null;
  });
}
