// The crop contract's pixel work in WebAssembly: core/crop.py's steps 2-5 and the turned square's step b, the
// same integer grey and the same float64 operations in the same order as core/crop.py and crop.js (read
// core/crop.py's docstring for the steps), so every result is bit for bit theirs. crop.js lays out the inputs
// in this module's memory (the taps come from crop.js axisTaps, the same floats as Python's) and calls these;
// it falls back on its own JavaScript where WebAssembly is missing. Built by `make wasm` (clang, wasm32, no
// libc); -ffp-contract=off and WebAssembly's IEEE float64 keep every product and sum as written.
#include <stdint.h>
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))

static inline double floor_f64(double x) { return __builtin_floor(x); }

// Step 2, the contract's grey, of the w x h RGBA pixels at src (rows row_bytes apart) into dst (w x h, packed):
// (cr*R + cg*G + cb*B + 2**(bits-1)) >> bits, at most 255.
EXPORT(grey)
void grey(const uint8_t *src, int row_bytes, int w, int h, uint8_t *dst, int cr, int cg, int cb, int bits) {
  const int half = 1 << (bits - 1);
  const v128_t kr = wasm_i32x4_splat(cr), kg = wasm_i32x4_splat(cg), kb = wasm_i32x4_splat(cb);
  const v128_t kh = wasm_i32x4_splat(half), k255 = wasm_i32x4_splat(255), ff = wasm_i32x4_splat(0xff);
  for (int y = 0; y < h; y++) {
    const uint8_t *s = src + (long)y * row_bytes;
    uint8_t *d = dst + (long)y * w;
    int i = 0;
    for (; i + 16 <= w; i += 16) {  // 16 pixels a step: the same integer sums, four lanes at a time
      v128_t q[4];
      for (int k = 0; k < 4; k++) {
        v128_t p = wasm_v128_load(s + 4 * (i + 4 * k));
        v128_t sum = wasm_i32x4_add(wasm_i32x4_mul(kr, wasm_v128_and(p, ff)),
                                    wasm_i32x4_mul(kg, wasm_v128_and(wasm_u32x4_shr(p, 8), ff)));
        sum = wasm_i32x4_add(sum, wasm_i32x4_mul(kb, wasm_v128_and(wasm_u32x4_shr(p, 16), ff)));
        q[k] = wasm_i32x4_min(wasm_i32x4_shr(wasm_i32x4_add(sum, kh), bits), k255);
      }
      wasm_v128_store(d + i, wasm_u8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(q[0], q[1]),
                                                      wasm_i16x8_narrow_i32x4(q[2], q[3])));
    }
    for (; i < w; i++) {
      const uint8_t *p = s + 4 * i;
      int v = (cr * p[0] + cg * p[1] + cb * p[2] + half) >> bits;
      d[i] = (uint8_t)(v > 255 ? 255 : v);
    }
  }
}

// Step 3 along x: rows [0, nr) of the grey rectangle (rows row_bytes apart) -> nr x out_w float64, and one
// more row of `fill` (what "constant" reads outside the frame). col: out_w x taps column indices into the row
// (-1: outside the frame, `fill`), w: their weights; each sum starts at 0 and adds the taps in order. With
// `lut` (a luma table as 256 doubles, not NULL) the bytes are a luma plane's, turned grey by it as they are read.
static inline __attribute__((always_inline)) void rows_impl(const uint8_t *src, int row_bytes, int nr, const int32_t *col,
                                                            const double *w, int taps, int out_w, double fill,
                                                            const double *lut, double *horiz) {
#define PX(p, k) (lut ? lut[(p)[k]] : (double)(p)[k])
  int inside = 1;  // no tap outside the frame: the loop below needs no test
  for (int k = 0; k < out_w * taps; k++) inside &= col[k] >= 0;
  int r = 0;
  if (inside) {
    for (; r + 4 <= nr; r += 4) {  // four rows at a time, each output its own sum in the same order
      const uint8_t *s0 = src + (long)r * row_bytes, *s1 = s0 + row_bytes, *s2 = s1 + row_bytes, *s3 = s2 + row_bytes;
      double *h = horiz + (long)r * out_w;
      for (int j = 0; j < out_w; j++) {
        double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        const int32_t *c = col + j * taps;
        const double *wt = w + j * taps;
        int nt = taps;  // trailing taps of weight 0 left out: adding 0 * v leaves every sum as it is
        while (nt > 1 && wt[nt - 1] == 0) nt--;
        for (int t = 0; t < nt; t++) {
          const int k = c[t];
          const double x = wt[t];
          a0 += x * PX(s0, k);
          a1 += x * PX(s1, k);
          a2 += x * PX(s2, k);
          a3 += x * PX(s3, k);
        }
        h[j] = a0;
        h[out_w + j] = a1;
        h[2 * out_w + j] = a2;
        h[3 * out_w + j] = a3;
      }
    }
  }
  for (; r <= nr; r++) {  // the rows left (all of them where a tap is outside), then the fill row
    const uint8_t *s = src + (long)r * row_bytes;
    double *h = horiz + (long)r * out_w;
    for (int j = 0; j < out_w; j++) {
      double a = 0;
      const int32_t *c = col + j * taps;
      const double *wt = w + j * taps;
      for (int t = 0; t < taps; t++) {
        int k = c[t];
        a += wt[t] * (r < nr && k >= 0 ? PX(s, k) : fill);
      }
      h[j] = a;
    }
  }
#undef PX
}

EXPORT(rows)
void rows(const uint8_t *src, int row_bytes, int nr, const int32_t *col, const double *w, int taps, int out_w, double fill,
          const double *lut, double *horiz) {
  if (lut) rows_impl(src, row_bytes, nr, col, w, taps, out_w, fill, lut, horiz);
  else rows_impl(src, row_bytes, nr, col, w, taps, out_w, fill, 0, horiz);
}

// Step 3 along y: out (out_h x out_w) from the rows of `horiz`; row: out_h x taps indices into horiz (the fill
// row for outside the frame), w: their weights, summed in order from 0.
EXPORT(cols)
void cols(const double *horiz, const int32_t *row, const double *w, int taps, int out_h, int out_w, double *out) {
  for (int i = 0; i < out_h; i++) {
    double *o = out + (long)i * out_w;
    for (int k = 0; k < out_w; k++) o[k] = 0;
    for (int t = 0; t < taps; t++) {
      const double *h = horiz + (long)row[i * taps + t] * out_w;
      const double wt = w[i * taps + t];
      for (int k = 0; k < out_w; k++) o[k] += wt * h[k];
    }
  }
}

static inline uint8_t round_u8(double v) {
  double r = floor_f64(v + 0.5);
  return (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
}

// Step 5 on a float64 crop.
EXPORT(round_out)
void round_out(const double *v, int n, uint8_t *out) {
  for (int i = 0; i < n; i++) out[i] = round_u8(v[i]);
}

static inline int clampi(double v, int hi) { return v < 0 ? 0 : v > hi ? hi : (int)v; }

// Step b: the size x size crop of the m x m grid of the upright square (side big) around the turned one (side,
// c, s): four bilinear samples a pixel, summed in order, times 0.25, rounded.
EXPORT(turned)
void turned(const double *grid, int m, double big, double side, double c, double s, int size, double *acc, uint8_t *out) {
  static const double SUB[4][2] = {{0.25, 0.25}, {0.75, 0.25}, {0.25, 0.75}, {0.75, 0.75}};
  const double k = m / big;
  const double half = big / 2;
  double uc[512], us[512];  // u * c and u * s of each column (crop.js limits size to 512 here)
  for (int i = 0; i < size * size; i++) acc[i] = 0;
  const v128_t K = wasm_f64x2_splat(k), H = wasm_f64x2_splat(half), S = wasm_f64x2_splat(side);
  const v128_t P5 = wasm_f64x2_splat(0.5), ONE = wasm_f64x2_splat(1);
  const v128_t lo = wasm_i32x4_splat(0), hi = wasm_i32x4_splat(m - 1), one = wasm_i32x4_splat(1);
  for (int q = 0; q < 4; q++) {
    const double a = SUB[q][0], b = SUB[q][1];
    for (int j = 0; j < size; j++) {
      const double u = (j + a) / size - 0.5;
      uc[j] = u * c;
      us[j] = u * s;
    }
    for (int i = 0; i < size; i++) {
      const double v = (i + b) / size - 0.5;
      const v128_t VS = wasm_f64x2_splat(v * s), VC = wasm_f64x2_splat(v * c);
      double *o = acc + i * size;
      int j = 0;
      for (; j + 2 <= size; j += 2) {  // two columns at a time, each lane the scalar loop's operations
        v128_t qx = wasm_f64x2_sub(wasm_f64x2_mul(wasm_f64x2_add(H, wasm_f64x2_mul(S, wasm_f64x2_sub(wasm_v128_load(uc + j), VS))), K), P5);
        v128_t qy = wasm_f64x2_sub(wasm_f64x2_mul(wasm_f64x2_add(H, wasm_f64x2_mul(S, wasm_f64x2_add(wasm_v128_load(us + j), VC))), K), P5);
        v128_t x0 = wasm_f64x2_floor(qx), y0 = wasm_f64x2_floor(qy);
        v128_t tx = wasm_f64x2_sub(qx, x0), ty = wasm_f64x2_sub(qy, y0);
        // the floors are whole numbers: converted with saturation, then clamped (the scalar code clamps the float first: the same indices)
        v128_t xi = wasm_i32x4_trunc_sat_f64x2_zero(x0), yi = wasm_i32x4_trunc_sat_f64x2_zero(y0);
        v128_t xa = wasm_i32x4_min(wasm_i32x4_max(xi, lo), hi), xb = wasm_i32x4_min(wasm_i32x4_max(wasm_i32x4_add(xi, one), lo), hi);
        v128_t ya = wasm_i32x4_mul(wasm_i32x4_min(wasm_i32x4_max(yi, lo), hi), wasm_i32x4_splat(m));
        v128_t yb = wasm_i32x4_mul(wasm_i32x4_min(wasm_i32x4_max(wasm_i32x4_add(yi, one), lo), hi), wasm_i32x4_splat(m));
        const int xa0 = wasm_i32x4_extract_lane(xa, 0), xa1 = wasm_i32x4_extract_lane(xa, 1);
        const int xb0 = wasm_i32x4_extract_lane(xb, 0), xb1 = wasm_i32x4_extract_lane(xb, 1);
        const int ya0 = wasm_i32x4_extract_lane(ya, 0), ya1 = wasm_i32x4_extract_lane(ya, 1);
        const int yb0 = wasm_i32x4_extract_lane(yb, 0), yb1 = wasm_i32x4_extract_lane(yb, 1);
        v128_t g00 = wasm_f64x2_make(grid[ya0 + xa0], grid[ya1 + xa1]), g01 = wasm_f64x2_make(grid[ya0 + xb0], grid[ya1 + xb1]);
        v128_t g10 = wasm_f64x2_make(grid[yb0 + xa0], grid[yb1 + xa1]), g11 = wasm_f64x2_make(grid[yb0 + xb0], grid[yb1 + xb1]);
        v128_t mx = wasm_f64x2_sub(ONE, tx);
        v128_t top = wasm_f64x2_add(wasm_f64x2_mul(mx, g00), wasm_f64x2_mul(tx, g01));
        v128_t bot = wasm_f64x2_add(wasm_f64x2_mul(mx, g10), wasm_f64x2_mul(tx, g11));
        v128_t sample = wasm_f64x2_add(wasm_f64x2_mul(wasm_f64x2_sub(ONE, ty), top), wasm_f64x2_mul(ty, bot));
        wasm_v128_store(o + j, wasm_f64x2_add(wasm_v128_load(o + j), sample));
      }
      for (; j < size; j++) {
        const double qx = (half + side * (uc[j] - v * s)) * k - 0.5;
        const double qy = (half + side * (us[j] + v * c)) * k - 0.5;
        const double x0 = floor_f64(qx);
        const double y0 = floor_f64(qy);
        const double tx = qx - x0;
        const double ty = qy - y0;
        const int xa = clampi(x0, m - 1), xb = clampi(x0 + 1, m - 1);
        const long ya = (long)clampi(y0, m - 1) * m, yb = (long)clampi(y0 + 1, m - 1) * m;
        o[j] += (1 - ty) * ((1 - tx) * grid[ya + xa] + tx * grid[ya + xb])
          + ty * ((1 - tx) * grid[yb + xa] + tx * grid[yb + xb]);
      }
    }
  }
  for (int i = 0; i < size * size; i++) out[i] = round_u8(acc[i] * 0.25);
}

// BlazeFace's letterbox when the frame is a whole k times it (blazeface.js blockInput): the RGBA frame (width
// pixels a row) shrunk to lw x lh by the mean of each k x k block, summed in integers, into the 128 x 128 x 3
// float input at (pad_x, pad_y) as sum * inv - 1 (inv = 1 / (k * k * 127.5)); the rest of `out` is left as it is.
EXPORT(letterbox_blocks)
void letterbox_blocks(const uint8_t *rgba, int width, int lw, int lh, int k, int pad_x, int pad_y, double inv, float *out) {
  int32_t sums[3 * 512];
  for (int y = 0; y < lh; y++) {
    for (int i = 0; i < 3 * lw; i++) sums[i] = 0;
    for (int dy = 0; dy < k; dy++) {
      const uint8_t *p = rgba + ((long)(y * k + dy) * width) * 4;
      for (int x = 0; x < lw; x++) {
        int r = 0, g = 0, b = 0;
        for (int dx = 0; dx < k; dx++, p += 4) {
          r += p[0];
          g += p[1];
          b += p[2];
        }
        sums[3 * x] += r;
        sums[3 * x + 1] += g;
        sums[3 * x + 2] += b;
      }
    }
    float *o = out + ((long)(y + pad_y) * 128 + pad_x) * 3;
    for (int i = 0; i < 3 * lw; i++) o[i] = (float)(sums[i] * inv - 1.0);
  }
}
