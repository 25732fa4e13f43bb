// The edit box above the map: switch this map (unit) off, and the answer now beside the answer
// without the edits.

import { percent } from '../../format.js';
import { isOff } from '../../interventions.js';
import { uis, touch } from './frame.js';

/** The switch-off button and the answer now, beside the unedited one while edits are on. */
export function syncEdit(dialog) {
  const ui = uis.get(dialog);
  const v = ui.view;
  const q = (s) => dialog.querySelector(s);
  const box = q('.detail-edit');
  box.hidden = !v || v.kind === 'softmax';
  const off = !box.hidden && isOff(v.layer.name, v.ch);
  q('.stage.big').classList.toggle('off', off && !v.vector);
  if (box.hidden) return;
  const what = v.vector ? 'unit' : 'map';
  const btn = q('.off-toggle');
  btn.setAttribute('aria-pressed', String(off));
  btn.textContent = `Switch this ${what} off`;
  const how = off ? 'Switched off: it passes on only zeros'
    : touch() ? 'Switch it off and watch' : `Or press X on the ${what}`;
  q('.off-help').textContent = `${how}; every layer after it and the answer update.`;
  const r = ui.result;
  const b = r && r.baseline;
  const before = b
    ? `; without your edits: ${b.label} (${percent(b.probabilities[b.label])})` : '';
  q('.detail-answer').textContent = r
    ? `Answer now: ${r.label} (${percent(r.probabilities[r.label])})${before}`
    : '';
}
