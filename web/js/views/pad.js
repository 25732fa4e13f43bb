// The drawing pad: pointer events (mouse, touch, pen) or the keyboard (arrows move a pen, Space
// puts it down or lifts it), smooth strokes kept as point lists so undo, resize and export
// redraw exactly. White ink on black, like MNIST. Clear can be undone.

const EXPORT_SIZE = 280; // px of the PNG sent to the server (10x the network's 28x28)
const BRUSH_REF = 280; // brush values are px on a 280-px pad; strokes store width / BRUSH_REF
const KEY_STEP = 1 / 28; // one input pixel per arrow press; Shift moves four
const ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

/** Trace one stroke: quadratic curves through midpoints, a dot for a tap; or an adopted image. */
function traceStroke(ctx, stroke, size) {
  if (stroke.img) {
    ctx.imageSmoothingEnabled = false; // a 28x28 image over everything before it, in its pixels
    return ctx.drawImage(stroke.img, 0, 0, size, size);
  }
  const pts = stroke.pts;
  ctx.lineWidth = stroke.w * size;
  if (pts.length === 1) {
    ctx.beginPath();
    ctx.arc(pts[0][0] * size, pts[0][1] * size, (stroke.w * size) / 2, 0, Math.PI * 2);
    ctx.fill();
    return;
  }
  ctx.beginPath();
  ctx.moveTo(pts[0][0] * size, pts[0][1] * size);
  for (let i = 1; i < pts.length - 1; i++) {
    const mx = ((pts[i][0] + pts[i + 1][0]) / 2) * size;
    const my = ((pts[i][1] + pts[i + 1][1]) / 2) * size;
    ctx.quadraticCurveTo(pts[i][0] * size, pts[i][1] * size, mx, my);
  }
  const last = pts[pts.length - 1];
  ctx.lineTo(last[0] * size, last[1] * size);
  ctx.stroke();
}

function paintAll(ctx, size, strokes, image) {
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, size, size);
  if (image) {
    const s = Math.min(size / image.naturalWidth, size / image.naturalHeight);
    const w = image.naturalWidth * s;
    const h = image.naturalHeight * s;
    ctx.imageSmoothingEnabled = s < 4;
    ctx.drawImage(image, (size - w) / 2, (size - h) / 2, w, h);
  }
  ctx.strokeStyle = '#fff';
  ctx.fillStyle = '#fff';
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  for (const s of strokes) traceStroke(ctx, s, size);
}

/**
 * Wire the pad inside container (which holds the canvas, brush, undo and clear controls).
 * hooks: onChange() after the drawing changed (at most once per animation frame),
 * onStrokeEnd() on pointerup (or when the keyboard pen lifts), onReset() when the pad becomes
 * empty or leaves upload mode.
 */
export function setupPad(container, hooks) {
  const canvas = container.querySelector('[data-testid="pad"]');
  const brush = container.querySelector('[data-testid="brush"]');
  const brushOut = container.querySelector('output[for="brush"]');
  const undoBtn = container.querySelector('[data-testid="undo"]');
  const clearBtn = container.querySelector('[data-testid="clear"]');
  const ctx = canvas.getContext('2d');
  const exportCanvas = document.createElement('canvas');
  exportCanvas.width = exportCanvas.height = EXPORT_SIZE;

  const strokes = [];
  let cleared = null; // the strokes the last Clear removed, so Undo can bring them back
  let image = null; // an uploaded image being displayed
  let active = null; // pointerId of the stroke in progress ('keys' for the keyboard pen)
  let frame = 0;
  let version = 0; // bumps on every change of what the pad shows

  const hint = container.querySelector('.pad-hint');
  const size = () => canvas.width;
  function redraw() {
    paintAll(ctx, size(), strokes, image);
    const empty = !strokes.length && !image;
    hint.hidden = !empty;
    undoBtn.setAttribute('aria-disabled', String(empty && !cleared));
  }
  const brushWidth = () => Number(brush.value) / BRUSH_REF;

  function changed() {
    version++;
    if (!frame) {
      frame = requestAnimationFrame(() => {
        frame = 0;
        redraw();
        hooks.onChange();
      });
    }
  }

  function flush() {
    if (frame) cancelAnimationFrame(frame);
    frame = 0;
    redraw();
  }

  function resize() {
    const dpr = window.devicePixelRatio || 1;
    const px = Math.max(1, Math.round(canvas.getBoundingClientRect().width * dpr));
    if (px !== canvas.width) {
      canvas.width = canvas.height = px;
      redraw();
    }
  }
  new ResizeObserver(resize).observe(canvas);
  window.addEventListener('resize', resize);
  resize();

  function point(e) {
    const r = canvas.getBoundingClientRect();
    const x = (e.clientX - r.left) / r.width;
    const y = (e.clientY - r.top) / r.height;
    return [Math.min(1, Math.max(0, x)), Math.min(1, Math.max(0, y))];
  }

  function dropImage() {
    if (!image) return;
    URL.revokeObjectURL(image.src);
    image = null;
  }

  function startStroke(id, p) {
    active = id;
    if (image) {
      dropImage();
      strokes.length = 0;
      hooks.onReset();
    }
    strokes.push({ w: brushWidth(), pts: [p] });
    changed();
  }

  canvas.addEventListener('pointerdown', (e) => {
    if (active !== null || (e.pointerType === 'mouse' && e.button !== 0)) return;
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    // drawing moves the keyboard's attention off a map button, so a following Esc clears the pad
    const was = document.activeElement;
    if (was && was !== document.body && !container.contains(was)) was.blur();
    startStroke(e.pointerId, point(e));
  });

  canvas.addEventListener('pointermove', (e) => {
    if (e.pointerId !== active) return;
    const pts = strokes[strokes.length - 1].pts;
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
    let moved = false;
    for (const ev of events.length ? events : [e]) {
      const p = point(ev);
      const q = pts[pts.length - 1];
      if (Math.abs(p[0] - q[0]) + Math.abs(p[1] - q[1]) > 0.002) {
        pts.push(p);
        moved = true;
      }
    }
    if (moved) changed();
  });

  function endStroke() {
    active = null;
    flush();
    hooks.onStrokeEnd();
  }

  function end(e) {
    if (e.pointerId !== active) return;
    if (canvas.hasPointerCapture(e.pointerId)) canvas.releasePointerCapture(e.pointerId);
    endStroke();
  }
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);

  // ---- the keyboard pen: a ring over the pad while it has keyboard focus ----
  const wrap = container.querySelector('.pad-wrap');
  const pen = container.querySelector('.pad-pen');
  const kb = { x: 0.5, y: 0.5 };
  function showPen() {
    const on = canvas.matches(':focus-visible');
    wrap.classList.toggle('keys', on);
    pen.hidden = !on;
    if (!on) return;
    const d = `${brushWidth() * 100}%`;
    Object.assign(pen.style, {
      left: `${kb.x * 100}%`, top: `${kb.y * 100}%`, width: d, height: d,
    });
    pen.classList.toggle('down', active === 'keys');
  }
  canvas.addEventListener('focus', showPen);
  canvas.addEventListener('blur', () => {
    if (active === 'keys') endStroke();
    showPen();
  });
  canvas.addEventListener('keydown', (e) => {
    const dir = ARROWS[e.key];
    if (dir && !e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      const step = KEY_STEP * (e.shiftKey ? 4 : 1);
      kb.x = Math.min(1, Math.max(0, kb.x + dir[0] * step));
      kb.y = Math.min(1, Math.max(0, kb.y + dir[1] * step));
      if (active === 'keys') {
        strokes[strokes.length - 1].pts.push([kb.x, kb.y]);
        changed();
      }
    } else if (e.key === ' ' || e.key === 'Enter' || (e.key === 'Escape' && active === 'keys')) {
      e.preventDefault(); // (Esc lifts a lowered pen rather than clearing)
      if (active === 'keys') endStroke();
      else if (active === null) startStroke('keys', [kb.x, kb.y]);
    } else {
      return;
    }
    showPen();
  });

  function clear() {
    if (active !== null) return;
    if (strokes.length) cleared = strokes.slice();
    dropImage();
    strokes.length = 0;
    version++;
    flush();
    hooks.onReset();
    hooks.onChange();
  }

  function undo() {
    if (active !== null) return;
    if (image) return clear();
    if (!strokes.length && cleared) {
      strokes.push(...cleared); // Undo after Clear brings the drawing back
      cleared = null;
    } else if (strokes.length) {
      strokes.pop();
    } else {
      return;
    }
    version++;
    flush();
    if (!strokes.length) hooks.onReset();
    hooks.onChange();
  }

  undoBtn.addEventListener('click', undo);
  clearBtn.addEventListener('click', clear);
  brush.addEventListener('input', () => {
    brushOut.value = brush.value;
  });
  brush.addEventListener('change', showPen);
  brushOut.value = brush.value;

  document.addEventListener('keydown', (e) => {
    if (e.defaultPrevented || document.querySelector('dialog[open]')) return;
    const t = e.target;
    const typing = t && (t.isContentEditable ||
      (t.tagName === 'INPUT' && /^(text|search|email|number)$/.test(t.type)));
    if (typing) return;
    if (e.key === 'Escape') {
      // only where the pad is the subject: not on a map the detail dialog just handed focus back to
      if (t === document.body || container.contains(t)) clear();
    } else if (
      (e.ctrlKey || e.metaKey) && !e.shiftKey && !e.altKey && e.key.toLowerCase() === 'z'
    ) {
      e.preventDefault();
      undo();
    }
  });

  return {
    get version() {
      return version;
    },
    isEmpty: () => !strokes.length && !image,
    isUpload: () => !!image,
    clear,
    undo,
    /** Show an uploaded image (a File) on the pad instead of strokes. */
    showImage(file) {
      dropImage();
      strokes.length = 0;
      cleared = null;
      const img = new Image();
      img.onload = () => image === img && redraw();
      img.onerror = () => image === img && redraw(); // not decodable here: the server will say why
      img.src = URL.createObjectURL(file);
      image = img;
      version++;
      flush();
    },
    /** Make a [28, 28] grid in [0, 1] the drawing, over what was there (Undo takes it back). */
    loadPixels(pixels) {
      if (active !== null) return;
      const [H, W] = pixels.shape;
      const img = document.createElement('canvas');
      const c = img.getContext('2d');
      const data = c.createImageData((img.width = W), (img.height = H));
      pixels.data.forEach((v, i) => data.data.set([v * 255, v * 255, v * 255, 255], i * 4));
      c.putImageData(data, 0, 0);
      if (image) {
        dropImage();
        strokes.length = 0;
        hooks.onReset();
      }
      cleared = null;
      strokes.push({ img });
      changed();
    },
    /** The drawing as a PNG data URL (re-rendered from the strokes at EXPORT_SIZE). */
    toDataURL() {
      paintAll(exportCanvas.getContext('2d'), EXPORT_SIZE, strokes, null);
      return exportCanvas.toDataURL('image/png');
    },
  };
}

/** Reflect app state on the pad's chrome: the badge saying an upload is displayed. */
export function render(container, { upload }) {
  const badge = container.querySelector('.pad-badge');
  badge.hidden = !upload;
  if (upload) badge.querySelector('span').textContent = upload.name;
  container.querySelector('.pad-wrap').classList.toggle('showing-upload', !!upload);
}
