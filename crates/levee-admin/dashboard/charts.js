// The overview's charts (uPlot, vendor/). Each series has its own colour
// AND dash pattern, and a legend with its name and unit, so colour is
// never the only way to tell lines apart.

const HOUR = 3600;

const defs = {
  'chart-rps': {
    unit: 'req/s',
    series: [
      ['rps_2xx', '2xx', '--ok', []],
      ['rps_3xx', '3xx', '--accent', [2, 3]],
      ['rps_4xx', '4xx', '--warn', [8, 4]],
      ['rps_5xx', '5xx', '--bad', [12, 3, 2, 3]],
      ['rps_1xx', '1xx', '--muted', [1, 4]],
    ],
  },
  'chart-latency': {
    unit: 'ms',
    series: [
      ['p50_ms', 'p50', '--ok', []],
      ['p95_ms', 'p95', '--warn', [8, 4]],
      ['p99_ms', 'p99', '--bad', [2, 3]],
    ],
  },
  'chart-load': {
    unit: 'connections · %',
    series: [
      ['connections', 'open connections', '--accent', []],
      ['cpu_percent', 'CPU %', '--warn', [8, 4]],
      ['rss_mib', 'memory MiB', '--muted', [2, 3]],
    ],
  },
  'chart-events': {
    unit: '/s',
    series: [
      ['tls_handshakes_per_s', 'TLS handshakes/s', '--accent', []],
      ['limited_per_s', 'rate-limited/s', '--warn', [8, 4]],
      ['upstream_errors_per_s', 'upstream errors/s', '--bad', [2, 3]],
      ['mail_logins_per_s', 'mail logins/s', '--ok', [12, 3, 2, 3]],
      ['mail_failures_per_s', 'mail login failures/s', '--muted', [1, 4]],
    ],
  },
};

const charts = new Map();
let columns = null;

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

function data(def) {
  const t = columns ? columns.t : [];
  return [t, ...def.series.map(([key]) => (columns ? columns[key] : []))];
}

function build(id) {
  const def = defs[id];
  const target = document.getElementById(id);
  if (!target || typeof uPlot === 'undefined') return;
  const fg = css('--fg');
  const grid = css('--line');
  const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } };
  const opts = {
    width: Math.max(280, target.clientWidth || 500),
    height: window.innerWidth < 700 ? 180 : 220,
    scales: { x: { time: true } },
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
    series: [
      { label: 'time' },
      ...def.series.map(([, label, color, dash]) => ({
        label, stroke: css(color), width: 1.6, dash, spanGaps: false,
        value: (u, v) => (v === null || v === undefined ? '—' : `${v} ${def.unit.includes('·') ? '' : def.unit}`.trim()),
      })),
    ],
    axes: [axis, { ...axis, label: def.unit, size: 60 }],
  };
  const chart = new uPlot(opts, data(def), target);
  charts.set(id, chart);
  new ResizeObserver(() => {
    chart.setSize({ width: Math.max(280, target.clientWidth), height: opts.height });
  }).observe(target);
}

/** Draws `cols` (columns of the history: {t: [...], rps_2xx: [...], ...}). */
export function show(cols) {
  columns = cols;
  for (const id of Object.keys(defs)) {
    if (!charts.has(id)) build(id);
    const c = charts.get(id);
    if (c) c.setData(data(defs[id]));
  }
}

/** Appends one live point (the hour view only). */
export function append(point) {
  if (!columns) return;
  const n = columns.t.length;
  if (n && columns.t[n - 1] >= point.t) return;
  for (const key of Object.keys(columns)) {
    columns[key].push(point[key] ?? null);
    if (columns[key].length > HOUR) columns[key].shift();
  }
  show(columns);
}

/** Redraws with the theme's colours (when the system theme changes). */
export function restyle() {
  for (const [id, chart] of charts) {
    chart.destroy();
    charts.delete(id);
  }
  if (columns) show(columns);
}
