// The operator's actions, through the control API: each destructive one
// asks first, and each shows its result in the status line.

import { post, get, describe } from './api.js';
import { el, fill } from './format.js';

/** Shows `text` in the status line: ok (✓) or not (✗), never colour alone. */
export function result(ok, text) {
  const r = document.getElementById('result');
  r.className = `result ${ok ? 'ok' : 'bad'}`;
  r.textContent = `${ok ? '✓' : '✗'} ${text}`;
}

/** Asks `question`; resolves to true when confirmed. */
export function confirm(question) {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = question;
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.showModal();
  });
}

async function act(question, method, path, body, done) {
  if (question && !(await confirm(question))) {
    result(false, 'Cancelled.');
    return null;
  }
  const r = await post(path, body);
  result(r.ok, r.ok ? done(r.body) : describe(r));
  return r;
}

const serverPath = (u, s, action) => `/upstreams/${encodeURIComponent(u)}/servers/${encodeURIComponent(s)}/${action}`;

/** The buttons of one server's row. */
export function serverActions(upstream, server) {
  const weight = el('input', { type: 'number', min: 1, max: 1000, 'aria-label': `New weight for ${server}`, placeholder: 'weight' });
  const button = (label, action, question) => el('button', {
    type: 'button',
    dataset: { action },
    'aria-label': `${label} ${server}`,
    onclick: () => act(question, 'POST', serverPath(upstream, server, action), {},
      () => `${label}: ${server} in upstream ${upstream}.`),
  }, label);
  return el('div', { class: 'row-actions' },
    button('Drain', 'drain', `Drain ${server} in upstream ${upstream}? It takes no new requests; requests in flight finish.`),
    button('Disable', 'disable', `Disable ${server} in upstream ${upstream}? It takes no requests at all.`),
    button('Enable', 'enable', null),
    weight,
    el('button', {
      type: 'button',
      dataset: { action: 'weight' },
      onclick: () => {
        const w = weight.value === '' ? null : Number(weight.value);
        act(null, 'POST', serverPath(upstream, server, 'weight'), { weight: w },
          () => `Weight of ${server} in upstream ${upstream} set to ${w === null ? 'the configured one' : w}.`);
      },
    }, 'Set weight'));
}

export function wireForms(refreshBans) {
  document.getElementById('purge-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const by = document.getElementById('purge-by').value;
    const value = document.getElementById('purge-value').value.trim();
    const r = await act(`Purge every stored response matching ${by} ${value}?`, 'POST', '/cache/purge', { [by]: value },
      (b) => `Purged ${b.purged} stored response(s) matching ${by} ${value}.`);
    if (r && r.status === 404 && r.body && r.body.purged === 0) result(false, `Nothing stored matches ${by} ${value}.`);
  });
  document.getElementById('mail-close-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const user = document.getElementById('mail-user').value.trim();
    act(`Close every mail session of ${user}?`, 'POST', `/mail/users/${encodeURIComponent(user)}/close`, {},
      (b) => `Closing ${b.closing} mail session(s) of ${b.user}.`);
  });
  document.getElementById('ban-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const address = document.getElementById('ban-address').value.trim();
    const span = document.getElementById('ban-for').value.trim();
    const body = span ? { address, for: span } : { address };
    await act(`Ban ${address}${span ? ` for ${span}` : ' until lifted'}? Its connections and requests are refused.`, 'POST', '/bans', body,
      (b) => `Banned ${b.banned.address}.`);
    refreshBans();
  });
  document.getElementById('reload').addEventListener('click', reload);
  document.getElementById('config-refresh').addEventListener('click', showConfig);
}

export function liftAction(refreshBans) {
  return (address) => el('button', {
    type: 'button',
    'aria-label': `Lift the ban of ${address}`,
    onclick: async () => {
      await act(`Lift the ban of ${address}?`, 'POST', '/bans/lift', { address }, () => `Lifted the ban of ${address}.`);
      refreshBans();
    },
  }, 'Lift');
}

async function reload() {
  const errors = document.getElementById('reload-errors');
  fill(errors);
  const r = await act('Reload the config from its file? A config levee check refuses is not applied.', 'POST', '/reload', {},
    (b) => `Reloaded ${b.reloaded}.`);
  if (r && !r.ok && r.body && r.body.errors) {
    fill(errors, el('strong', {}, '✗ Reload refused; the running config stays:'),
      el('ul', {}, ...r.body.errors.map((line) => el('li', {}, el('code', {}, line)))));
  }
  if (r && r.ok) showConfig();
}

export async function showConfig() {
  const r = await get('/api/dashboard/config');
  if (!r.ok) { result(false, describe(r)); return; }
  const c = r.body;
  document.getElementById('config-source').textContent = c.source
    ? `File: ${c.source} — ${c.errors ? 'levee check refuses it (below)' : c.changed ? 'differs from the running config' : 'same as the running config'}.`
    : 'Built-in config (no file).';
  document.getElementById('config-running').textContent = c.running;
  const diff = document.getElementById('config-diff');
  if (c.errors) {
    fill(diff, ...c.errors.map((e) => el('div', { class: 'del' }, `✗ ${e}`)));
  } else if (!c.changed) {
    fill(diff, el('div', {}, 'No change: a reload would apply the same config.'));
  } else {
    fill(diff, ...c.diff.filter((d) => d.op !== ' ').map((d) => el('div', { class: d.op === '+' ? 'add' : 'del' }, `${d.op} ${d.line}`)));
  }
}
