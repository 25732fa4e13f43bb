// "Where your drawing sits": the atlas's test digits on a 2-D map of the layer before the output
// (t-SNE), a dot a digit coloured by its label, and the drawing as a ring joined to its 8 nearest
// digits, which are listed under the map and can be put on the pad. Hover, or focus the map and
// use the arrow keys, to read a dot; click or Enter puts that digit on the pad. The legend's
// digits pick out their dots, so the map reads without telling colours apart.

import { DIGIT_COLOURS } from '../colormap.js';
import { fmt, thousands } from '../format.js';
import { digitWords, fillDigitButtons, fillSlots, labelCaption } from './digits.js';

const NEIGHBORS = 8;
const MARGIN = 8; // CSS px round the dots
const DOT = 2.6; // CSS px, a dot's radius
const HIT = 12; // CSS px: the pointer reads the nearest dot this close
const ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
const views = new WeakMap(); // card -> the view's own drawing state

/** The label most of the neighbours have, and how many have it (ties: the answer's, if tied). */
export function majority(neighbors, answer) {
  const counts = new Array(10).fill(0);
  for (const n of neighbors) counts[n.label]++;
  const most = Math.max(...counts);
  const label = counts[answer] === most ? answer : counts.indexOf(most);
  return { label, count: most };
}

/** The sentence under the map: where the drawing sits, and whether its neighbours agree. */
export function verdict(result) {
  const nb = result && result.neighbors;
  if (!nb || !nb.length) return '';
  const answer = result.label;
  const { label, count } = majority(nb, answer);
  if (label !== answer) {
    return `It reads your ${answer} like these ${label}s: ${count} of the ${nb.length} digits ` +
      `nearest to it inside the network are ${label}s, though its answer is ${answer}.`;
  }
  return `${count} of the ${nb.length} digits nearest to your drawing inside the network are ` +
    `${label}s, like its answer.`;
}

export function setupEmbedding(card, { onLoadDigit }) {
  const q = (s) => card.querySelector(s);
  const v = {
    card, stage: q('.emb-stage'), canvas: q('.emb-canvas'), tip: q('.emb-tip'),
    readout: q('.emb-readout'), points: null, byIndex: null, base: null, size: 0, picked: null,
    cursor: -1, hover: -1, shown: -1, result: null,
  };
  views.set(card, v);
  const legend = q('.emb-legend'); // (its ten buttons and the neighbours' slots are in the HTML)
  legend.querySelectorAll('[data-digit]').forEach((k) =>
    (k.querySelector('.emb-swatch').style.background = DIGIT_COLOURS[Number(k.dataset.digit)]));
  legend.addEventListener('click', (e) => {
    const b = e.target.closest('[data-digit]');
    if (!b) return;
    const d = Number(b.dataset.digit);
    v.picked = v.picked === d ? null : d;
    legend.querySelectorAll('[data-digit]').forEach((k) =>
      k.setAttribute('aria-pressed', String(Number(k.dataset.digit) === v.picked)));
    v.base = null;
    draw(v);
  });
  q('.emb-neighbors').addEventListener('click', (e) => {
    const b = e.target.closest('.digit-btn[data-n]');
    const nb = v.result && v.result.neighbors;
    if (b && nb) onLoadDigit(nb[Number(b.dataset.n)]);
  });

  const { stage } = v;
  stage.addEventListener('pointermove', (e) => {
    v.hover = nearestTo(v, ...pointIn(v, e), HIT);
    show(v, v.hover);
  });
  stage.addEventListener('pointerleave', () => {
    v.hover = -1;
    show(v, stage === document.activeElement ? v.cursor : -1);
  });
  stage.addEventListener('click', (e) => {
    const k = nearestTo(v, ...pointIn(v, e), HIT);
    if (k < 0) return;
    v.cursor = k;
    show(v, k);
    onLoadDigit(v.points[k]);
  });
  stage.addEventListener('focus', () => {
    if (!v.points) return;
    if (v.cursor < 0) v.cursor = startPoint(v);
    show(v, v.cursor);
  });
  stage.addEventListener('blur', () => show(v, v.hover));
  stage.addEventListener('keydown', (e) => {
    if (!v.points || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      if (v.cursor >= 0) onLoadDigit(v.points[v.cursor]);
      return;
    }
    const dir = ARROWS[e.key];
    if (!dir) return;
    e.preventDefault();
    if (v.cursor < 0) v.cursor = startPoint(v);
    else v.cursor = stepFrom(v, v.cursor, dir);
    show(v, v.cursor);
  });
  // the stage's width, from the observer (reading it while rendering would force a layout)
  new ResizeObserver((entries) => {
    v.size = entries[entries.length - 1].contentRect.width;
    v.base = null;
    draw(v);
  }).observe(stage);
}

// ---- geometry ---------------------------------------------------------------------------------

/** A map point (x, y in [-1, 1], y up) in CSS px of a stage `size` px wide. */
function place(size, x, y) {
  const span = size - 2 * MARGIN;
  return [MARGIN + ((x + 1) / 2) * span, MARGIN + ((1 - y) / 2) * span];
}

function pointIn(v, e) {
  const r = v.stage.getBoundingClientRect();
  return [e.clientX - r.left, e.clientY - r.top];
}

/** The dot nearest to (px, py) CSS px within `radius`, or -1. */
function nearestTo(v, px, py, radius = Infinity) {
  if (!v.points) return -1;
  let best = -1;
  let bestD = radius * radius;
  v.points.forEach((p, k) => {
    const [x, y] = place(v.size, p.x, p.y);
    const d = (x - px) ** 2 + (y - py) ** 2;
    if (d <= bestD) [best, bestD] = [k, d];
  });
  return best;
}

/** Where the keyboard starts: the drawing's nearest neighbour, else the dot nearest the middle. */
function startPoint(v) {
  const nb = v.result && v.result.neighbors;
  const first = nb && nb.length && v.byIndex.get(nb[0].index);
  return first != null ? first : nearestTo(v, v.size / 2, v.size / 2);
}

/** The nearest dot from dot k in the arrow's direction (within 45 degrees of it), else k. */
function stepFrom(v, k, [dx, dy]) {
  const [x0, y0] = place(v.size, v.points[k].x, v.points[k].y);
  let best = k;
  let bestScore = Infinity;
  v.points.forEach((p, j) => {
    const [x, y] = place(v.size, p.x, p.y);
    const along = (x - x0) * dx + (y - y0) * dy;
    const across = Math.abs((x - x0) * dy - (y - y0) * dx);
    if (along <= 0.5 || across > along) return;
    const score = along + 2 * across;
    if (score < bestScore) [best, bestScore] = [j, score];
  });
  return best;
}

// ---- drawing ----------------------------------------------------------------------------------

/** One dot of each digit's colour, outlined, drawn once: the map stamps copies of them. */
function dotSprites(dpr) {
  const half = Math.ceil((DOT + 1) * dpr);
  return DIGIT_COLOURS.map((colour) => {
    const dot = document.createElement('canvas');
    dot.width = dot.height = 2 * half;
    const ctx = dot.getContext('2d');
    ctx.arc(half, half, DOT * dpr, 0, 2 * Math.PI);
    ctx.fillStyle = colour;
    ctx.fill();
    ctx.lineWidth = 0.6 * dpr;
    ctx.strokeStyle = 'rgb(0 0 0 / 0.35)';
    ctx.stroke();
    return dot;
  });
}

/** The dots, painted once a size and pick onto a canvas of their own. */
function paintBase(v, px, dpr) {
  const base = document.createElement('canvas');
  base.width = base.height = px;
  const ctx = base.getContext('2d');
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, px, px);
  const sprites = dotSprites(dpr);
  const half = sprites[0].width / 2;
  const mine = (p) => v.picked == null || p.label === v.picked;
  const order = [...v.points.filter((p) => !mine(p)), ...v.points.filter(mine)]; // picked on top
  for (const p of order) {
    const [x, y] = place(v.size, p.x, p.y);
    ctx.globalAlpha = mine(p) ? 0.9 : 0.12;
    ctx.drawImage(sprites[p.label], x * dpr - half, y * dpr - half);
  }
  return base;
}

function ring(ctx, x, y, r, colour, width) {
  ctx.beginPath();
  ctx.arc(x, y, r, 0, 2 * Math.PI);
  ctx.lineWidth = width;
  ctx.strokeStyle = colour;
  ctx.stroke();
}

/** The dots, the drawing's ring and its lines to its neighbours, the dot being read. */
function draw(v) {
  if (!v.points && !v.painted) return; // (nothing drawn yet, nothing to draw)
  v.painted = !!v.points;
  const size = v.size;
  const dpr = window.devicePixelRatio || 1;
  const px = Math.max(1, Math.round(size * dpr));
  const ctx = v.canvas.getContext('2d');
  if (v.canvas.width !== px) v.canvas.width = v.canvas.height = px;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, px, px);
  if (!v.points || !size) return;
  v.base = v.base && v.base.width === px ? v.base : paintBase(v, px, dpr);
  ctx.drawImage(v.base, 0, 0);
  ctx.scale(dpr, dpr);
  const r = v.result;
  if (r && r.embedding) {
    const [mx, my] = place(size, r.embedding.x, r.embedding.y);
    ctx.lineWidth = 1;
    ctx.strokeStyle = 'rgb(27 33 48 / 0.55)';
    for (const n of r.neighbors || []) {
      const k = v.byIndex.get(n.index);
      if (k == null) continue;
      const [x, y] = place(size, v.points[k].x, v.points[k].y);
      ctx.beginPath();
      ctx.moveTo(mx, my);
      ctx.lineTo(x, y);
      ctx.stroke();
      ring(ctx, x, y, DOT + 1.5, '#1b2130', 1.2);
    }
    ring(ctx, mx, my, 7, '#fff', 7); // a dark ring on a white band: seen on any colour
    ring(ctx, mx, my, 7, '#1b2130', 2.5);
  }
  const k = v.shown;
  if (k >= 0) {
    const [x, y] = place(size, v.points[k].x, v.points[k].y);
    ring(ctx, x, y, DOT + 3.5, '#fff', 3);
    ring(ctx, x, y, DOT + 3.5, '#2554c7', 2);
  }
}

/** Read dot k out (-1: none) beside the map and as a tip over it. */
function show(v, k) {
  v.shown = k;
  const p = k >= 0 && v.points ? v.points[k] : null;
  v.tip.hidden = !p;
  if (p) {
    const [x, y] = place(v.size, p.x, p.y);
    v.tip.textContent = p.predicted !== p.label ? `${p.label}, read ${p.predicted}` : `${p.label}`;
    v.tip.style.left = `${x}px`;
    v.tip.style.top = `${y}px`;
    const words = digitWords(p);
    v.readout.textContent = `${words[0].toUpperCase()}${words.slice(1)}` +
      `${p.predicted !== p.label ? ' (a mistake)' : ''}` +
      `${v.readout.dataset.touch ? ': on the pad now.' : '; click or Enter puts it on the pad.'}`;
  } else {
    v.readout.textContent = v.readout.dataset.hint || '';
  }
  draw(v);
}

// ---- render -----------------------------------------------------------------------------------

/** What the stage says when it has no dots to show, or '' when it has. */
function stageWords({ model, embedding }) {
  if (!model) return 'Loading the model\u2026';
  if (model.atlas !== true) {
    return 'This model has no atlas: the map of the test digits it knows was not computed ' +
      'for it, so there is no place to show your drawing in.';
  }
  if (!embedding || embedding.busy) return 'Loading the map of the test digits\u2026';
  if (embedding.error) return `The map could not be loaded: ${embedding.error}`;
  return '';
}

export function render(card, { model, embedding, result, atlasNote }) {
  const v = views.get(card);
  const q = (s) => card.querySelector(s);
  const words = stageWords({ model, embedding });
  const ready = !words;
  card.classList.toggle('no-atlas', !!model && model.atlas !== true);
  const empty = q('.emb-empty');
  empty.hidden = ready;
  empty.textContent = words;
  empty.classList.toggle('error-text', !!(embedding && embedding.error));
  const points = ready ? embedding.points : null;
  if (points !== v.points) {
    v.points = points;
    v.byIndex = new Map((points || []).map((p, k) => [p.index, k]));
    v.base = null;
    v.cursor = v.hover = v.shown = -1;
    v.tip.hidden = true;
    v.stage.setAttribute('aria-label', points
      ? `Map of ${thousands(points.length)} test digits, each placed near the ones the network ` +
        'finds alike; arrow keys move from digit to digit, Enter puts it on the pad'
      : 'Map of the test digits (not loaded)');
  }
  const touch = window.matchMedia('(hover: none)').matches;
  v.readout.dataset.touch = touch ? '1' : '';
  v.readout.dataset.hint = !points ? ''
    : touch ? 'Tap a dot to read its digit and put it on the pad.'
      : 'Hover a dot, or focus the map and use the arrow keys, to read its digit.';
  if (v.shown < 0) v.readout.textContent = v.readout.dataset.hint;

  v.result = result;
  // the neighbours and the words come with the prediction: they need no map
  const atlas = !!model && model.atlas === true;
  const nb = atlas && result && result.neighbors ? result.neighbors : null;
  const list = q('[data-testid="neighbors"]');
  if (nb) {
    fillDigitButtons(list, nb, {
      image: (d) => d.image,
      caption: labelCaption,
      label: (d) => `${digitWords(d)}, distance ${fmt(d.distance)}: put it on the pad`,
    });
  } else if (!list.querySelector('.slot')) {
    fillSlots(list, NEIGHBORS);
  }
  q('.emb-verdict').textContent = !atlas ? ''
    : nb ? verdict(result)
      : result ? 'Its place is not known for this drawing yet: draw on, and it will be.'
        : 'Draw a digit: a ring marks where it lands among the digits the network knows.';
  const note = atlasNote && atlasNote.where === 'embedding' ? atlasNote : null;
  q('.emb-note').textContent = note ? note.message : '';
  q('.emb-note').classList.toggle('error-text', !!(note && note.error));
  draw(v);
}
