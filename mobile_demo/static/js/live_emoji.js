// The live emoji on a 2D canvas: the geometry of mobile_demo/live_emoji.py (read its docstring), drawn from
// a face's coefficients (face_geometry.js COEFFICIENTS; missing ones neutral). The canvas anti-aliases; the
// background is left as it is (clear it first for a transparent sticker frame).

export const FACE = '#FFCC4D';
export const OUTLINE = '#E0A030';
export const FEATURE = '#664500';
export const RADIUS = 0.46;
export const NEUTRAL = Object.freeze({
  eye_open_left: 1, eye_open_right: 1, jaw_open: 0, mouth_width: 0.5, smile_left: 0, smile_right: 0, pucker: 0,
  brow_inner_up: 0, brow_outer_up_left: 0, brow_outer_up_right: 0, brow_down: 0, yaw: 0, pitch: 0, roll: 0,
});

const RAD = Math.PI / 180;

/** Draws the live emoji for `coeffs` into the square (0, 0)-(size, size) of `ctx` (a CanvasRenderingContext2D). */
export function drawLiveEmoji(ctx, coeffs, size) {
  const k = {...NEUTRAL};
  for (const key of Object.keys(NEUTRAL)) if (coeffs && Number.isFinite(coeffs[key])) k[key] = coeffs[key];
  const clampDeg = (a) => Math.max(-60, Math.min(60, a)) * RAD;
  const fx = 0.10 * Math.sin(clampDeg(k.yaw));
  const fy = -0.10 * Math.sin(clampDeg(k.pitch));
  ctx.save();
  ctx.translate(size / 2, size / 2);
  ctx.scale(size, size);
  // face: a disc with its outline, unturned
  ctx.fillStyle = OUTLINE;
  ctx.beginPath();
  ctx.arc(0, 0, RADIUS, 0, 2 * Math.PI);
  ctx.fill();
  ctx.fillStyle = FACE;
  ctx.beginPath();
  ctx.arc(0, 0, RADIUS - 0.012, 0, 2 * Math.PI);
  ctx.fill();
  ctx.rotate(k.roll * RAD); // clockwise on screen for a positive roll (y down)
  ctx.fillStyle = FEATURE;
  ctx.strokeStyle = FEATURE;
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  // eyes: the subject's right eye on the image's left
  for (const [side, open] of [[-1, k.eye_open_right], [1, k.eye_open_left]]) {
    const ex = side * 0.16 + fx;
    const ey = -0.06 + fy;
    ctx.beginPath();
    if (open >= 0.15) {
      ctx.ellipse(ex, ey, 0.05, 0.075 * open, 0, 0, 2 * Math.PI);
      ctx.fill();
    } else {
      ctx.lineWidth = 0.022;
      ctx.moveTo(ex - 0.06, ey);
      ctx.quadraticCurveTo(ex, ey + 0.03, ex + 0.06, ey);
      ctx.stroke();
    }
  }
  // brows
  ctx.lineWidth = 0.03;
  for (const [side, outer] of [[-1, k.brow_outer_up_right], [1, k.brow_outer_up_left]]) {
    ctx.beginPath();
    ctx.moveTo(side * 0.07 + fx, -0.215 - 0.07 * k.brow_inner_up + 0.07 * k.brow_down + fy);
    ctx.lineTo(side * 0.25 + fx, -0.20 - 0.07 * outer + fy);
    ctx.stroke();
  }
  // mouth
  const mx = fx;
  const my = 0.20 + fy;
  const w = 0.16 * (0.7 + 0.6 * k.mouth_width) * (1 - 0.5 * k.pucker);
  const h = 0.015 + 0.22 * k.jaw_open + 0.05 * k.pucker;
  const smile = (k.smile_left + k.smile_right) / 2;
  ctx.beginPath();
  ctx.moveTo(mx - w, my - 0.08 * k.smile_right);
  ctx.quadraticCurveTo(mx, my + 0.03 * smile - 0.6 * h, mx + w, my - 0.08 * k.smile_left);
  ctx.quadraticCurveTo(mx, my + 0.10 * smile + 1.4 * h, mx - w, my - 0.08 * k.smile_right);
  ctx.fill();
  ctx.restore();
}
