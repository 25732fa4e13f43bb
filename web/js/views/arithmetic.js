// The arithmetic of one value, from the server's float16 numbers: a conv cell is, for every
// input channel, the patch under the kernel times the kernel, summed, plus the bias; a dense
// unit is every input times its weight, summed, plus the bias. The total is shown beside the
// value the network computed, so the two can be compared.

import { esc } from '../format.js';

const TOP_CHANNELS = 3; // input channels shown in full when a conv layer has more
const TOP_INPUTS = 8; // inputs of a dense unit listed one by one

/** A number to 4 significant digits, with a true minus sign. */
export const f4 = (v) => {
  const a = Math.abs(v);
  const s = a === 0 ? '0'
    : a >= 1e4 || a < 1e-3 ? v.toExponential(2)
      : String(Number(v.toPrecision(4)));
  return s.replace('-', '\u2212');
};
const sign = (v) => (v > 0 ? 'pos' : v < 0 ? 'neg' : '');

/**
 * The terms of conv output cell (r, c): per input channel of x ({ shape: [C, H, W] or [H, W],
 * data }), the patch under the window (null outside: the zero border), the kernel w (flat
 * [C, kh, kw]), their products and the products' sum.
 */
export function convTerms(x, w, { kh, kw, sh, sw, ph, pw }, r, c) {
  const [C, H, W] = x.shape.length === 2 ? [1, ...x.shape] : x.shape;
  const n = kh * kw;
  return Array.from({ length: C }, (_, ch) => {
    const patch = [];
    const prod = [];
    let sum = 0;
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const y = r * sh - ph + i;
        const xx = c * sw - pw + j;
        const v = y >= 0 && y < H && xx >= 0 && xx < W ? x.data[(ch * H + y) * W + xx] : null;
        const p = (v || 0) * w[ch * n + i * kw + j];
        patch.push(v);
        prod.push(p);
        sum += p;
      }
    }
    return { ch, patch, kernel: Array.from(w.slice(ch * n, ch * n + n)), prod, sum };
  });
}

const grid = (vals, kw, cls = () => '') =>
  `<span class="ar-grid k${kw}">${vals.map((v) =>
    `<span class="${v === null ? 'pad' : cls(v)}">${v === null ? '0' : f4(v)}</span>`).join('')}` +
  '</span>';

const key = (pad) => '<p class="help ar-key"><span class="swatch pos"></span>raises the value ' +
  '<span class="swatch neg"></span>lowers it' +
  `${pad ? ' <span class="swatch pad"></span>outside the input (the zero border)' : ''}</p>`;

/** The closing lines: bias, total, and the network's own value beside it. */
function totals(rows, bias, total, value, off) {
  const body = rows.map(([what, v]) => `<tr><th scope="row">${what}</th><td>${f4(v)}</td></tr>`)
    .join('');
  const agree = off ? 'This one is switched off, so the network passes on 0 whatever the sum.'
    : 'They agree to the float16 precision the server sends values in ' +
      `(difference ${f4(total - value)}).`;
  return `<table class="ar-sum"><tbody>${body}` +
    `<tr><th scope="row">bias</th><td>${f4(bias)}</td></tr>` +
    '<tr class="ar-total"><th scope="row">total</th>' +
    `<td data-testid="arithmetic-total">${f4(total)}</td></tr>` +
    '<tr><th scope="row">the network\u2019s value</th>' +
    `<td data-testid="arithmetic-value">${f4(value)}</td></tr></tbody></table>` +
    `<p class="muted">${agree}</p>`;
}

/** A conv cell: the top input channels in full (patch x kernel = products), the rest summed. */
export function renderConv(box, { terms, bias, value, off, from, where, kw }) {
  const total = terms.reduce((s, t) => s + t.sum, bias);
  const order = terms.slice().sort((a, b) => Math.abs(b.sum) - Math.abs(a.sum));
  const shown = order.slice(0, terms.length > TOP_CHANNELS + 1 ? TOP_CHANNELS : terms.length);
  const rest = order.slice(shown.length);
  const many = terms.length > 1;
  const each = many ? ` for each of the ${terms.length} input channels (${esc(from)})` : '';
  const inFull = rest.length
    ? ` The ${shown.length} channels that add the most are shown in full.` : '';
  let html = `<h3>The arithmetic of ${esc(where)}</h3><p class="muted">Each input value under ` +
    `the window times the kernel weight over it, added up${each}, plus the bias, is this ` +
    `cell\u2019s value.${inFull}</p>`;
  for (const t of shown) {
    html += `<div class="ar-ch">${many ? `<h4>input channel ${t.ch}</h4>` : ''}` +
      '<div class="ar-row">' +
      `<figure>${grid(t.patch, kw)}<figcaption>input</figcaption></figure>` +
      '<span class="ar-op">\u00d7</span>' +
      `<figure>${grid(t.kernel, kw)}<figcaption>kernel</figcaption></figure>` +
      '<span class="ar-op">=</span>' +
      `<figure>${grid(t.prod, kw, sign)}<figcaption>products</figcaption></figure>` +
      `<span class="ar-op">sum ${f4(t.sum)}</span></div></div>`;
  }
  const rows = shown.map((t) => [many ? `channel ${t.ch}` : 'sum of products', t.sum]);
  if (rest.length) {
    rows.push([`the other ${rest.length} channels`, rest.reduce((s, t) => s + t.sum, 0)]);
  }
  box.innerHTML = html + key(true) + totals(rows, bias, total, value, off);
  box.hidden = false;
}

/** A dense unit: its inputs that add the most (input x weight), the rest summed, the bias. */
export function renderDense(box, { x, row, bias, value, off, from, where }) {
  const prod = Array.from(row, (w, j) => w * x[j]);
  const order = Array.from(prod.keys()).sort((a, b) => Math.abs(prod[b]) - Math.abs(prod[a]));
  const top = order.slice(0, TOP_INPUTS);
  const sumOf = (js) => js.reduce((s, j) => s + prod[j], 0);
  const total = prod.reduce((s, p) => s + p, bias);
  const lines = top.map((j) => `<tr><th scope="row">${j}</th><td>${f4(x[j])}</td>` +
    `<td>${f4(row[j])}</td><td class="${sign(prod[j])}">${f4(prod[j])}</td></tr>`).join('');
  const subtotals = [
    [`the ${top.length} listed`, sumOf(top)],
    [`the other ${order.length - top.length}`, sumOf(order.slice(TOP_INPUTS))],
  ];
  box.innerHTML = `<h3>The arithmetic of ${esc(where)}</h3><p class="muted">Every one of the ` +
    `${row.length} inputs from ${esc(from)} times its weight, added up, plus the bias, is the ` +
    `unit\u2019s value; the ${top.length} that add the most are listed.</p>` +
    `<table class="ar-dense"><thead><tr><th scope="col">${esc(from)} unit</th>` +
    '<th scope="col">value</th><th scope="col">weight</th><th scope="col">product</th>' +
    '</tr></thead>' +
    `<tbody>${lines}</tbody></table>` +
    key(false) + totals(subtotals, bias, total, value, off);
  box.hidden = false;
}
