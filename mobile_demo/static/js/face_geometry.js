// Face geometry in the page: what a face does, from its 468-point mesh (face_mesh.js landmarksToFrame).
// A line-by-line twin of core/face_geometry.py (read its docstring): the same float64 operations in the same
// order, parity-tested in tests/test_browser_mesh.py. Landmarks are flat [x0, y0, z0, x1, ...] in frame pixels.
//
//   const m = measure(landmarks);                  // raw measures (MEASURES)
//   if (!calibration.ready) calibration.add(m, t); // the user's neutral face, ~2 s (kept in the page)
//   const k = filter.apply(coefficients(m, calibration.ready ? calibration.neutral() : null), t);

export const RIGHT_EYE_CORNERS = [33, 133];
export const LEFT_EYE_CORNERS = [263, 362];
export const RIGHT_EYE_LIDS = [[160, 144], [159, 145], [158, 153]];
export const LEFT_EYE_LIDS = [[387, 373], [386, 374], [385, 380]];
export const LIP_INNER = [13, 14];
export const LIP_OUTER = [0, 17];
export const MOUTH_CORNERS = [61, 291];
export const BROW_INNER = [107, 336];
export const BROW_OUTER_RIGHT = [105, 63];
export const BROW_OUTER_LEFT = [334, 293];
export const FOREHEAD = 10;
export const NOSE_BASE = 2;

export const MEASURES = ['eye_right', 'eye_left', 'jaw', 'mouth_width', 'corner_right_v', 'corner_left_v', 'corner_right_out',
  'corner_left_out', 'brow_inner', 'brow_outer_right', 'brow_outer_left', 'brow_gap', 'yaw', 'pitch', 'roll'];
export const COEFFICIENTS = ['eye_open_left', 'eye_open_right', 'jaw_open', 'mouth_width', 'smile_left', 'smile_right', 'pucker',
  'brow_inner_up', 'brow_outer_up_left', 'brow_outer_up_right', 'brow_down', 'yaw', 'pitch', 'roll'];
export const ANGLES = ['yaw', 'pitch', 'roll'];

export const DEFAULT_NEUTRAL = Object.freeze({
  eye_right: 0.295, eye_left: 0.295, jaw: 0.033, mouth_width: 0.763, corner_right_v: 1.056,
  corner_left_v: 1.056, corner_right_out: 0.383, corner_left_out: 0.383, brow_inner: 0.322,
  brow_outer_right: 0.354, brow_outer_left: 0.354, brow_gap: 0.472, yaw: 0.0, pitch: 2.5, roll: 0.0,
});

export const EYE_CLOSED = 0.25;
export const EYE_OPEN = 0.9;
export const JAW_SPAN = 0.45;
export const WIDTH_SPAN = 0.5;
export const PUCKER_SPAN = 0.25;
export const JAW_IN_CORNERS = 0.3;
export const SMILE_SPAN = 0.12;
export const BROW_SPAN = 0.1;
export const BROW_DOWN_SPAN = 0.08;
export const SLACK = Object.freeze({eye: 0.2, jaw: 0.035, width: 0.1, smile: 0.08, brow: 0.05});
export const NO_SLACK = Object.freeze({eye: 0.0, jaw: 0.0, width: 0.0, smile: 0.0, brow: 0.0});

const DEG = 180 / Math.PI;

export function clamp01(x) {
  return Math.min(1, Math.max(0, x));
}

/** core.face_geometry.soften: x moved toward 0 by `slack`. */
export function soften(x, slack) {
  return x > 0 ? Math.max(0, x - slack) : Math.min(0, x + slack);
}

function point(lm, k) {
  return [lm[3 * k], lm[3 * k + 1], lm[3 * k + 2]];
}

function mid(a, b) {
  return [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2, (a[2] + b[2]) / 2];
}

function dot(a, b) {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

function norm(a) {
  return Math.sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2]);
}

/** core.face_geometry.FaceFrame: the face's own frame; u(k), v(k) of a landmark in inter-ocular distances. */
export class FaceFrame {
  constructor(lm) {
    this.lm = lm;
    const er = mid(point(lm, RIGHT_EYE_CORNERS[0]), point(lm, RIGHT_EYE_CORNERS[1]));
    const el = mid(point(lm, LEFT_EYE_CORNERS[0]), point(lm, LEFT_EYE_CORNERS[1]));
    this.origin = mid(er, el);
    const x = [el[0] - er[0], el[1] - er[1], el[2] - er[2]];
    this.iod = norm(x);
    if (!(this.iod > 0)) throw new Error('the eyes are in one place: not a face mesh');
    const ex = [x[0] / this.iod, x[1] / this.iod, x[2] / this.iod];
    const top = point(lm, FOREHEAD);
    const base = point(lm, NOSE_BASE);
    const d = [base[0] - top[0], base[1] - top[1], base[2] - top[2]];
    const k = dot(d, ex);
    const y = [d[0] - k * ex[0], d[1] - k * ex[1], d[2] - k * ex[2]];
    const n = norm(y);
    if (!(n > 0)) throw new Error('the forehead and the nose lie on the eye line: not a face mesh');
    const ey = [y[0] / n, y[1] / n, y[2] / n];
    this.ex = ex;
    this.ey = ey;
    this.ez = [ex[1] * ey[2] - ex[2] * ey[1], ex[2] * ey[0] - ex[0] * ey[2], ex[0] * ey[1] - ex[1] * ey[0]];
  }

  u(k) {
    const p = point(this.lm, k);
    const o = this.origin;
    return ((p[0] - o[0]) * this.ex[0] + (p[1] - o[1]) * this.ex[1] + (p[2] - o[2]) * this.ex[2]) / this.iod;
  }

  v(k) {
    const p = point(this.lm, k);
    const o = this.origin;
    return ((p[0] - o[0]) * this.ey[0] + (p[1] - o[1]) * this.ey[1] + (p[2] - o[2]) * this.ey[2]) / this.iod;
  }
}

function eye(f, corners, lids) {
  let gap = 0;
  for (const [upper, lower] of lids) gap += f.v(lower) - f.v(upper);
  const width = Math.abs(f.u(corners[1]) - f.u(corners[0]));
  return width > 0 ? gap / 3 / width : 0;
}

/** core.face_geometry.measure: the raw measures of a mesh (flat landmarks, frame pixels). */
export function measure(lm) {
  const f = new FaceFrame(lm);
  const m = (f.u(LIP_INNER[0]) + f.u(LIP_INNER[1]) + f.u(LIP_OUTER[0]) + f.u(LIP_OUTER[1])) / 4;
  // roll after pitch after yaw: the roll from the face's down, then the forward unturned by it
  const ez = f.ez;
  const roll = Math.atan2(-f.ey[0], f.ey[1]);
  const c = Math.cos(roll);
  const s = Math.sin(roll);
  const zx = ez[0] * c + ez[1] * s;
  const zy = ez[1] * c - ez[0] * s;
  return {
    eye_right: eye(f, RIGHT_EYE_CORNERS, RIGHT_EYE_LIDS),
    eye_left: eye(f, LEFT_EYE_CORNERS, LEFT_EYE_LIDS),
    jaw: f.v(LIP_INNER[1]) - f.v(LIP_INNER[0]),
    mouth_width: f.u(MOUTH_CORNERS[1]) - f.u(MOUTH_CORNERS[0]),
    corner_right_v: f.v(MOUTH_CORNERS[0]),
    corner_left_v: f.v(MOUTH_CORNERS[1]),
    corner_right_out: m - f.u(MOUTH_CORNERS[0]),
    corner_left_out: f.u(MOUTH_CORNERS[1]) - m,
    brow_inner: -(f.v(BROW_INNER[0]) + f.v(BROW_INNER[1])) / 2,
    brow_outer_right: -(f.v(BROW_OUTER_RIGHT[0]) + f.v(BROW_OUTER_RIGHT[1])) / 2,
    brow_outer_left: -(f.v(BROW_OUTER_LEFT[0]) + f.v(BROW_OUTER_LEFT[1])) / 2,
    brow_gap: f.u(BROW_INNER[1]) - f.u(BROW_INNER[0]),
    yaw: Math.atan2(-zx, Math.sqrt(zy * zy + ez[2] * ez[2])) * DEG,
    pitch: Math.atan2(zy, ez[2]) * DEG,
    roll: roll * DEG,
  };
}

function eyeOpen(r, neutral, slack) {
  return neutral > 0 ? clamp01((r / neutral + slack - EYE_CLOSED) / (EYE_OPEN - EYE_CLOSED)) : 1;
}

function smile(v, out, jaw, nV, nOut, nJaw, slack) {
  const lift = nV - (v - JAW_IN_CORNERS * (jaw - nJaw));
  return clamp01(soften(lift + 0.5 * (out - nOut), slack) / SMILE_SPAN);
}

/**
 * core.face_geometry.coefficients: each 0..1 (head angles in degrees) relative to `neutral` (a Calibration's),
 * or without one to DEFAULT_NEUTRAL with SLACK.
 */
export function coefficients(m, neutral = null) {
  const n = neutral || DEFAULT_NEUTRAL;
  const sl = neutral ? NO_SLACK : SLACK;
  const width = n.mouth_width > 0 ? 1 + soften(m.mouth_width / n.mouth_width - 1, sl.width) : 1;
  const down = soften((n.brow_inner - m.brow_inner) + 0.5 * (n.brow_gap - m.brow_gap), sl.brow);
  return {
    eye_open_left: eyeOpen(m.eye_left, n.eye_left, sl.eye),
    eye_open_right: eyeOpen(m.eye_right, n.eye_right, sl.eye),
    jaw_open: clamp01(soften(m.jaw - n.jaw, sl.jaw) / JAW_SPAN),
    mouth_width: clamp01(0.5 + (width - 1) / WIDTH_SPAN),
    smile_left: smile(m.corner_left_v, m.corner_left_out, m.jaw, n.corner_left_v, n.corner_left_out, n.jaw, sl.smile),
    smile_right: smile(m.corner_right_v, m.corner_right_out, m.jaw, n.corner_right_v, n.corner_right_out, n.jaw, sl.smile),
    pucker: clamp01((1 - width) / PUCKER_SPAN),
    brow_inner_up: clamp01(soften(m.brow_inner - n.brow_inner, sl.brow) / BROW_SPAN),
    brow_outer_up_left: clamp01(soften(m.brow_outer_left - n.brow_outer_left, sl.brow) / BROW_SPAN),
    brow_outer_up_right: clamp01(soften(m.brow_outer_right - n.brow_outer_right, sl.brow) / BROW_SPAN),
    brow_down: clamp01(down / BROW_DOWN_SPAN),
    yaw: m.yaw - n.yaw,
    pitch: m.pitch - n.pitch,
    roll: m.roll - n.roll,
  };
}

/** core.face_geometry.face_coefficients. */
export function faceCoefficients(lm, neutral = null) {
  return coefficients(measure(lm), neutral);
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** core.face_geometry.Calibration: the median of each measure over the first `seconds` (>= minFrames frames). */
export class Calibration {
  constructor(seconds = 2.0, minFrames = 10) {
    this.seconds = seconds;
    this.minFrames = minFrames;
    this.samples = [];
    this.t0 = null;
    this.t = null;
  }

  /** Folds in one frame's measures at time `t` (seconds); true once ready. */
  add(measures, t) {
    if (this.t0 === null) this.t0 = t;
    this.t = t;
    const s = {};
    for (const k of MEASURES) s[k] = measures[k];
    this.samples.push(s);
    return this.ready;
  }

  get ready() {
    return this.samples.length >= this.minFrames && this.t - this.t0 >= this.seconds;
  }

  neutral() {
    if (!this.samples.length) throw new Error('no frames: nothing to calibrate on');
    const n = {};
    for (const k of MEASURES) n[k] = median(this.samples.map((s) => s[k]));
    return n;
  }
}

/** core.face_geometry.OneEuroFilter (Casiez et al. 2012). */
export class OneEuroFilter {
  constructor(minCutoff = 1.0, beta = 0.0, dCutoff = 1.0) {
    this.minCutoff = minCutoff;
    this.beta = beta;
    this.dCutoff = dCutoff;
    this.reset();
  }

  reset() {
    this.x = null;
    this.dx = null;
    this.t = null;
  }

  static alpha(cutoff, dt) {
    const tau = 1 / (2 * Math.PI * cutoff);
    return 1 / (1 + tau / dt);
  }

  /** The filtered value of sample `x` taken at time `t` (seconds). */
  filter(x, t) {
    if (this.t === null) {
      this.x = x;
      this.dx = 0;
      this.t = t;
      return x;
    }
    const dt = t - this.t;
    if (!(dt > 0)) return this.x;
    const dx = (x - this.x) / dt;
    const edx = this.dx + OneEuroFilter.alpha(this.dCutoff, dt) * (dx - this.dx);
    const cutoff = this.minCutoff + this.beta * Math.abs(edx);
    this.x = this.x + OneEuroFilter.alpha(cutoff, dt) * (x - this.x);
    this.dx = edx;
    this.t = t;
    return this.x;
  }
}

export const FILTER_COEFFICIENTS = [1.5, 4.0];
export const FILTER_ANGLES = [1.0, 0.1];
export const D_CUTOFF = 1.0;

/** core.face_geometry.CoefficientFilter: a OneEuroFilter per coefficient. */
export class CoefficientFilter {
  constructor(coefficientsParams = FILTER_COEFFICIENTS, anglesParams = FILTER_ANGLES, dCutoff = D_CUTOFF) {
    this.filters = {};
    for (const k of COEFFICIENTS) {
      const [minCutoff, beta] = ANGLES.includes(k) ? anglesParams : coefficientsParams;
      this.filters[k] = new OneEuroFilter(minCutoff, beta, dCutoff);
    }
  }

  reset() {
    for (const f of Object.values(this.filters)) f.reset();
  }

  /** The filtered coefficients of one frame at time `t` (seconds). */
  apply(coeffs, t) {
    const out = {};
    for (const k of COEFFICIENTS) out[k] = this.filters[k].filter(coeffs[k], t);
    return out;
  }
}
