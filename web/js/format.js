// Text the views share: escaping for HTML, and one way to write a value, a percentage, a count.

/** Text made safe inside HTML: element content or a quoted attribute. */
export const esc = (t) => String(t).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Compact number formatting for legends and readouts. */
export function fmt(v) {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a === 0) return '0';
  let s = a >= 1000 || a < 0.001 ? v.toExponential(1).replace('e+', 'e') : v.toPrecision(3);
  if (s.includes('.') && !s.includes('e')) s = s.replace(/\.?0+$/, '');
  return s.replace(/-/g, '\u2212');
}

/**
 * A share in [0, 1] (a probability, an accuracy) as a percentage to a tenth: '97.3%', '0.4%'.
 * '0%' and '100%' only when it rounds to them, so "100% sure" is never said of 0.996.
 */
export function percent(p) {
  const tenths = Math.round(p * 1000);
  if (tenths <= 0) return '0%';
  if (tenths >= 1000) return '100%';
  return `${(tenths / 10).toFixed(1)}%`;
}

/** A whole number with thousands separators: 60,000. (Not toLocaleString: its first call loads
 * the locale data, a long task while the page starts.) */
export function thousands(x) {
  const n = Number(x);
  if (!Number.isSafeInteger(n)) return n.toLocaleString('en');
  return String(n).replace(/\B(?=(\d{3})+$)/g, ',');
}
