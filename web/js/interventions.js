// Hands-on causality: the person's edits to the network (maps switched off, conv filters
// replaced) ride along with every prediction; the preprocessing steps, "what would make it a
// ..." and the float16 values the arithmetic needs are asked for here too.
// The layer explorer can call toggleChannel(layer, channel) and isOff(layer, channel).

import { getState, setState, subscribe } from './state.js';
import * as api from './api.js';
import { createLatestWins } from './live.js';
import { renderBar, renderBaseline } from './views/ablation-bar.js';
import { setupSteps, render as renderSteps } from './views/steps.js';
import { setupCounterfactual, render as renderCounterfactual } from './views/counterfactual.js';

const sources = new WeakMap(); // result -> { source: { image } | { file }, edits } it answers
const exact = new WeakMap(); // result -> promise of the same prediction with float16 maps
const same = (a, b) => !!a && !!b && (a.file ? a.file === b.file : a.image === b.image);

/** The API's `edits` for the switched-off maps and edited kernels in state; undefined if none. */
export function edits({ ablated, kernels } = getState()) {
  const ablate = Object.entries(ablated).map(([layer, channels]) => ({ layer, channels }));
  const swap = Object.entries(kernels).flatMap(([layer, byCh]) =>
    Object.entries(byCh).map(([ch, weight]) => ({ layer, channel: Number(ch), weight })));
  return ablate.length || swap.length ? { ablate, kernels: swap } : undefined;
}

/** The live prediction of a source ({ image: dataUrl } or { file }) on the edited network. */
export async function predictLive(source) {
  const e = edits();
  const extra = e && { edits: e };
  const { modelName } = getState();
  const result = await (source.file
    ? api.predictFile(source.file, extra)
    : api.predictImage(source.image, extra));
  sources.set(result, { source, edits: e, model: modelName });
  return result;
}

/** The drawing or upload a result answers ({ image } or { file }), or null. */
export const sourceOf = (result) =>
  result && sources.get(result) ? sources.get(result).source : null;

/** The shown prediction again with float16 maps (live ones may be 8-bit), asked once a result. */
export function exactFor(result) {
  const from = result && sources.get(result);
  if (!from) return Promise.reject(new Error('There is no drawing to compute from.'));
  if (!exact.has(result)) {
    const p = api.predictSource(from.source, {
      activations: true, encoding: 'base64', edits: from.edits,
      ...(from.model && { model: from.model }),
    });
    p.catch(() => exact.delete(result)); // a later hover retries
    exact.set(result, p);
  }
  return exact.get(result);
}

/** The edits a result was computed with (undefined for none). */
export const editsFor = (result) => (sources.get(result) || {}).edits;

export const isOff = (layer, ch) => (getState().ablated[layer] || []).includes(ch);

/** Switch a map (or a unit of a vector layer) off, or back on. */
export function toggleChannel(layer, ch) {
  const { [layer]: now = [], ...rest } = getState().ablated;
  const next = now.includes(ch) ? now.filter((c) => c !== ch) : [...now, ch].sort((a, b) => a - b);
  setState({ ablated: next.length ? { ...rest, [layer]: next } : rest });
}

/** Replace conv filter ch's weights ([C_in][kh][kw]), or bring back the trained ones (null). */
export function setKernel(layer, ch, weight) {
  const { [layer]: byCh = {}, ...rest } = getState().kernels;
  const { [ch]: _, ...others } = byCh;
  const next = weight ? { ...others, [ch]: weight } : others;
  setState({ kernels: Object.keys(next).length ? { ...rest, [layer]: next } : rest });
}

/**
 * Wire the edits bar, the baseline, the steps strip and the counterfactual card. refresh(file)
 * predicts the shown drawing again (the upload's File when it is one) after an edit.
 */
export function setupInterventions({ pad, refresh }) {
  const $ = (s) => document.querySelector(s);
  const el = {
    bar: $('[data-testid="edits-bar"]'),
    prediction: $('#prediction-card'),
    steps: $('[data-testid="preprocess-steps"]'),
    cf: $('#counterfactual-card'),
  };
  el.bar.querySelector('[data-testid="ablate-reset"]')
    .addEventListener('click', () => setState({ ablated: {}, kernels: {} }));

  const askSteps = (source) => api.predictSource(source, { steps: true, encoding: 'base64' });
  const stepJobs = createLatestWins(askSteps, {
    onResult: (source, answer) => setState({ steps: {
      ...getState().steps, source, list: answer.steps || [],
      error: answer.steps ? '' : 'This server does not describe its steps.',
    } }),
    onError: (source, err) => setState({ steps: {
      ...getState().steps, source, list: null,
      error: `The steps could not be loaded: ${err.message}`,
    } }),
  });
  function loadSteps() {
    const { result, steps } = getState();
    const from = result && sources.get(result);
    if (steps && steps.open && from && !same(steps.source, from.source)) {
      stepJobs.submit(from.source);
    }
  }
  setupSteps(el.steps, {
    onToggle(open) {
      setState({ steps: { ...getState().steps, open } });
      if (open) loadSteps();
    },
  });

  let asked = null; // the latest counterfactual request: older answers are dropped
  setupCounterfactual(el.cf, {
    async onAsk(target) {
      const { result } = getState();
      const from = result && sources.get(result);
      if (!from) return;
      const mine = (asked = { target, busy: true, source: from.source });
      setState({ counterfactual: mine });
      try {
        const answer = await api.counterfactual({ image: await api.imageOf(from.source), target });
        if (asked === mine) setState({ counterfactual: { target, answer, source: from.source } });
      } catch (err) {
        const why = err.status === 404 ? 'This server cannot search for changes yet.' : err.message;
        if (asked === mine) {
          setState({ counterfactual: { target, error: why, source: from.source } });
        }
      }
    },
    onAdopt() {
      const cf = getState().counterfactual;
      if (!cf || !cf.answer) return;
      pad.loadPixels(cf.answer.pixels);
      document.querySelector('[data-testid="pad"]').focus({ preventScroll: true });
    },
  });

  subscribe((s, changed, prev) => {
    const any = (...keys) => keys.some((k) => changed.has(k));
    if (any('ablated', 'kernels')) renderBar(el.bar, s);
    if (any('ablated', 'kernels') && s.result) {
      const from = sources.get(s.result);
      queueMicrotask(() => {
        setState({ status: 'loading' });
        refresh(from && from.source.file);
      });
    }
    if (any('result')) {
      renderBaseline(el.prediction, s.result);
      const from = s.result && sources.get(s.result);
      if (s.counterfactual && !(from && same(s.counterfactual.source, from.source))) {
        queueMicrotask(() => setState({ counterfactual: (asked = null) }));
      }
    }
    if (any('result', 'status') && s.status === 'ready') loadSteps();
    if (any('steps') || !s.result !== !prev.result) renderSteps(el.steps, s.result && s.steps);
    if (any('result', 'counterfactual')) renderCounterfactual(el.cf, s);
  });
  renderCounterfactual(el.cf, getState());
  renderSteps(el.steps, null);
}
