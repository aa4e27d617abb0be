// Every request the page makes goes through this module: the one place that adds a bearer token,
// turns problem+json into errors, follows the event stream, and asks for a token when the API answers 401.

/** An error from the API, carrying its problem+json body. */
export class ApiError extends Error {
  constructor(problem, status) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.problem = problem;
    this.status = status;
  }

  get code() {
    return this.problem.code;
  }
}

const UNREACHABLE = { code: 'UNREACHABLE', detail: 'The server could not be reached. Is decisum running?' };

const TOKEN_KEY = 'decisum.token';

/** The token lives in sessionStorage: kept for this tab, gone when it closes. */
function storedToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || undefined;
  } catch {
    return undefined;
  }
}

/** @type {{ token: string | undefined }} */
const auth = { token: storedToken() };

/** Open event streams: a new token reconnects them with it. */
const streams = new Set();

/** The bearer token sent with every request from now on; undefined sends none. */
export function setToken(token) {
  auth.token = token || undefined;
  try {
    if (auth.token) { sessionStorage.setItem(TOKEN_KEY, auth.token); }
    else { sessionStorage.removeItem(TOKEN_KEY); }
  } catch {
    // Storage refused (a private window): the token still holds for this page.
  }
  for (const stream of streams) { stream.reconnect(); }
}

/** After a 401: asks the person for a token (once at a time); true when one was given. */
let asking;
function askForToken() {
  asking ??= Promise.resolve().then(() => {
    const given = window.prompt(auth.token ? 'That API token was refused. Paste another:' : 'This decisum needs an API token. Paste yours:');
    asking = undefined;
    if (!given || !given.trim()) { return false; }
    setToken(given.trim());
    return true;
  });
  return asking;
}

function headers(extra = {}) {
  const h = { Accept: 'application/json, application/problem+json', ...extra };
  if (auth.token) { h.Authorization = `Bearer ${auth.token}`; }
  return h;
}

function problemFrom(text, status) {
  try {
    const body = JSON.parse(text);
    if (body && typeof body === 'object') { return body; }
  } catch {
    // Not JSON: a proxy's page, say.
  }
  return { detail: text ? text.slice(0, 200) : `The server answered ${status}.` };
}

/** fetch with the token; a non-2xx answer becomes an ApiError. */
async function request(method, path, { body, headers: extra, signal } = {}, retried = false) {
  let res;
  try {
    res = await fetch(path, { method, body, headers: headers(extra), signal });
  } catch (err) {
    if (err && err.name === 'AbortError') { throw err; }
    throw new ApiError(UNREACHABLE, 0);
  }
  if (res.status === 401 && !retried && (await askForToken())) { return request(method, path, { body, headers: extra, signal }, true); }
  if (!res.ok) { throw new ApiError(problemFrom(await res.text().catch(() => ''), res.status), res.status); }
  return res;
}

async function json(method, path, body) {
  const init = body === undefined ? {} : { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } };
  return (await request(method, path, init)).json();
}

/** s3://bucket/key → the S3 files route; anything else is a path under the data folder. */
export function filesUrl(location) {
  const encode = (p) => p.split('/').map(encodeURIComponent).join('/');
  if (location.startsWith('s3://')) { return `/api/v1/files/s3/${encode(location.slice('s3://'.length))}`; }
  return `/api/v1/files/local/${encode(location.replace(/^file:/, ''))}`;
}

/**
 * PUT a File with XMLHttpRequest, the only browser API that reports upload progress. createOnly
 * sends If-None-Match: *, so the server refuses (412 FILE_EXISTS) rather than replace a file.
 */
function put(location, file, { createOnly, onProgress, signal }) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', filesUrl(location));
    const h = headers({ 'Content-Type': file.type || 'text/csv', ...(createOnly ? { 'If-None-Match': '*' } : {}) });
    for (const [k, v] of Object.entries(h)) { xhr.setRequestHeader(k, v); }
    xhr.upload.addEventListener('progress', (e) => onProgress && onProgress(e.loaded, e.lengthComputable ? e.total : file.size));
    xhr.addEventListener('load', () => {
      if (xhr.status === 401) { void askForToken(); }
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve(JSON.parse(xhr.responseText));
        } catch {
          reject(new ApiError({ detail: 'The server answered the upload with something that is not JSON.' }, xhr.status));
        }
        return;
      }
      reject(new ApiError(problemFrom(xhr.responseText, xhr.status), xhr.status));
    });
    xhr.addEventListener('error', () => reject(new ApiError(UNREACHABLE, 0)));
    xhr.addEventListener('abort', () => reject(new DOMException('The upload was stopped.', 'AbortError')));
    if (signal) { signal.addEventListener('abort', () => xhr.abort(), { once: true }); }
    xhr.send(file);
  });
}

/** Splits a text/event-stream into events, as EventSource reads it. */
function sseParser() {
  let rest = '';
  let data = [];
  let event = '';
  let id;
  return (text) => {
    const out = [];
    let buffer = rest + text;
    // A CR at the end may be the first half of a CRLF.
    const cr = buffer.endsWith('\r') ? '\r' : '';
    if (cr) { buffer = buffer.slice(0, -1); }
    const lines = buffer.split(/\r\n|\n|\r/);
    rest = lines.pop() + cr;
    for (const line of lines) {
      if (line === '') {
        if (data.length) { out.push({ event: event || 'message', data: data.join('\n'), id }); }
        data = [];
        event = '';
        id = undefined;
      } else if (!line.startsWith(':')) {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') { data.push(value); }
        else if (field === 'event') { event = value; }
        else if (field === 'id') { id = value; }
      }
    }
    return out;
  };
}

/** The server comments on an idle stream every 15 s by default: this much silence means it is dead. */
const STREAM_IDLE_MS = 45_000;

/**
 * Follows GET /api/v1/events: `on.job(job)`, `on.progress({id, progress})`, `on.gone({id})`,
 * `on.active(counts)`, `on.reset()`, and `on.state('live' | 'down' | 'absent')`. fetch, not
 * EventSource, which cannot send the bearer token. After a drop it reconnects with Last-Event-ID, so
 * no state change is missed; 'absent' means an API without the stream (the caller waits on jobs instead).
 */
export function events(on) {
  let lastEventId;
  let controller;
  let closed = false;
  let delay = 1000;
  let wake;
  /** A reconnect asked for (a new token): at once, and no 'down' in between. */
  let again = false;

  const connect = async () => {
    controller = new AbortController();
    let idle = setTimeout(() => controller.abort(), STREAM_IDLE_MS);
    const h = headers({ Accept: 'text/event-stream, application/problem+json' });
    if (lastEventId) { h['Last-Event-ID'] = lastEventId; }
    try {
      const res = await fetch('/api/v1/events', { headers: h, signal: controller.signal });
      if (res.status === 404) {
        on.state('absent');
        return false;
      }
      if (res.status === 401 && (await askForToken())) { return true; }
      if (!res.ok || !res.body) { throw new ApiError(problemFrom(await res.text().catch(() => ''), res.status), res.status); }
      on.state('live');
      delay = 1000;
      const parse = sseParser();
      const decoder = new TextDecoder();
      const reader = res.body.getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) { break; }
        clearTimeout(idle);
        idle = setTimeout(() => controller.abort(), STREAM_IDLE_MS);
        for (const m of parse(decoder.decode(value, { stream: true }))) {
          if (m.id) { lastEventId = m.id; }
          const handler = on[m.event];
          if (handler) { handler(m.event === 'reset' ? undefined : JSON.parse(m.data)); }
        }
      }
    } catch {
      // Dropped, refused or cut as idle: reconnect below.
    } finally {
      clearTimeout(idle);
    }
    return true;
  };

  const stream = {
    reconnect() {
      again = true;
      if (controller) { controller.abort(); }
      if (wake) { wake(); }
    },
    close() {
      closed = true;
      streams.delete(stream);
      if (controller) { controller.abort(); }
      if (wake) { wake(); }
    },
  };
  streams.add(stream);
  void (async () => {
    while (!closed) {
      if (!(await connect())) { break; }
      if (closed) { break; }
      if (again) {
        again = false;
        continue;
      }
      on.state('down');
      await new Promise((resolve) => {
        wake = resolve;
        setTimeout(resolve, delay);
      });
      again = false;
      delay = Math.min(15_000, delay * 2);
    }
  })();
  return stream;
}

export const api = {
  active: () => json('GET', '/api/v1/jobs/active'),
  /** A page of jobs, newest first; pass the page's nextCursor for the next one. */
  jobs: ({ limit, cursor, status } = {}) => {
    const q = new URLSearchParams();
    if (limit) { q.set('limit', String(limit)); }
    if (cursor) { q.set('cursor', cursor); }
    if (status) { q.set('status', status); }
    const query = q.toString();
    return json('GET', `/api/v1/jobs${query ? `?${query}` : ''}`);
  },
  /** The job; with `wait` (seconds), once it is final or when the time is up. */
  job: (id, wait) => json('GET', `/api/v1/jobs/${encodeURIComponent(id)}${wait ? `?wait=${wait}` : ''}`),
  submit: (body) => json('POST', '/api/v1/jobs', body),
  cancel: (id) => json('DELETE', `/api/v1/jobs/${encodeURIComponent(id)}`),
  /** The files under a folder (a location ending in /, or '' for the data folder's root). */
  files: (folder) => json('GET', filesUrl(folder)),
  /** { size, modified } of a stored file, or undefined when there is none. */
  async stat(location) {
    try {
      const res = await request('HEAD', filesUrl(location));
      return { size: Number(res.headers.get('content-length')), modified: new Date(res.headers.get('last-modified')) };
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) { return undefined; }
      throw err;
    }
  },
  upload: put,
};
