// "What this filter looks for", under a conv map in the detail view (or a batch-norm, ReLU or
// pooling map after one, which shares its channels): the 9 test-digit patches that excite the
// channel most, each a button that puts its digit on the pad; the input optimised to excite it;
// and, boxed on the learner's drawing, the part that excites it most now (the map's highest
// cell and its receptive field).

import { esc, fmt } from '../../format.js';
import { receptiveField } from '../../receptive.js';
import { convOf, hasAtlas, channelKey } from '../../atlas.js';
import { paintGray, placeHighlight } from '../input.js';
import { digitWords, fillDigitButtons, fillSlots } from '../digits.js';

const EXAMPLES = 9;
const TEMPLATE = `<h3 id="fa-title">What this filter looks for</h3>
<p class="help fa-about"></p><p class="help fa-none" hidden></p>
<div class="fa-row"><figure class="fa-yours"><div class="stage"><canvas class="input-canvas"
  role="img" aria-label="Your drawing as the network sees it"></canvas><div class="rf"
  hidden></div></div><figcaption class="fa-yours-text"></figcaption></figure>
<figure class="fa-examples-fig"><ol class="digit-list fa-examples" data-testid="channel-examples"
  aria-label="The 9 test digits that excite it most, highest first"></ol>
<figcaption class="fa-ex-text"></figcaption></figure>
<figure class="fa-ideal" data-testid="channel-ideal"><div class="stage"><canvas
  role="img" aria-label="The input made to excite it most"></canvas></div>
<figcaption class="fa-ideal-text"></figcaption></figure></div>
<p class="help fa-status" role="status"></p>`;

export function setupFilterAtlas(dialog, { onLoadDigit }) {
  const sec = dialog.querySelector('[data-testid="filter-atlas"]');
  sec.innerHTML = TEMPLATE;
  const list = sec.querySelector('[data-testid="channel-examples"]');
  fillSlots(list, EXAMPLES);
  list.addEventListener('click', (e) => {
    const b = e.target.closest('.digit-btn[data-n]');
    const examples = list.examples;
    if (b && examples) onLoadDigit(examples[Number(b.dataset.n)]);
  });
}

/** The highest cell of channel ch of a [C, H, W] map: { r, c, value }. */
export function argmax(map, ch) {
  const [, H, W] = map.shape;
  const d = map.data;
  let best = ch * H * W;
  for (let i = best + 1; i < (ch + 1) * H * W; i++) if (d[i] > d[best]) best = i;
  const at = best - ch * H * W;
  return { r: Math.floor(at / W), c: at % W, value: d[best] };
}

/** Your drawing with the receptive field of the map's highest cell boxed, and words for it. */
function yours(sec, { model, result, detail, layer }) {
  const text = sec.querySelector('.fa-yours-text');
  const stage = sec.querySelector('.fa-yours .stage');
  const canvas = stage.querySelector('canvas');
  const box = stage.querySelector('.rf');
  const maps = result && result.layers.find((l) => l.name === detail.name);
  if (!maps || !maps.data || !result.input) {
    canvas.getContext('2d').clearRect(0, 0, canvas.width, canvas.height);
    placeHighlight(box, null);
    text.textContent = 'Draw a digit to see which part of it excites this channel most.';
    return;
  }
  paintGray(canvas, result.input);
  const ch = Math.min(detail.channel, maps.data.shape[0] - 1);
  const top = argmax(maps.data, ch);
  const index = model.layers.indexOf(layer);
  const rf = receptiveField(model.layers, index, top.r, top.c, top.r, top.c, model.input_shape);
  const nothing = top.value <= 0 && layer.kind !== 'conv2d' && layer.kind !== 'batchnorm';
  placeHighlight(box, nothing ? null : rf);
  text.textContent = nothing
    ? 'Nothing in your drawing excites it: this map is 0 everywhere.'
    : `Your drawing: it excites this channel most in the box (row ${top.r}, col ${top.c} ` +
      `of the map, value ${fmt(top.value)}).`;
}

export function render(dialog, s) {
  const sec = dialog.querySelector('[data-testid="filter-atlas"]');
  const { model, detail, channelAtlas: atlas, atlasNote } = s;
  const conv = detail && model ? convOf(model, detail.name) : null;
  const dims = s.result && s.result.layers.find((l) => l.name === (detail && detail.name));
  sec.hidden = !conv || (dims && dims.shape.length !== 3);
  if (sec.hidden) return;
  const layer = model.layers.find((l) => l && l.name === detail.name);
  const q = (sel) => sec.querySelector(sel);
  const has = hasAtlas(s);
  q('.fa-row').hidden = !has;
  q('.fa-none').hidden = has;
  const ready = has && atlas && atlas.key === channelKey(s) && !atlas.busy && !atlas.error
    ? atlas : null;
  const ranked = ready ? ready.map : conv.name; // (a conv's batch norm, where it has one)
  const follows = detail.name === ranked ? ''
    : detail.name === conv.name ? ` (${esc(conv.name)}\u2019s values after its batch norm)`
      : ` (${esc(detail.name)} passes on what it finds)`;
  q('.fa-about').innerHTML = `What makes channel ${detail.channel} of ${esc(ranked)} ` +
    `high${follows}: the nine test-digit patches that excite it most, an image optimised to ` +
    'excite it even more, and the part of your drawing that excites it most.';
  if (!has) {
    q('.fa-none').textContent = 'This model has no atlas: which test digits excite each ' +
      'filter was not computed for it.';
    return;
  }
  yours(sec, { ...s, layer });
  const list = q('[data-testid="channel-examples"]');
  list.examples = ready ? ready.examples : null;
  if (ready) {
    fillDigitButtons(list, ready.examples, {
      image: (e) => e.patch,
      caption: (e) => `<b>${esc(e.label)}</b> ${esc(fmt(e.value))}`,
      label: (e) => `${digitWords(e)}, value ${fmt(e.value)}: put it on the pad`,
    });
  } else if (!list.querySelector('.slot')) {
    fillSlots(list, EXAMPLES);
  }
  const patch = ready && ready.examples.length ? ready.examples[0].patch.shape : null;
  q('.fa-ex-text').textContent = 'The 9 test digits that excite it most: the ' +
    `${patch ? `${patch[0]}\u00d7${patch[1]} pixels` : 'part'} of each it sees, the digit and ` +
    'the value. Each goes on the pad.';
  const ideal = q('[data-testid="channel-ideal"] canvas');
  if (ready && ready.ideal) paintGray(ideal, ready.ideal);
  else ideal.getContext('2d').clearRect(0, 0, ideal.width, ideal.height);
  const best = ready && ready.examples.length ? ready.examples[0].value : null;
  q('.fa-ideal-text').textContent = !ready ? 'The input made to excite it most.'
    : `Made to excite it: value ${fmt(ready.idealValue)}` +
      (best != null ? `, against ${fmt(best)} for its best test digit.` : '.');
  const note = atlasNote && atlasNote.where === 'detail' ? atlasNote : null;
  const status = q('.fa-status');
  status.classList.toggle('error-text', !!((atlas && atlas.error) || (note && note.error)));
  status.textContent = atlas && atlas.error
    ? `What it looks for could not be loaded: ${atlas.error}`
    : note ? `${note.message} The maps above show it.`
      : atlas && atlas.busy ? 'Loading the digits that excite it\u2026' : '';
}
