// Upload: pick a file or drop one on the pad area. Hands the File to onFile; the caller shows it
// on the pad and sends it. Rejections the browser can tell (not an image) go to onError.

export function setupUpload({ input, dropZone, onFile, onError }) {
  function take(file) {
    if (!file) return;
    if (file.type && !file.type.startsWith('image/')) {
      onError(`"${file.name}" is not an image (it is ${file.type}). ` +
        'Choose a PNG, JPEG, WebP, BMP or GIF.');
      return;
    }
    onFile(file);
  }

  input.addEventListener('change', () => take(input.files && input.files[0]));

  let depth = 0; // dragenter/leave fire for children too
  const hasFiles = (e) =>
    e.dataTransfer && Array.from(e.dataTransfer.types || []).includes('Files');
  dropZone.addEventListener('dragenter', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth++;
    dropZone.classList.add('dragging');
  });
  dropZone.addEventListener('dragover', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
  });
  dropZone.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (!depth) dropZone.classList.remove('dragging');
  });
  dropZone.addEventListener('drop', (e) => {
    e.preventDefault();
    depth = 0;
    dropZone.classList.remove('dragging');
    take(e.dataTransfer.files && e.dataTransfer.files[0]);
  });
}

/** Forget the chosen file (so choosing the same file again fires change). */
export function render(input, { upload }) {
  if (!upload && input.value) input.value = '';
}
