// A vector layer enlarged (flatten, dense, ReLU after dense, dropout, softmax): the whole vector
// with one unit selected (arrow keys move), its value, and for a dense unit its strongest weights.

import { paintCanvas } from '../../colormap.js';
import { esc, fmt, percent } from '../../format.js';
import { placeHighlight } from '../input.js';
import { kindLabel } from '../layers.js';
import { uis, clamp, touch, ABOUT, chScale, unitGrid, frame } from './frame.js';
import { renderIncoming } from './dense-weights.js';
import { showArith } from './arithmetic-box.js';

const FLATTEN = 'One value of the maps before, unrolled; the dense layer after weighs all of them.';

/** Which words a vector layer gets: "digit" for ten outputs at the end, else "unit". */
function vectorWords(layers, li, model) {
  const layer = layers[li];
  const n = layer.data.shape[0];
  const next = layers[li + 1];
  const logits = layer.kind === 'dense' && (!next || next.kind === 'softmax');
  const digits = n === 10 && (logits || layer.kind === 'softmax' || !next);
  const aboutKey = logits ? 'logits' : layer.kind === 'relu' ? 'relu1d' : layer.kind;
  const spec = model && model.layers.find((l) => l && l.name === layer.name);
  return {
    n, logits, digits, about: ABOUT[aboutKey] || '',
    kind: kindLabel({ kind: layer.kind, geo: spec || null }),
  };
}

export function renderVector(dialog, ctx, channel) {
  const { q, ui, model, result, layers, li, layer, extra, changed } = ctx;
  const words = vectorWords(layers, li, model);
  const { n } = words;
  const u = clamp(channel, 0, n - 1);
  const data = layer.data.data;
  const sc = chScale(layer.kind, data, 0, n);
  const [cols, rows] = unitGrid(n);
  const prev = layers[li - 1];
  ui.view = { vector: true, kind: layer.kind, n, ch: u, data, layer, words, H: rows, W: cols };
  const unitName = (i) => (words.digits ? `digit ${i}` : `unit ${i}`);
  frame(q, {
    title: `${layer.name} \u00b7 ${words.logits ? 'raw score (logit) for ' : ''}` +
      `${unitName(u)}${words.digits ? '' : ` of ${n}`}`,
    sub: `${words.kind}${words.logits ? ' \u00b7 raw scores (logits)' : ''} \u00b7 ` +
      `${n} values \u00b7 min ${fmt(sc.min)}, max ${fmt(sc.max)}`,
    about: words.about,
    pos: u, count: n, what: words.digits ? 'digit' : 'unit', sc, input: result.input,
    note: `One square per ${words.digits ? 'digit' : 'unit'}` +
      `${rows > 1 ? `, ${cols} to a row` : ''}` +
      `, coloured over the whole layer\u2019s range${sc.diverging ? ' (0 is white)' : ''}` +
      ', as in the layer\u2019s own panel.',
  });
  const map = q('.map-canvas');
  map.width = cols;
  map.height = rows;
  q('.stage.big').style.aspectRatio = `${cols} / ${rows}`;
  map.setAttribute('aria-label',
    `${layer.name}: ${n} values; ${unitName(u)} selected; arrow keys move between them`);
  paintCanvas(map, data, 0, sc);
  if (n <= 16) {
    const labels = q('.vec-labels');
    labels.style.gridTemplateColumns = `repeat(${n}, 1fr)`;
    labels.replaceChildren(...Array.from({ length: n },
      (_, i) => Object.assign(document.createElement('span'), { textContent: i })));
  }
  const unitBox = {
    r0: Math.floor(u / cols), c0: u % cols, r1: Math.floor(u / cols), c1: u % cols,
  };
  placeHighlight(q('.cursor'), unitBox, rows, cols);
  showUnit(dialog, u);
  const input = result.input && result.input.shape;
  placeHighlight(q('.detail-rf .rf'),
    input ? { r0: 0, c0: 0, r1: input[0] - 1, c1: input[1] - 1 } : null);
  q('.rf-text').textContent = 'Receptive field: all 28\u00d728 input pixels. ' +
    'From the flatten on, every unit sees the whole image.';

  if (layer.kind === 'dense') {
    if (changed || !extra.querySelector('.weights')) {
      const label = words.logits ? `The score for ${u}` : `Unit ${u}`;
      renderIncoming(dialog, layer.name, u, prev, label);
    }
  } else if (layer.kind === 'softmax') {
    const score = prev && prev.data && prev.data.shape.length === 1 ? prev.data.data[u] : null;
    extra.innerHTML = `<h3>Probability of ${u}</h3><p class="big-value">${percent(data[u])}</p>` +
      '<p class="muted">Softmax: e raised to this digit\u2019s raw score' +
      `${score != null ? ` (${esc(fmt(score))} from ${esc(prev.name)})` : ''}, ` +
      'divided by the sum of that over all ten digits.</p>';
  } else if (prev && prev.data && prev.data.shape.length === 1 && prev.data.shape[0] === n) {
    extra.innerHTML = `<h3>${esc(unitName(u))}</h3><p class="big-value">${esc(fmt(data[u]))}</p>` +
      `<p class="muted">Before this layer (${esc(prev.name)}): ${esc(fmt(prev.data.data[u]))}.</p>`;
  } else {
    extra.innerHTML = `<h3>${esc(unitName(u))}</h3><p class="big-value">${esc(fmt(data[u]))}</p>` +
      `<p class="muted">${layer.kind === 'flatten' ? FLATTEN : ''}</p>`;
  }
  showArith(dialog);
}

/** The readout under a vector: the selected (or pointed-at) unit and its value. */
export function showUnit(dialog, i) {
  const v = uis.get(dialog).view;
  const val = v.data[i];
  const own = i === v.ch ? '' : ` (${touch() ? 'tap' : 'click'} to select)`;
  let text = `unit ${i}: ${fmt(val)}`;
  if (v.kind === 'softmax') text = `P(${i}) = ${percent(val)}`;
  else if (v.words.logits) text = `raw score for ${i}: ${fmt(val)}`;
  dialog.querySelector('.detail-map .readout').textContent = text + own;
}
