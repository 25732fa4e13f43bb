// The atlas (issue 20): what the page asks the server about a model's atlas, and when. A model
// whose description says "atlas": true gets its 2-D map of test digits and its ten class inputs
// asked for once it is the page's model; the filter open in the detail view gets its examples;
// a confusion-matrix cell its digits. Any atlas digit can be put on the pad. A model without an
// atlas is never asked (it would answer 503): the views say so in words instead.

import { getState, setState, subscribe } from './state.js';
import * as api from './api.js';

/** Whether the page's model has an atlas (false while its description is loading). */
export const hasAtlas = ({ model }) => !!model && model.atlas === true;

/**
 * The conv layer whose channels a map layer shows, or null: the layer itself, or the last conv
 * before it with only maps between (batch norm, activation, pooling keep its channels).
 */
export function convOf(model, name) {
  const layers = (model && model.layers) || [];
  const isMap = (l) => !!l && (l.output_shape || []).length === 3;
  let i = layers.findIndex((l) => l && l.name === name);
  while (i >= 0 && isMap(layers[i]) && layers[i].kind !== 'conv2d') i--;
  return i >= 0 && isMap(layers[i]) ? layers[i] : null;
}

/** The state key of the filter open in the detail view: 'model|layer|channel', or ''. */
export function channelKey({ modelName, model, detail }) {
  if (!detail || !hasAtlas({ model }) || !convOf(model, detail.name)) return '';
  return `${modelName || ''}|${detail.name}|${detail.channel}`;
}

const a = (d) => (d === 8 ? 'an' : 'a');

/** Ask for one thing and put it in state under `key` unless the page moved on meanwhile. */
async function fill(key, tag, ask, still) {
  try {
    const answer = await ask();
    if (still()) setState({ [key]: { ...tag, ...answer } });
  } catch (err) {
    if (still()) setState({ [key]: { ...tag, error: err.message || String(err) } });
  }
}

/** Call onSeen() once `el` comes near the screen (at once without IntersectionObserver). */
function whenNear(el, onSeen) {
  if (!el || !('IntersectionObserver' in window)) return onSeen();
  const watch = new IntersectionObserver((entries) => {
    if (!entries.some((e) => e.isIntersecting)) return;
    watch.disconnect();
    onSeen();
  }, { rootMargin: '200px' });
  watch.observe(el);
}

/**
 * Wire the atlas: pad is the drawing pad (its loadPixels puts a digit on it); the map of digits
 * is asked for once `embeddingCard` comes near the screen, the class inputs once `modelCard`
 * does (neither costs the page's start anything before). Returns
 * { openCell(truth, predicted, count), loadDigit(digit, { where, focusPad }) } for the views'
 * callbacks.
 */
export function setupAtlas({ pad, embeddingCard, modelCard }) {
  const near = { embedding: false, classes: false };
  const sameModel = (model) => () => getState().modelName === model && hasAtlas(getState());

  function loadEmbedding(s) {
    const model = s.modelName;
    setState({ embedding: { model, busy: true } });
    fill('embedding', { model }, () => api.getEmbedding(model), sameModel(model));
  }

  function loadClasses(s) {
    const model = s.modelName;
    setState({ classInputs: { model, busy: true } });
    const ask = async () => ({ classes: await api.getClassInputs(model) });
    fill('classInputs', { model }, ask, sameModel(model));
  }

  function loadChannel(s) {
    const key = channelKey(s);
    if (!key) return setState({ channelAtlas: null });
    if (s.channelAtlas && s.channelAtlas.key === key) return;
    setState({ channelAtlas: { key, busy: true } });
    const { modelName: model, detail } = s;
    const ask = () => api.getChannel(detail.name, detail.channel, model);
    fill('channelAtlas', { key }, ask, () => channelKey(getState()) === key);
  }

  /** A cell of the confusion matrix: its digits (none to ask for where it counts none). */
  function openCell(truth, predicted, count) {
    const s = getState();
    if (!hasAtlas(s)) return;
    const model = s.modelName;
    const tag = { model, truth, predicted };
    if (count === 0) return setState({ confusionCell: { ...tag, count: 0, digits: [] } });
    setState({ confusionCell: { ...tag, busy: true } });
    const still = () => {
      const c = getState().confusionCell;
      return sameModel(model)() && !!c && c.truth === truth && c.predicted === predicted;
    };
    fill('confusionCell', tag, () => api.getConfusionCell(truth, predicted, model), still);
  }

  /** Put an atlas digit ({ index, label, image? }) on the pad; `where` names the view asking. */
  async function loadDigit(digit, { where = '', focusPad = false } = {}) {
    const say = (message, error = false) => setState({ atlasNote: { where, message, error } });
    try {
      const image = digit.image || (await api.getDigit(digit.index, getState().modelName)).image;
      pad.loadPixels(image);
    } catch (err) {
      return say(`Could not load test digit ${digit.index}: ${err.message}`, true);
    }
    say(`Test digit ${digit.index}, ${a(digit.label)} ${digit.label}, is on the pad now ` +
      '(Undo takes it back).');
    if (focusPad) document.querySelector('[data-testid="pad"]').focus();
  }

  /** The map of digits and the class inputs of the page's model, where they are near. */
  function loadWanted() {
    const s = getState();
    if (!hasAtlas(s)) return;
    const stale = (x) => !x || x.model !== s.modelName;
    if (near.embedding && stale(s.embedding)) loadEmbedding(s);
    if (near.classes && stale(s.classInputs)) loadClasses(s);
  }
  for (const [key, el] of [['embedding', embeddingCard], ['classes', modelCard]]) {
    whenNear(el, () => {
      near[key] = true;
      loadWanted();
    });
  }

  // (state changes go in a microtask: a change announced inside another's announcement would
  // reach the subscribers after it before the outer one, and they would render the older state)
  subscribe((s, changed) => {
    const any = (...keys) => keys.some((k) => changed.has(k));
    queueMicrotask(() => {
      const now = getState();
      if (any('modelName')) {
        setState({
          embedding: null, classInputs: null, confusionCell: null, channelAtlas: null,
          atlasNote: null,
        });
      }
      // (only on a new description: after a switch, the old model's is still there a moment)
      if (any('model')) loadWanted();
      if (any('model', 'detail', 'modelName')) loadChannel(getState());
      if (any('detail') && !now.detail && now.atlasNote && now.atlasNote.where === 'detail') {
        setState({ atlasNote: null });
      }
    });
  });

  return { openCell, loadDigit };
}
