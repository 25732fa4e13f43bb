// What the network sees: the 28x28 input, pixelated, with an optional saliency overlay and a
// rectangle for the receptive field of whatever map cell is hovered.

export function setupInput(container, { onToggleSaliency }) {
  const toggle = container.querySelector('#saliency-toggle');
  toggle.addEventListener('change', () => onToggleSaliency(toggle.checked));
}

/** Size the canvas to a [.., H, W] array; its context and a blank ImageData of that size. */
function blankImage(canvas, shape) {
  const [H, W] = shape.slice(-2);
  canvas.width = W;
  canvas.height = H;
  const ctx = canvas.getContext('2d');
  return { ctx, img: ctx.createImageData(W, H), size: W * H };
}

/** Paint a [H, W] array with values in [0, 1] as grey (white ink on black). */
export function paintGray(canvas, arr) {
  const { ctx, img, size } = blankImage(canvas, arr.shape);
  const d = arr.data;
  for (let i = 0; i < size; i++) {
    const v = Math.max(0, Math.min(255, Math.round(d[i] * 255)));
    img.data[i * 4] = img.data[i * 4 + 1] = img.data[i * 4 + 2] = v;
    img.data[i * 4 + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

/** Saliency: positive red, negative blue, alpha by magnitude relative to the largest. */
function paintSaliency(canvas, arr) {
  const { ctx, img, size } = blankImage(canvas, arr.shape);
  const d = arr.data;
  let m = 0;
  for (let i = 0; i < size; i++) if (Math.abs(d[i]) > m) m = Math.abs(d[i]);
  for (let i = 0; i < size; i++) {
    const v = m ? d[i] / m : 0;
    const o = i * 4;
    if (v >= 0) [img.data[o], img.data[o + 1], img.data[o + 2]] = [214, 39, 40];
    else [img.data[o], img.data[o + 1], img.data[o + 2]] = [33, 102, 172];
    img.data[o + 3] = Math.round(Math.sqrt(Math.abs(v)) * 230) || 0;
  }
  ctx.putImageData(img, 0, 0);
}

/** Position a highlight element over a 28x28 stage (rect in input pixels, inclusive). */
export function placeHighlight(el, rect, H = 28, W = 28) {
  el.hidden = !rect;
  if (!rect) return;
  el.style.left = `${(rect.c0 / W) * 100}%`;
  el.style.top = `${(rect.r0 / H) * 100}%`;
  el.style.width = `${((rect.c1 - rect.c0 + 1) / W) * 100}%`;
  el.style.height = `${((rect.r1 - rect.r0 + 1) / H) * 100}%`;
}

export function render(container, { result, saliency, highlight }) {
  const stage = container.querySelector('[data-testid="input-view"]');
  const base = stage.querySelector('.input-canvas');
  const over = stage.querySelector('.saliency-canvas');
  const note = container.querySelector('.saliency-note');
  const has = !!(result && result.input);
  stage.classList.toggle('empty', !has);
  if (has) paintGray(base, result.input);
  else base.getContext('2d').clearRect(0, 0, base.width, base.height);
  const showSal = has && saliency && !!result.saliency;
  over.hidden = !showSal;
  if (showSal) paintSaliency(over, result.saliency);
  note.textContent = showSal
    ? `Red pixels push towards ${result.target ?? result.label}, blue ones away.`
    : '';
  placeHighlight(stage.querySelector('.rf'), has ? highlight : null);
}
