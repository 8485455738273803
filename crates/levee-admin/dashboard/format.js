// Building DOM nodes and formatting figures. Every text goes in through
// textContent (never innerHTML), so a route, host, user or key that holds
// markup is shown as text.

/** Creates an element: el('td', {class: 'num'}, 'text', child, ...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** Replaces the children of `node`. */
export function fill(node, ...children) {
  node.replaceChildren(...children.filter((c) => c !== null && c !== undefined && c !== false));
}

const nf = (digits) => new Intl.NumberFormat('en', { maximumFractionDigits: digits });

/** A number with its unit, or an em dash for no value. */
export function num(v, unit, digits = 1) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  return unit ? `${nf(digits).format(v)} ${unit}` : nf(digits).format(v);
}

export const perSec = (v) => num(v, '/s');
export const ms = (v) => num(v, 'ms', v !== null && v < 10 ? 2 : 0);
export const pct = (v) => (v === null || v === undefined ? '—' : `${nf(1).format(v * 100)} %`);

export function bytes(v) {
  if (v === null || v === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${nf(i ? 1 : 0).format(v)} ${units[i]}`;
}

/** Seconds since the epoch as a local date and time. */
export function when(secs) {
  if (secs === null || secs === undefined) return '—';
  return new Date(secs * 1000).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' });
}

/** A state word with a symbol, so colour is never the only signal. */
export function stateLabel(state) {
  const symbol = {
    up: '●', slow_start: '◐', draining: '◑', disabled: '■', down: '✕', ejected: '⊘', removed: '–',
  }[state] || '?';
  return `${symbol} ${state.replace('_', ' ')}`;
}
