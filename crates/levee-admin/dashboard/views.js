// Renders the live view (GET /api/dashboard/events) into the page. Tables
// are updated row by row, keyed, so a button or a field being used stays
// where it is while the figures change every second.

import { el, fill, num, perSec, ms, pct, bytes, when, stateLabel } from './format.js';

/**
 * Updates `tbody` to hold `rows` ([{key, cells, actions}]) in order. A
 * cell is a string or {text, class}; `actions(key)` builds the last cell
 * once, when the row is created.
 */
export function rows(tbody, list, empty) {
  const have = new Map([...tbody.children].filter((tr) => tr.dataset.key !== undefined).map((tr) => [tr.dataset.key, tr]));
  const placeholder = tbody.querySelector('tr.empty');
  if (placeholder) placeholder.remove();
  let i = 0;
  for (const row of list) {
    let tr = have.get(row.key);
    if (!tr) {
      tr = el('tr', { dataset: { key: row.key } });
      for (let c = 0; c < row.cells.length; c += 1) tr.append(el(c === 0 ? 'th' : 'td', c === 0 ? { scope: 'row' } : {}));
      if (row.actions) tr.append(el('td', {}, row.actions()));
    }
    have.delete(row.key);
    row.cells.forEach((cell, c) => {
      const td = tr.children[c];
      const text = typeof cell === 'object' && cell !== null ? cell.text : String(cell);
      const cls = typeof cell === 'object' && cell !== null ? cell.class || '' : (c === 0 ? 'name' : 'num');
      if (td.textContent !== text) td.textContent = text;
      if (td.className !== cls) td.className = cls;
      if (cell && cell.title !== undefined && td.title !== cell.title) td.title = cell.title;
    });
    if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
    i += 1;
  }
  for (const tr of have.values()) tr.remove();
  if (!list.length && empty) {
    const cols = tbody.closest('table').querySelectorAll('thead th').length || 1;
    tbody.append(el('tr', { class: 'empty' }, el('td', { colspan: cols, class: 'empty' }, empty)));
  }
}

function tile(label, value, unit) {
  return el('div', { class: 'card tile' },
    el('div', { class: 'label' }, label),
    el('div', { class: 'value' }, value, unit ? el('span', { class: 'unit' }, unit) : null));
}

export function tiles(live) {
  const p = live.point || {};
  const total = ['rps_1xx', 'rps_2xx', 'rps_3xx', 'rps_4xx', 'rps_5xx'].reduce((a, k) => a + (p[k] || 0), 0);
  const d = live.descriptors || {};
  fill(document.getElementById('tiles'),
    tile('Requests', num(total, null), 'req/s'),
    tile('Server errors (5xx)', num(p.rps_5xx, null), 'req/s'),
    tile('Latency p95 (all routes)', num(p.p95_ms, null, 1), 'ms'),
    tile('Open connections', num(p.connections, null, 0), 'connections'),
    tile('Descriptors in use', num(d.open, null, 0), `of ${d.limit ? num(d.limit, null, 0) : 'no limit'}`),
    tile('CPU', num(live.process && live.process.cpu_percent, null), '% of a core'),
    tile('Memory', bytes(live.process && live.process.rss_bytes), 'resident'),
    tile('Cache hit ratio', live.cache ? pct(live.cache.hit_ratio) : 'off', live.cache ? 'last 10 s' : ''),
    tile('Mail logins', num(p.mail_logins_per_s, null), 'logins/s'),
    tile('TLS handshakes', num(p.tls_handshakes_per_s, null), 'handshakes/s'),
    tile('Banned addresses', num(live.bans ? live.bans.active : 0, null, 0), 'bans'));
}

/** The upstream tables; `serverActions(upstream, server)` builds a row's buttons. */
export function upstreams(live, serverActions) {
  const box = document.getElementById('upstream-tables');
  const list = live.upstreams || [];
  const seen = new Set();
  for (const u of list) {
    seen.add(u.name);
    let table = [...box.children].find((t) => t.dataset.upstream === u.name);
    if (!table) {
      table = el('div', { class: 'scroll', dataset: { upstream: u.name } },
        el('table', { class: 'upstream', 'aria-label': `Upstream ${u.name}` },
          el('caption', {}, `Upstream ${u.name}`),
          el('thead', {}, el('tr', {}, ...['Server', 'State', 'Weight', 'In flight', 'Requests/s', 'Error rate (10 s)', 'p50', 'p95', 'p99', 'Actions']
            .map((h) => el('th', { scope: 'col' }, h)))),
          el('tbody')));
      box.append(table);
    }
    table.querySelector('caption').textContent =
      `Upstream ${u.name} — ${perSec(u.rps)} · p50 ${ms(u.latency_ms.p50)} · p95 ${ms(u.latency_ms.p95)} · p99 ${ms(u.latency_ms.p99)} (10 s)`;
    rows(table.querySelector('tbody'), u.servers.map((s) => ({
      key: s.address,
      cells: [
        { text: s.address + (s.configured && s.configured !== s.address ? ` (${s.configured})` : '') + (s.backup ? ' · backup' : ''), class: 'name' },
        { text: stateLabel(s.state) + (s.why ? ` — ${s.why}` : ''), class: `state ${s.state}` },
        { text: `${s.weight_override ?? s.weight}${s.weight_override ? ' (set)' : ''} · effective ${num(s.effective_weight, null, 2)}`, class: 'num' },
        `${num(s.active, null, 0)} req`,
        perSec(s.rps),
        pct(s.error_rate),
        ms(s.latency_ms.p50),
        ms(s.latency_ms.p95),
        ms(s.latency_ms.p99),
      ],
      actions: () => serverActions(u.name, s.address),
    })), 'No servers.');
  }
  for (const t of [...box.children]) if (!seen.has(t.dataset.upstream)) t.remove();
  if (!list.length) fill(box, el('p', { class: 'empty' }, 'No upstreams are configured.'));
}

const conn = (n) => (n === null || n === undefined ? '—' : `${num(n, null, 0)} conn`);

export function traffic(live) {
  rows(document.querySelector('#routes-table tbody'), (live.routes || []).map((r) => ({
    key: r.name,
    cells: [{ text: r.name, class: 'name' }, perSec(r.rps), perSec(r.errors_per_s), ms(r.latency_ms.p50), ms(r.latency_ms.p95), ms(r.latency_ms.p99), `${num(r.requests, null, 0)} req`],
  })), 'No requests yet.');
  rows(document.querySelector('#listeners-table tbody'), (live.listeners || []).map((l) => ({
    key: l.address,
    cells: [{ text: l.address, class: 'name' }, conn(l.active), conn(l.idle), perSec(l.connections_per_s), perSec(l.requests_per_s)],
  })), 'No listeners.');
  const d = live.descriptors || {};
  document.getElementById('descriptors').textContent =
    `Descriptors: ${num(d.open, null, 0)} open of a limit of ${d.limit ? num(d.limit, null, 0) : 'unlimited'} (every listener, upstream connection and file). Idle connections are keep-alive connections quiet for more than 100 ms; the oldest are closed first near the limit.`;
}

export function protection(live) {
  const box = document.getElementById('rules');
  const rules = live.rate_limits || [];
  if (!rules.length) { fill(box, el('p', { class: 'empty' }, 'No rate-limit rules are configured.')); return; }
  fill(box, ...rules.map((r) => el('div', { class: 'card', dataset: { rule: r.rule } },
    el('h3', {}, `Rule ${r.rule}`),
    el('p', {}, `Admitted ${perSec(r.admitted_per_s)} · delayed ${perSec(r.delayed_per_s)} · refused ${perSec(r.refused_per_s)} (${num(r.refused_total, null, 0)} refused in all; ${num(r.dry_run_refused_total, null, 0)} in dry run)`),
    r.top_keys.length
      ? el('div', {}, el('strong', {}, 'Most-refused keys'),
        el('ol', { class: 'keys' }, ...r.top_keys.map((k) => el('li', { class: 'key' }, el('code', {}, k.key), ` — ${perSec(k.refused_per_s)}, ${num(k.refused_total, null, 0)} refused`))))
      : el('p', { class: 'empty' }, 'No key refused yet.'))));
}

export function bans(list, liftAction) {
  rows(document.querySelector('#bans-table tbody'), list.map((b) => ({
    key: b.address,
    cells: [{ text: b.address, class: 'name' }, { text: when(b.since), class: '' }, { text: b.until ? when(b.until) : 'until lifted', class: '' }],
    actions: () => liftAction(b.address),
  })), 'Nobody is banned.');
}

export function services(live) {
  const c = live.cache;
  fill(document.getElementById('cache'), c
    ? el('p', {}, `Hit ratio ${pct(c.hit_ratio)} (last 10 s) · ${bytes(c.bytes)} of ${bytes(c.max_bytes)} in ${num(c.entries, null, 0)} entries · evictions ${perSec(c.evictions_per_s)} (${num(c.evictions_total, null, 0)} in all) · stale served ${perSec(c.stale_per_s)}`)
    : el('p', { class: 'empty' }, 'The cache is off: no route caches.'));
  const m = live.mail || { protocols: [], failures: [] };
  fill(document.getElementById('mail'),
    el('div', { class: 'scroll' }, el('table', { id: 'mail-table' },
      el('thead', {}, el('tr', {}, ...['Protocol', 'Sessions', 'Logged in', 'Logins/s (10 s)'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, ...m.protocols.map((p) => el('tr', {}, el('th', { scope: 'row' }, p.protocol),
        el('td', { class: 'num' }, `${num(p.sessions, null, 0)} sessions`), el('td', { class: 'num' }, `${num(p.logged_in, null, 0)} sessions`), el('td', { class: 'num' }, perSec(p.logins_per_s))))))),
    el('p', {}, 'Login failures by reason: ', ...m.failures.map((f, i) => `${i ? ' · ' : ''}${f.reason} ${perSec(f.per_s)} (${num(f.total, null, 0)} in all)`)));
  const t = live.tls || { certificates: [] };
  fill(document.getElementById('tls'),
    el('p', {}, `Handshakes ${perSec(t.handshakes_per_s)} · failed ${perSec(t.failures_per_s)} · ${num(t.handshakes_total, null, 0)} in all`),
    t.certificates.length
      ? el('div', { class: 'scroll' }, el('table', {},
        el('thead', {}, el('tr', {}, ...['Certificate', 'Names', 'Expires', 'Days left'].map((h) => el('th', { scope: 'col' }, h)))),
        el('tbody', {}, ...t.certificates.map((c) => el('tr', {},
          el('th', { scope: 'row', class: 'name' }, c.path),
          el('td', { class: 'name' }, c.names.length ? c.names.join(', ') : '(default)'),
          el('td', {}, when(c.not_after)),
          el('td', { class: `num ${c.days_left !== null && c.days_left < 14 ? 'state down' : ''}` },
            c.days_left === null ? '—' : `${c.days_left < 14 ? '⚠ ' : ''}${num(c.days_left, null, 0)} days`))))))
      : el('p', { class: 'empty' }, 'No TLS listener.'));
}

export function fleet(members) {
  rows(document.querySelector('#fleet-table tbody'), members.map((m) => ({
    key: String(m.id ?? m.name ?? m.address),
    cells: [{ text: String(m.name ?? m.id ?? m.address), class: 'name' }, { text: String(m.health ?? m.state ?? '—'), class: '' }, { text: m.load === undefined ? '—' : String(m.load), class: 'num' }],
  })), 'No members.');
}
