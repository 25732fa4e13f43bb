// The live training chart: training loss (left axis), training and validation accuracy (right
// axis) against steps, and for a fine-tune the accuracy on the learner's own examples, on one
// canvas redrawn from the job's curves; the legend is HTML.

import { niceStep } from './model-card.js';

export const SERIES = [
  { key: 'loss', label: 'training loss (left axis)', color: '#0072b2', dash: [] },
  { key: 'acc', label: 'training accuracy', color: '#b34700', dash: [] },
  { key: 'val', label: 'validation accuracy', color: '#007a5a', dash: [5, 3] },
  { key: 'ex', label: 'accuracy on your examples', color: '#a0357c', dash: [2, 2] },
];
const INK = '#5a6376';

const label = (v) => String(+v.toPrecision(3));

/**
 * Draw a job's curves on a canvas: { curve: [[step, loss, acc]], total, val: [[step, acc,
 * loss, examplesAcc]] } (examplesAcc: a fine-tune's only).
 */
export function drawChart(canvas, t) {
  const w = canvas.clientWidth || 320;
  const h = canvas.clientHeight || 200;
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const m = { l: 44, r: 46, t: 10, b: 34 };
  const curve = (t && t.curve) || [];
  const val = (t && t.val) || [];
  const xMax = Math.max(1, (t && t.total) || 0, ...curve.map((p) => p[0]), ...val.map((p) => p[0]));
  const lossTop = Math.max(0, ...curve.map((p) => p[1]).filter(Number.isFinite));
  const lossStep = niceStep(lossTop || 1, 4);
  const lossMax = Math.max(lossStep, Math.ceil(lossTop / lossStep - 1e-9) * lossStep);
  const X = (s) => m.l + (s / xMax) * (w - m.l - m.r);
  const Y = (f) => m.t + (1 - f) * (h - m.t - m.b); // f: a fraction of the axis' height

  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = INK;
  ctx.lineWidth = 1;
  ctx.textBaseline = 'middle';
  for (let q = 0; q <= 4; q++) { // grid and right axis: accuracy in quarters
    ctx.strokeStyle = q ? '#e1e4ea' : '#8a93a3';
    ctx.beginPath();
    ctx.moveTo(m.l, Y(q / 4));
    ctx.lineTo(w - m.r, Y(q / 4));
    ctx.stroke();
    ctx.textAlign = 'left';
    ctx.fillText(`${q * 25}%`, w - m.r + 5, Y(q / 4));
  }
  ctx.textAlign = 'right';
  for (let v = 0; v <= lossMax + lossStep / 2; v += lossStep) {
    ctx.fillText(label(v), m.l - 5, Y(v / lossMax));
  }
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  const xStep = niceStep(xMax, 4);
  for (let s = 0; s <= xMax; s += xStep) ctx.fillText(label(s), X(s), h - m.b + 4);
  ctx.fillText('steps (batches)', (m.l + w - m.r) / 2, h - 14);
  for (const [text, x, turn] of [['loss', 12, -1], ['accuracy', w - 10, 1]]) {
    ctx.save();
    ctx.translate(x, (m.t + h - m.b) / 2);
    ctx.rotate((turn * Math.PI) / 2);
    ctx.textBaseline = 'middle';
    ctx.fillText(text, 0, 0);
    ctx.restore();
  }

  const lines = {
    loss: curve.map(([s, loss]) => [s, loss / lossMax]),
    acc: curve.map(([s, , acc]) => [s, acc]),
    val: val.map(([s, acc]) => [s, acc]),
    ex: val.map(([s, , , ex]) => [s, ex]),
  };
  ctx.lineWidth = 2;
  ctx.lineJoin = 'round';
  for (const ser of SERIES) {
    const pts = lines[ser.key].filter(([, f]) => Number.isFinite(f));
    ctx.strokeStyle = ctx.fillStyle = ser.color;
    ctx.setLineDash(ser.dash);
    ctx.beginPath();
    pts.forEach(([s, f], i) => (i ? ctx.lineTo(X(s), Y(f)) : ctx.moveTo(X(s), Y(f))));
    ctx.stroke();
    ctx.setLineDash([]);
    if (ser.key !== 'loss' && ser.key !== 'acc') {
      for (const [s, f] of pts) ctx.fillRect(X(s) - 2.5, Y(f) - 2.5, 5, 5); // measured points
    }
  }
}

/** The chart's legend items (HTML), one a series, each with its data-key. */
export const legendItems = () =>
  SERIES.map((s) => `<li data-key="${s.key}"><i></i>${s.label}</li>`).join('');

/** Mark each legend item with its series' colour and dash. */
export function markLegend(list) {
  list.querySelectorAll('li').forEach((li) => {
    const ser = SERIES.find((s) => s.key === li.dataset.key);
    li.firstChild.style.borderTop = `3px ${ser.dash.length ? 'dashed' : 'solid'} ${ser.color}`;
  });
}
