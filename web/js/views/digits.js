// Atlas digits as small buttons (a thumbnail and a caption) that put the digit on the pad: the
// parts the views of the atlas share (neighbours, a confusion cell's digits, a filter's examples).

import { esc } from '../format.js';
import { paintGray } from './input.js';

/** 'a 3', 'an 8'. */
export const aDigit = (d) => `${d === 8 ? 'an' : 'a'} ${d}`;

/** How a test digit is named to a screen reader: 'test digit 4821, a 4 read as 9'. */
export function digitWords({ index, label, predicted }) {
  const read = predicted != null && predicted !== label ? ` read as ${predicted}` : '';
  return `test digit ${index}, ${aDigit(label)}${read}`;
}

/**
 * Fill a list with one button per digit, reusing the buttons it has (so the one with focus keeps
 * it). Each gets data-n (its place in `digits`), a canvas of `image(d)` ([h, w] in [0, 1]),
 * the caption HTML `caption(d)` and the accessible name `label(d)`.
 */
export function fillDigitButtons(list, digits, { image, caption, label }) {
  list.querySelectorAll('.slot').forEach((li) => li.remove());
  const items = [...list.children];
  while (items.length > digits.length) items.pop().remove();
  while (items.length < digits.length) {
    const li = document.createElement('li');
    li.innerHTML = '<button type="button" class="digit-btn"><canvas></canvas>' +
      '<span class="digit-cap"></span></button>';
    list.append(li);
    items.push(li);
  }
  digits.forEach((d, n) => {
    const button = items[n].firstChild;
    button.dataset.n = String(n);
    button.lastChild.innerHTML = caption(d);
    // the name starts with the words the button shows, as speech input expects
    button.setAttribute('aria-label', `${button.lastChild.textContent}: ${label(d)}`);
    const pixels = image(d);
    if (pixels) paintGray(button.firstChild, pixels);
  });
}

/** Empty slots that keep a list's space until its digits arrive. */
export function fillSlots(list, count) {
  list.innerHTML = '<li class="slot" aria-hidden="true"><span class="digit-btn"></span></li>'
    .repeat(count);
}

/** The caption of an atlas digit: its label, and what the model read where that differs. */
export const labelCaption = ({ label, predicted }) =>
  `<b>${esc(label)}</b>${predicted != null && predicted !== label
    ? ` <span class="misread">read ${esc(predicted)}</span>` : ''}`;
