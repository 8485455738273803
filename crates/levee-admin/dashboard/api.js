// Talking to the admin listener: JSON in and out, the session's CSRF token
// on every state-changing request, and a 401 sending the page to login.

let csrf = null;
let onExpired = () => {};

export function setCsrf(token) { csrf = token; }
export function whenExpired(f) { onExpired = f; }

/** Calls the API; resolves to {status, ok, body} (body parsed when JSON). */
export async function call(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD') {
    headers['Content-Type'] = 'application/json';
    if (csrf) headers['X-CSRF-Token'] = csrf;
  }
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (e) {
    return { status: 0, ok: false, body: { error: `no answer from levee (${e.message})` } };
  }
  let parsed = null;
  const text = await response.text();
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = { text }; }
  if (response.status === 401 && path !== '/login') onExpired(parsed);
  return { status: response.status, ok: response.ok, body: parsed };
}

export const get = (path) => call('GET', path);
export const post = (path, body = {}) => call('POST', path, body);

/** What an answer says, in one line. */
export function describe(r) {
  if (r.body && r.body.error) return `${r.body.error} (HTTP ${r.status})`;
  return `HTTP ${r.status}`;
}
