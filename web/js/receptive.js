// Receptive fields from the layer geometry in /api/v1/model.

const pair = (v) =>
  Array.isArray(v) ? [Number(v[0]), Number(v[1] ?? v[0])] : [Number(v), Number(v)];

/** Padding before the input along one axis: "same" as the engine (and TensorFlow) pads, the
 * odd extra after; without the input size, stride 1's (k - 1) / 2. */
function padBefore(k, s, size) {
  if (!(size > 0)) return (k - 1) >> 1;
  const out = Math.ceil(size / s);
  return Math.max((out - 1) * s + k - size, 0) >> 1;
}

/** { kh, kw, sh, sw, ph, pw } for layers with a window (conv, pool), else null; inShape: the
 * layer's input [C, H, W], which "same" padding with a stride above 1 depends on. */
export function geometry(layer, inShape = null) {
  if (!layer || layer.kernel_size == null) return null;
  const [kh, kw] = pair(layer.kernel_size);
  const [sh, sw] = layer.stride == null ? [1, 1] : pair(layer.stride);
  let ph = 0;
  let pw = 0;
  const p = layer.padding;
  if (p === 'same') {
    ph = padBefore(kh, sh, inShape && inShape[inShape.length - 2]);
    pw = padBefore(kw, sw, inShape && inShape[inShape.length - 1]);
  } else if (typeof p === 'number' || Array.isArray(p)) {
    [ph, pw] = pair(p);
  }
  return { kh, kw, sh, sw, ph, pw };
}

/**
 * The input rectangle { r0, c0, r1, c1 } (inclusive, clipped to the input) that output cells
 * rows r0..r1, cols c0..c1 of layers[index] depend on. Vectors after a flatten see everything.
 */
export function receptiveField(layers, index, r0, c0, r1 = r0, c1 = c0, inputShape = [1, 28, 28]) {
  const H = inputShape[inputShape.length - 2];
  const W = inputShape[inputShape.length - 1];
  for (let i = index; i >= 0; i--) {
    const g = geometry(layers[i], i > 0 ? layers[i - 1].output_shape : inputShape);
    if (!g) continue;
    r0 = r0 * g.sh - g.ph;
    c0 = c0 * g.sw - g.pw;
    r1 = r1 * g.sh - g.ph + g.kh - 1;
    c1 = c1 * g.sw - g.pw + g.kw - 1;
  }
  return {
    r0: Math.max(0, r0),
    c0: Math.max(0, c0),
    r1: Math.min(H - 1, r1),
    c1: Math.min(W - 1, c1),
  };
}

/** The window of the pool at layers[index] that made pooled cell (r, c), clipped to its input. */
export function poolWindow(layer, r, c, inH, inW, outH) {
  const k = inH / outH;
  const g = geometry(layer) || { kh: k, kw: k, sh: k, sw: k, ph: 0, pw: 0 };
  const r0 = r * g.sh - g.ph;
  const c0 = c * g.sw - g.pw;
  return {
    r0: Math.max(0, r0),
    c0: Math.max(0, c0),
    r1: Math.min(inH - 1, r0 + g.kh - 1),
    c1: Math.min(inW - 1, c0 + g.kw - 1),
  };
}
