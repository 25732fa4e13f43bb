// Which model the page reads with: state.modelName, kept in the URL as ?model=NAME so a link
// opens the same view, and named by every request (api.useModel). Changing it reloads the model
// description and reads the drawing again. Compare mode (?compare=NAME) asks both models for
// the shown drawing, without the person's edits.

import { getState, setState, subscribe } from './state.js';
import * as api from './api.js';
import { createLatestWins } from './live.js';
import { sourceOf } from './interventions.js';
import { setupPicker, render as renderPicker, shownName } from './views/model-picker.js';
import { setupCompare, render as renderCompare } from './views/compare.js';

function syncUrl({ modelName, compare }) {
  const url = new URL(location.href);
  for (const [key, value] of [['model', modelName], ['compare', compare && compare.with]]) {
    if (value) url.searchParams.set(key, value);
    else url.searchParams.delete(key);
  }
  if (url.href !== location.href) history.replaceState(history.state, '', url);
}

/** refresh(): read the shown drawing again; reloadModel(): GET /api/v1/model for modelName
 * (a promise of its landing). */
export function setupModels({ refresh, reloadModel }) {
  const $ = (s) => document.querySelector(s);
  const bar = $('.model-bar');
  const view = $('[data-testid="compare-view"]');
  const query = new URLSearchParams(location.search);
  const first = query.get('model') || null;
  api.useModel(first);
  setState({
    modelName: first, compare: query.get('compare') ? { with: query.get('compare') } : null,
  });

  const patchCompare = (patch) =>
    getState().compare && setState({ compare: { ...getState().compare, ...patch } });
  const jobs = createLatestWins(
    ({ source, names }) => Promise.all(names.map((model) =>
      api.predictSource(source, { activations: true, encoding: 'uint8', model }))),
    {
      onResult: (job, answers) =>
        patchCompare({ names: job.names, answers, busy: false, error: '' }),
      onError: (job, err) =>
        patchCompare({ busy: false, answers: null, error: `Could not compare: ${err.message}` }),
    },
  );
  let asked = ''; // the drawing and models of the last comparison asked for
  let settle = 0; // the timer that asks once the drawing has not changed for a moment
  function ask(s) {
    const source = sourceOf(s.result);
    const names = [shownName(s), s.compare.with];
    const key = source && names.every(Boolean) &&
      `${names}|${source.file ? source.file.name + source.file.lastModified : source.image}`;
    if (!key || key === asked) return;
    asked = key;
    queueMicrotask(() => patchCompare({ busy: true }));
    jobs.submit({ source, names });
  }

  setupPicker(bar, {
    onPick: (name) => setState({ modelName: name || null }),
    onCompare() {
      const s = getState();
      const other = (s.models || []).find((m) => m.name !== shownName(s));
      asked = '';
      setState({ compare: s.compare ? null : { with: other ? other.name : null } });
    },
  });
  setupCompare(view, {
    onPick(name) {
      asked = '';
      setState({ compare: { with: name } });
    },
  });

  subscribe((s, changed) => {
    const any = (...keys) => keys.some((k) => changed.has(k));
    if (any('modelName')) {
      api.useModel(s.modelName);
      const reset = {
        model: null, modelError: '', detail: null, counterfactual: null, highlight: null,
      };
      if (Object.keys(s.ablated).length) reset.ablated = {};
      if (Object.keys(s.kernels).length) reset.kernels = {};
      asked = '';
      // the drawing is read again once the description is in: it says whether the model has
      // an atlas, and so whether the prediction can ask for the drawing's neighbours
      queueMicrotask(() => {
        setState(reset);
        Promise.resolve(reloadModel()).finally(refresh);
      });
    }
    if (any('modelName', 'compare')) syncUrl(s);
    if (any('models', 'modelName', 'model', 'compare')) renderPicker(bar, s);
    if (any('compare')) {
      document.querySelector('.workspace').classList.toggle('comparing', !!s.compare);
    }
    if (s.compare && any('result', 'status', 'compare', 'models')) {
      // once the drawing rests: while the pen moves only the main view follows it
      clearTimeout(settle);
      settle = setTimeout(() => {
        const now = getState();
        if (now.compare && now.result && now.status === 'ready') ask(now);
      }, any('result', 'status') ? 150 : 0);
    }
    if (any('compare', 'models', 'modelName', 'model', 'result')) {
      const left = shownName(s);
      renderCompare(view, { compare: s.compare, models: s.models, left, drawn: !!s.result });
    }
  });

  api.getModels().then(
    (models) => setState({ models: Array.isArray(models) ? models : [] }),
    () => setState({ models: [] }),
  );
  renderPicker(bar, getState());
  const s = getState();
  renderCompare(view, { compare: s.compare, models: null, left: shownName(s), drawn: false });
  document.querySelector('.workspace').classList.toggle('comparing', !!getState().compare);
}
