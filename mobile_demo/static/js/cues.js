// Ranking from geometry in the page: the emoji table re-ranked with what the face does (a wink, eyes closed,
// one brow up, a pucker, a mouth wide open, a tilted head). A line-by-line twin of mobile_demo/live_cues.py
// (read its docstring): score = the table's cosine (as suggest.js EmojiRanker.top) + sum of cue strength x
// the emoji's weight in CUES.
//
//   rankLive(ranker.table, ranker.smoothed, coeffs, SUGGESTIONS)  // coeffs: face_geometry.js, smoothed

export const CUES = Object.freeze({
  wink: {'😉': 1.0, '😜': 0.5},
  eyes_closed: {'😌': 1.0, '😴': 1.0},
  one_brow_up: {'🤨': 1.0},
  pucker: {'😗': 1.0, '😘': 0.9, '😙': 0.6, '😚': 0.6},
  mouth_open: {'😮': 1.0, '😱': 0.9, '😲': 0.7},
  scream: {'😱': 0.3},
  head_tilt: {'🤔': 1.0},
});

function clamp01(x) {
  return Math.min(1, Math.max(0, x));
}

/** live_cues.cue_strengths: each cue's strength 0..1 for coefficients `k` (face_geometry.js COEFFICIENTS). */
export function cueStrengths(k) {
  const left = k.eye_open_left;
  const right = k.eye_open_right;
  const lo = Math.min(left, right);
  const hi = Math.max(left, right);
  const bLo = Math.min(k.brow_outer_up_left, k.brow_outer_up_right);
  const bHi = Math.max(k.brow_outer_up_left, k.brow_outer_up_right);
  const closedMouth = clamp01(1 - k.jaw_open / 0.4);
  const mouthOpen = clamp01((k.jaw_open - 0.45) / 0.35);
  return {
    wink: clamp01((hi - lo - 0.4) / 0.3) * clamp01((0.5 - lo) / 0.3),
    eyes_closed: clamp01((0.35 - hi) / 0.25),
    one_brow_up: clamp01((bHi - bLo - 0.3) / 0.3) * clamp01((bHi - 0.4) / 0.3),
    pucker: clamp01((k.pucker - 0.3) / 0.4) * closedMouth,
    mouth_open: mouthOpen,
    scream: mouthOpen * k.brow_inner_up,
    head_tilt: clamp01((Math.abs(k.roll) - 12) / 10),
  };
}

/** live_cues.cue_bonus: what the cues add to each emoji of `chars` (in order). */
export function cueBonus(chars, strengths) {
  const bonus = new Float64Array(chars.length);
  const index = new Map(chars.map((c, i) => [c, i]));
  for (const [cue, emoji] of Object.entries(CUES)) {
    const s = strengths[cue] || 0;
    for (const [char, w] of Object.entries(emoji)) {
      if (index.has(char)) bonus[index.get(char)] += s * w;
    }
  }
  return bonus;
}

/**
 * live_cues.rank_live: the top `k` of a table (suggest.js parseEmojiTable: [{emoji, name, vector}]) for the
 * probabilities (null: none) and the face's coefficients (null: no cues): [{emoji, name, score, i}].
 */
export function rankLive(table, probs, coeffs, k = 8) {
  const bonus = coeffs ? cueBonus(table.map((e) => e.emoji), cueStrengths(coeffs)) : new Float64Array(table.length);
  const norm = probs ? Math.hypot(...probs) || 1 : 1;
  const scored = table.map((e, i) => {
    let s = 0;
    if (probs) for (let j = 0; j < probs.length; j++) s += probs[j] * e.vector[j];
    return {emoji: e.emoji, name: e.name, score: s / norm + bonus[i], i};
  });
  scored.sort((a, b) => b.score - a.score || a.i - b.i);
  return scored.slice(0, k);
}
