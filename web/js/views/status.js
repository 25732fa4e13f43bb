// The status line: what is happening, and every API or network error in words.

export function render(el, { message, error, modelError, status }) {
  // before any prediction, a failed model description is the news; afterwards the model card
  // keeps it
  const modelNews = !!modelError && status === 'idle';
  const text = modelNews ? `The model description could not be loaded: ${modelError}` : message;
  if (el.textContent !== text) el.textContent = text;
  el.classList.toggle('error', !!error || modelNews);
  el.classList.toggle('busy', status === 'loading');
}
