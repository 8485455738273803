// The dashboard's entry point: the session (or the login form), the live
// stream, the history, the views and the fleet probe.

import { get, post, setCsrf, whenExpired, describe } from './api.js';
import * as views from './views.js';
import * as charts from './charts.js';
import { serverActions, wireForms, liftAction, showConfig, result } from './actions.js';

const $ = (id) => document.getElementById(id);
let stream = null;
let range = 'hour';
let lastBans = -1;
let dayTimer = null;
let lastColumns = null;

function showLogin(message) {
  if (stream) { stream.close(); stream = null; }
  $('app').hidden = true;
  $('tabs').hidden = true;
  $('who').hidden = true;
  $('login-view').hidden = false;
  $('login-error').textContent = message || '';
  if (location.hash !== '#login') history.replaceState(null, '', '#login');
}

whenExpired(() => showLogin('Your session has ended; log in again.'));

async function login(e) {
  e.preventDefault();
  const token = $('login-token').value;
  const user = $('login-user').value.trim();
  const body = token ? { token } : { user, password: $('login-password').value };
  const r = await post('/login', body);
  if (!r.ok) { $('login-error').textContent = `✗ ${describe(r)}`; return; }
  $('login-form').reset();
  start(r.body);
}

function route() {
  let view = (location.hash || '#overview').slice(1);
  if (!document.querySelector(`section.view#${CSS.escape(view)}`)) view = 'overview';
  for (const s of document.querySelectorAll('section.view')) s.hidden = s.id !== view;
  for (const a of document.querySelectorAll('#tabs a')) {
    if (a.getAttribute('href') === `#${view}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (view === 'config') showConfig();
  if (view === 'overview' && lastColumns) charts.show(lastColumns);
}

async function loadHistory() {
  const r = await get('/api/dashboard/history');
  if (!r.ok) return;
  lastColumns = range === 'hour' ? r.body.seconds : r.body.minutes;
  charts.show(lastColumns);
}

async function refreshBans() {
  const r = await get('/bans');
  if (r.ok) views.bans(r.body.bans, liftAction(refreshBans));
}

function onLive(live) {
  views.tiles(live);
  views.upstreams(live, serverActions);
  views.traffic(live);
  views.protection(live);
  views.services(live);
  if (range === 'hour' && live.point) charts.append(live.point);
  const n = live.bans ? live.bans.active : 0;
  if (n !== lastBans) { lastBans = n; refreshBans(); }
}

function connect() {
  if (stream) stream.close();
  stream = new EventSource('/api/dashboard/events');
  const state = $('live-state');
  stream.onopen = () => { state.textContent = '● live'; state.className = 'badge live'; };
  stream.onmessage = (e) => {
    try { onLive(JSON.parse(e.data)); } catch (err) { result(false, `bad live data: ${err.message}`); }
  };
  stream.addEventListener('expired', () => showLogin('Your session has ended; log in again.'));
  stream.onerror = async () => {
    state.textContent = '○ reconnecting'; state.className = 'badge down';
    // EventSource hides the status: ask whether the session still holds.
    const r = await get('/session');
    if (r.status === 401) showLogin('Your session has ended; log in again.');
  };
}

async function probeFleet() {
  const r = await get('/fleet');
  const members = r.ok && r.body && (r.body.members || r.body.fleet);
  $('fleet-tab').hidden = !Array.isArray(members);
  if (Array.isArray(members)) views.fleet(members);
}

function start(session) {
  if (session && session.csrf_token) setCsrf(session.csrf_token);
  $('login-view').hidden = true;
  $('app').hidden = false;
  $('tabs').hidden = false;
  $('who').hidden = false;
  $('user').textContent = session && session.user ? session.user : '';
  $('logout').hidden = !(session && session.csrf_token);
  if (location.hash === '#login' || !location.hash) history.replaceState(null, '', '#overview');
  route();
  loadHistory();
  connect();
  refreshBans();
  probeFleet();
}

async function boot() {
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', async () => {
    await post('/logout');
    showLogin('Logged out.');
  });
  for (const b of document.querySelectorAll('.range button')) {
    b.addEventListener('click', () => {
      range = b.dataset.range;
      for (const o of document.querySelectorAll('.range button')) o.setAttribute('aria-pressed', String(o === b));
      clearInterval(dayTimer);
      if (range === 'day') dayTimer = setInterval(loadHistory, 60000);
      loadHistory();
    });
  }
  window.addEventListener('hashchange', route);
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', charts.restyle);
  wireForms(refreshBans);
  const r = await get('/session');
  if (r.status === 401) showLogin('');
  else if (r.ok) start(r.body);
  else $('login-error').textContent = `✗ ${describe(r)}`;
}

boot();
