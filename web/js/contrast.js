// Text on coloured cells: black or white, whichever contrasts more (WCAG 2 relative luminance),
// so numbers on any colour of a colormap stay readable (at least 4.58:1).

const linear = (c) => {
  const s = c / 255;
  return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
};

/** WCAG relative luminance of an [r, g, b] colour (0-255 each). */
export function luminance([r, g, b]) {
  return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
}

/** '#fff' or '#000' for text on the background rgb. */
export function inkOn(rgb) {
  const L = luminance(rgb);
  return 1.05 / (L + 0.05) >= (L + 0.05) / 0.05 ? '#fff' : '#000';
}

/** [r, g, b] from a CSS "rgb(r, g, b)" string. */
export const rgbOf = (css) => css.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number);
