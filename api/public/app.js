// decisum's web page: plain browser JavaScript modules, no build step. All API calls are in api.js.
import { api, ApiError, events } from './api.js';
import { bytes, duration, RateMeter } from './progress.js';

const $ = (id) => document.getElementById(id);
const FINAL = new Set(['succeeded', 'failed', 'cancelled']);
const UPLOAD_FOLDER = 'uploads';
/** Jobs per page of history. */
const PAGE = 20;

/**
 * Where stored files can be picked from: each becomes a group in the picker. S3 buckets join this
 * list once the API says which ones a user may read (the bucket allowlist).
 */
const SOURCES = [{ label: 'Data folder', folder: '' }];

/** Short words for an error code, where a list has no room for the server's full message. */
const WORDS = {
  NON_NUMERIC: 'A cell is not a number',
  RAGGED_ROW: 'A row has the wrong number of fields',
  UNTERMINATED_QUOTE: 'A quoted field is never closed',
  NOT_TEXT: 'The file is not text',
  EMPTY_FILE: 'The file is empty',
  LINE_TOO_LONG: 'A line is too long',
  FILE_NOT_FOUND: 'The file does not exist',
  FILE_ACCESS_DENIED: 'Storage refused access',
  BUCKET_NOT_FOUND: 'The bucket does not exist',
  S3_CREDENTIALS_MISSING: 'The server has no S3 credentials',
  S3_CREDENTIALS_INVALID: 'S3 refused the server\'s credentials',
  S3_WRONG_REGION: 'The bucket is in another region',
  FILE_CHANGED: 'The file changed while being read',
  STORAGE_UNAVAILABLE: 'Storage could not be reached',
  DELIVERY_LIMIT: 'The job kept failing and was given up',
  CANCELLED: 'Cancelled',
};

const state = {
  jobs: new Map(), // id → job
  order: [], // ids, newest first
  selected: undefined,
  /** The job this page just submitted: its result is brought into view when it arrives. */
  follow: undefined,
  /** Where the next older page of history starts; undefined when there is none. */
  olderCursor: undefined,
  olderLoaded: false,
  meters: new Map(), // id → RateMeter of a running job
  uploading: undefined, // AbortController of the upload in flight
  /** The event stream: 'live', 'down' (reconnecting) or 'absent' (a server without one). */
  stream: 'down',
  /** Whether the first page of history has been read since the stream went live. */
  listed: false,
  /** Wakes the fallback wait when a job to wait on appears or the stream's state changes. */
  wake: undefined,
  waiting: false,
};

const number = new Intl.NumberFormat();
const time = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const day = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
const reducedMotion = window.matchMedia('(prefers-reduced-motion: reduce)');

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) { continue; }
    if (k === 'class') { node.className = v; }
    else if (k === 'text') { node.textContent = v; }
    else { node.setAttribute(k, v === true ? '' : String(v)); }
  }
  for (const c of children) { if (c !== undefined && c !== null) { node.append(c); } }
  return node;
}

/** An error said once: the server's own words, else a short description of its code; the code itself small. */
function showProblem(node, err) {
  if (!err) {
    node.hidden = true;
    node.replaceChildren();
    return;
  }
  const p = err instanceof ApiError ? err.problem : { detail: String((err && err.message) || err) };
  const text = p.detail || WORDS[p.code] || 'Something went wrong.';
  const code = p.code && p.code !== 'UNREACHABLE' ? el('span', { class: 'small code', text: `code ${p.code}` }) : undefined;
  node.replaceChildren(el('span', { class: 'message', text }), code);
  node.hidden = false;
}

// ---- counts ---------------------------------------------------------------------------------

function showCounts(c) {
  $('count-active').textContent = number.format(c.active);
  $('count-queued').textContent = number.format(c.queued);
  $('count-running').textContent = number.format(c.running);
  $('counts').classList.toggle('busy', c.active > 0);
  $('counts').classList.remove('offline');
}

/** Once, where the event stream cannot say them: the fallback after each wait. */
async function refreshCounts() {
  try {
    showCounts(await api.active());
  } catch {
    $('counts').classList.add('offline');
  }
}

// ---- stored files ---------------------------------------------------------------------------

async function loadFiles(select) {
  const list = $('stored');
  const keep = select || list.value;
  const groups = await Promise.all(
    SOURCES.map(async (source) => {
      try {
        const listing = await api.files(source.folder);
        return { source, entries: [...listing.entries].sort((a, b) => a.path.localeCompare(b.path)) };
      } catch (err) {
        return { source, entries: [], error: err };
      }
    }),
  );
  const count = groups.reduce((n, g) => n + g.entries.length, 0);
  const failed = groups.find((g) => g.error);
  const prompt = count
    ? `Choose one of ${count} stored file${count === 1 ? '' : 's'}…`
    : failed
      ? `Listing unavailable — ${failed.error.message}`
      : 'No files stored yet';
  list.replaceChildren(
    el('option', { value: '', text: prompt }),
    ...groups
      .filter((g) => g.entries.length)
      .map((g) =>
        el(
          'optgroup',
          { label: g.source.label },
          ...g.entries.map((e) => el('option', { value: e.location, text: `${e.path}  ·  ${bytes(e.size)}  ·  ${day.format(new Date(e.modified))}` })),
        ),
      ),
  );
  if (keep && [...list.options].some((o) => o.value === keep)) { list.value = keep; }
}

// ---- upload ---------------------------------------------------------------------------------

/** sample.csv → sample-2.csv, sample-3.csv, …: the first name not taken. */
async function freeName(location) {
  const dot = location.lastIndexOf('.');
  const [stem, ext] = dot > location.lastIndexOf('/') ? [location.slice(0, dot), location.slice(dot)] : [location, ''];
  for (let n = 2; ; n++) {
    const candidate = `${stem}-${n}${ext}`;
    if (!(await api.stat(candidate))) { return candidate; }
  }
}

/** Asks what to do about a name that is taken; resolves 'keep', 'replace' or 'cancel'. */
function askAboutConflict(location, existing, keepAs) {
  const box = $('conflict');
  const about = [
    existing && Number.isFinite(existing.size) ? bytes(existing.size) : undefined,
    existing && Number.isFinite(existing.modified.getTime()) ? `changed ${day.format(existing.modified)}` : undefined,
  ].filter(Boolean);
  $('conflict-text').textContent = `${location} already exists${about.length ? ` (${about.join(', ')})` : ''}.`;
  $('conflict-keep').textContent = `Keep both: save as ${keepAs.split('/').pop()}`;
  box.hidden = false;
  $('conflict-keep').focus();
  return new Promise((resolve) => {
    const choose = (choice) => () => {
      box.hidden = true;
      $('conflict-text').textContent = '';
      for (const [id, handler] of handlers) { $(id).removeEventListener('click', handler); }
      box.removeEventListener('keydown', onKey);
      resolve(choice);
    };
    const handlers = [
      ['conflict-keep', choose('keep')],
      ['conflict-replace', choose('replace')],
      ['conflict-cancel', choose('cancel')],
    ];
    const onKey = (e) => {
      if (e.key === 'Escape') { handlers[2][1](); }
    };
    for (const [id, handler] of handlers) { $(id).addEventListener('click', handler); }
    box.addEventListener('keydown', onKey);
  });
}

function setUploadStatus(kind, text) {
  const status = $('upload-status');
  status.className = `upload-status${kind ? ` ${kind}` : ''}`;
  status.textContent = text;
}

async function upload(file) {
  if (state.uploading) { return; }
  const name = file.name.replace(/[\\/]/g, '_');
  let location = `${UPLOAD_FOLDER}/${name}`;
  const controller = new AbortController();
  state.uploading = controller;
  $('upload').disabled = true; // one upload at a time; Stop ends this one
  $('submit').disabled = true;
  $('drop').classList.add('working');
  showProblem($('form-error'), undefined);
  setUploadStatus('', `Checking ${location}…`);
  let written;
  try {
    // Asked before sending, so a large file is not sent only to be refused. The PUT still says
    // If-None-Match: *, so a file stored by someone else meanwhile is not replaced either.
    let existing = await api.stat(location);
    let choice = 'new';
    for (;;) {
      if (existing) {
        const keepAs = await freeName(location);
        setUploadStatus('', '');
        choice = await askAboutConflict(location, existing, keepAs);
        if (choice === 'cancel') {
          setUploadStatus('', `Not uploaded; ${location} was left as it was.`);
          return;
        }
        if (choice === 'keep') { location = keepAs; }
      }
      try {
        written = await sendFile(location, file, choice !== 'replace', controller.signal);
        setUploadStatus('ok', `Uploaded ${written.location} (${bytes(written.size)}).`);
        $('location').value = written.location;
        break;
      } catch (err) {
        if (!(err instanceof ApiError) || err.code !== 'FILE_EXISTS') { throw err; }
        // Stored by someone else since the check: ask again, with what is there now.
        existing = (await api.stat(location)) || { size: NaN, modified: new Date(NaN) };
      }
    }
  } catch (err) {
    if (err && err.name === 'AbortError') { setUploadStatus('', 'Upload stopped; nothing was stored.'); }
    else { setUploadStatus('bad', `Upload failed: ${err instanceof ApiError ? err.message : String(err)}`); }
  } finally {
    state.uploading = undefined;
    $('uploading').hidden = true;
    $('submit').disabled = false;
    $('drop').classList.remove('working');
    $('upload').disabled = false;
    $('upload').value = '';
  }
  // Only after the upload has let go, so a file picked while the list reloads is not ignored.
  if (written) { await loadFiles(written.location); }
}

/** One PUT, with the bar and the words under it kept up to date. */
function sendFile(location, file, createOnly, signal) {
  const meter = new RateMeter(5_000);
  const bar = $('upload-progress');
  bar.value = 0;
  bar.max = file.size || 1;
  $('uploading').hidden = false;
  setUploadStatus('', `Uploading ${location} (${bytes(file.size)})…`);
  const onProgress = (loaded, total) => {
    meter.add(loaded);
    bar.max = total || 1;
    bar.value = loaded;
    const pct = total ? Math.floor((loaded / total) * 100) : 0;
    const left = meter.secondsLeft(total);
    const rate = meter.perSecond();
    setUploadStatus(
      '',
      [`Uploading ${location}: ${pct}%`, `${bytes(loaded)} of ${bytes(total)}`, rate ? `${bytes(rate)}/s` : '', left !== undefined ? `${duration(left)} left` : '']
        .filter(Boolean)
        .join(' · '),
    );
  };
  return api.upload(location, file, { createOnly, onProgress, signal });
}

// ---- submission -----------------------------------------------------------------------------

function optionsSummary() {
  const step = Number($('step').value) || 10;
  const offset = Number($('offset').value) || 0;
  const nth = (n) => `${n}${n % 100 >= 11 && n % 100 <= 13 ? 'th' : ['th', 'st', 'nd', 'rd'][n % 10] || 'th'}`;
  const every = step === 1 ? 'every column' : `every ${nth(step)} column`;
  $('options-summary').textContent = `${every} from the ${offset === 0 ? 'first' : nth(offset + 1)}`;
}

async function submit(event) {
  event.preventDefault();
  const form = $('form-error');
  showProblem(form, undefined);
  const file = $('location').value.trim();
  if (!file) {
    showProblem(form, new Error('Choose a file first: upload a CSV, pick a stored file, or type its location.'));
    $('location').focus();
    return;
  }
  const header = $('header').value;
  const body = {
    file,
    step: Number($('step').value || 10),
    offset: Number($('offset').value || 0),
    delimiter: $('delimiter').value,
    header: header === 'auto' ? 'auto' : header === 'true',
  };
  const button = $('submit');
  button.disabled = true;
  button.textContent = 'Submitting…';
  try {
    const job = await api.submit(body);
    remember(job);
    state.follow = job.id;
    select(job.id);
    renderJobs();
    reveal();
    if (state.wake) { state.wake(); }
  } catch (err) {
    showProblem(form, err);
  } finally {
    button.disabled = Boolean(state.uploading);
    button.textContent = 'Sum columns';
  }
}

/** Brings the job panel into view and moves focus to it, so a phone user sees what they asked for. */
function reveal() {
  const panel = $('detail');
  if (panel.hidden) { return; }
  const r = panel.getBoundingClientRect();
  if (r.top < 0 || r.bottom > window.innerHeight) {
    panel.scrollIntoView({ behavior: reducedMotion.matches ? 'auto' : 'smooth', block: 'start' });
  }
  $('detail-title').focus({ preventScroll: true });
}

// ---- jobs -----------------------------------------------------------------------------------

/**
 * Whether `job` is news over `held`: never back from a final state, nor to an older attempt. The
 * submission's answer can arrive after the stream already said the job is running, or done.
 */
function isNewer(job, held) {
  if (!held) { return true; }
  if (FINAL.has(held.status)) { return FINAL.has(job.status); }
  return FINAL.has(job.status) || job.attempts >= held.attempts;
}

/** Keeps a job and its place: newest first by creation, a job seen before keeping its slot among equals. */
function remember(job) {
  if (!isNewer(job, state.jobs.get(job.id))) { return; }
  state.jobs.set(job.id, job);
  if (!state.order.includes(job.id)) { state.order.unshift(job.id); }
  const created = (id) => Date.parse(state.jobs.get(id).createdAt);
  state.order.sort((a, b) => created(b) - created(a));
}

/** Feeds a running job's progress to its meter, for rows/s and the time left. */
function observe(job) {
  if (job.status !== 'running') {
    state.meters.delete(job.id);
    return;
  }
  if (!state.meters.has(job.id)) { state.meters.set(job.id, new RateMeter()); }
  state.meters.get(job.id).add(job.progress.bytesRead, job.progress.rows);
}

function percent(job) {
  if (job.status === 'succeeded') { return 100; }
  const { bytesRead, bytesTotal } = job.progress || {};
  if (!bytesTotal) { return job.status === 'running' ? undefined : 0; }
  return Math.min(100, Math.floor((bytesRead / bytesTotal) * 100));
}

function progressBar(job) {
  const pct = percent(job);
  const bar = el('div', {
    class: `bar ${job.status}${pct === undefined ? ' indeterminate' : ''}`,
    role: 'progressbar',
    'aria-label': `Progress of ${job.file}`,
    'aria-valuemin': 0,
    'aria-valuemax': 100,
    'aria-valuenow': pct,
    'aria-valuetext': progressText(job),
  });
  bar.append(el('span', { class: 'fill', style: `width: ${pct === undefined ? 100 : pct}%` }));
  return bar;
}

/** A running job's progress in words: the percent as soon as the size is known, then rows/s and the time left. */
function runningText(job) {
  const p = job.progress || { bytesRead: 0, bytesTotal: 0, rows: 0 };
  const meter = state.meters.get(job.id);
  const rowRate = meter && meter.perSecond('rows');
  const left = meter && meter.secondsLeft(p.bytesTotal);
  return [
    p.bytesTotal ? `${percent(job)}%` : 'Reading',
    p.bytesTotal ? `${bytes(p.bytesRead)} of ${bytes(p.bytesTotal)}` : p.bytesRead ? bytes(p.bytesRead) : undefined,
    `${number.format(p.rows)} rows`,
    rowRate !== undefined ? `${number.format(Math.round(rowRate))} rows/s` : undefined,
    left !== undefined ? `${duration(left)} left` : undefined,
  ]
    .filter(Boolean)
    .join(' · ');
}

function progressText(job) {
  const p = job.progress || { bytesRead: 0, bytesTotal: 0, rows: 0 };
  switch (job.status) {
    case 'queued':
      return 'Waiting for an executor';
    case 'running':
      return runningText(job);
    case 'succeeded':
      return `${job.result.columns.length} column${job.result.columns.length === 1 ? '' : 's'} over ${number.format(job.result.rows)} rows · ${bytes(p.bytesTotal || p.bytesRead)}${took(job)}`;
    case 'failed':
      return job.error ? WORDS[job.error.code] || job.error.code : 'Failed';
    case 'cancelled':
      return 'Cancelled';
    default:
      return job.status;
  }
}

function took(job) {
  if (!job.startedAt || !job.finishedAt) { return ''; }
  const ms = Date.parse(job.finishedAt) - Date.parse(job.startedAt);
  return ms < 1000 ? ` · ${ms} ms` : ` · ${(ms / 1000).toFixed(1)} s`;
}

function renderJobs() {
  const list = $('jobs');
  $('jobs-empty').hidden = state.order.length > 0;
  const items = state.order.map((id) => {
    const job = state.jobs.get(id);
    const button = el(
      'button',
      { type: 'button', class: 'job', 'aria-current': id === state.selected ? 'true' : undefined, 'data-id': id },
      el(
        'span',
        { class: 'job-line' },
        el('span', { class: `badge ${job.status}`, text: job.status }),
        el('span', { class: 'job-file', text: job.file, title: job.file }),
        el('time', { class: 'job-time muted', datetime: job.createdAt, text: time.format(new Date(job.createdAt)) }),
      ),
      progressBar(job),
      el('span', { class: `job-summary${job.status === 'failed' ? ' bad' : ''}`, text: progressText(job) }),
    );
    button.addEventListener('click', () => {
      select(id);
      renderJobs();
      reveal();
    });
    return el('li', { 'data-status': job.status }, button);
  });
  list.replaceChildren(...items);
  $('jobs-more').hidden = state.olderCursor === undefined;
}

function select(id) {
  if (id !== state.selected) {
    $('copy-status').textContent = '';
    $('copy').textContent = 'Copy as JSON';
  }
  state.selected = id;
  renderDetail();
  if (state.wake) { state.wake(); }
}

function renderDetail() {
  const job = state.jobs.get(state.selected);
  const panel = $('detail');
  panel.hidden = !job;
  if (!job) { return; }
  panel.dataset.status = job.status;
  $('detail-title').textContent =
    job.status === 'succeeded' ? 'Result' : job.status === 'failed' ? 'The job failed' : job.status === 'cancelled' ? 'Cancelled' : 'Working…';
  const opts = job.options || {};
  const bits = [
    job.file,
    `step ${opts.step}, offset ${opts.offset}`,
    opts.delimiter ? `delimiter ${opts.delimiter === '\t' ? 'tab' : opts.delimiter}` : undefined,
    opts.header === false ? 'no header' : undefined,
    `job ${job.id}`,
  ].filter(Boolean);
  $('detail-meta').textContent = bits.join(' · ');
  $('detail-progress').replaceChildren(
    ...(FINAL.has(job.status) ? [] : [progressBar(job), el('p', { class: 'small muted progress-text', text: progressText(job) })]),
  );
  $('cancel').hidden = FINAL.has(job.status);

  const errorBox = $('detail-error');
  if (job.status === 'failed' && job.error) {
    showProblem(errorBox, new ApiError({ detail: job.error.message, code: job.error.code }, 0));
  } else if (job.status === 'cancelled') {
    showProblem(errorBox, new Error('This job was cancelled before it finished.'));
  } else {
    showProblem(errorBox, undefined);
  }

  const wrap = $('result-wrap');
  const done = job.status === 'succeeded' && job.result;
  if (done) {
    const r = job.result;
    $('result-caption').textContent = `${r.columns.length} column${r.columns.length === 1 ? '' : 's'} summed over ${number.format(r.rows)} rows${took(job)}`;
    const cell = (label, cls, text) => el('td', { role: 'cell', class: cls, 'data-label': label, text });
    wrap.querySelector('tbody').replaceChildren(
      ...r.columns.map((c) =>
        el(
          'tr',
          { role: 'row' },
          el('th', { scope: 'row', role: 'rowheader', text: c.name }),
          cell('Index', 'num', String(c.index)),
          cell('Exact sum', 'num sum', c.sum),
          cell('As a double', 'num muted', String(c.value)),
          cell('Cells', 'num', number.format(c.count)),
        ),
      ),
    );
    if (!r.columns.length) { wrap.querySelector('tbody').append(el('tr', {}, el('td', { colspan: 5, class: 'muted', text: 'No column at this offset.' }))); }
  }
  wrap.hidden = !done;
  $('copy').hidden = !done;
  $('download-csv').hidden = !done;

  if (state.follow === job.id && FINAL.has(job.status)) {
    state.follow = undefined;
    // Only if the user is still here: focus somewhere else means they moved on.
    if (document.activeElement === $('detail-title') || document.activeElement === document.body) { reveal(); }
  }
}

function resultFor(job) {
  return { id: job.id, file: job.file, options: job.options, ...job.result };
}

async function copyResult() {
  const job = state.jobs.get(state.selected);
  if (!job || !job.result) { return; }
  const text = JSON.stringify(resultFor(job), null, 2);
  const status = $('copy-status');
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Without the async clipboard (an insecure origin), a selected textarea still copies.
    const area = el('textarea', { class: 'visually-hidden', readonly: true });
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand('copy');
    area.remove();
    if (!ok) {
      status.textContent = `Copying is blocked here; the JSON is at /api/v1/jobs/${job.id}`;
      return;
    }
  }
  status.textContent = 'Copied the result as JSON.';
  $('copy').textContent = 'Copied ✓';
  setTimeout(() => {
    $('copy').textContent = 'Copy as JSON';
    status.textContent = '';
  }, 2000);
}

/** The result as RFC 4180 CSV: one row per summed column. */
function resultCsv(job) {
  const field = (v) => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  const rows = [['column', 'index', 'sum', 'value', 'count'], ...job.result.columns.map((c) => [c.name, c.index, c.sum, c.value, c.count])];
  return rows.map((r) => r.map((v) => field(String(v))).join(',')).join('\r\n') + '\r\n';
}

function downloadCsv() {
  const job = state.jobs.get(state.selected);
  if (!job || !job.result) { return; }
  const stem = job.file.split('/').pop().replace(/\.[^.]*$/, '') || 'result';
  const url = URL.createObjectURL(new Blob([resultCsv(job)], { type: 'text/csv' }));
  const link = el('a', { href: url, download: `${stem}-sums.csv`, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  // The download has its own copy once it started; the object URL only holds memory.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

async function cancelSelected() {
  const id = state.selected;
  if (!id) { return; }
  try {
    remember(await api.cancel(id));
  } catch (err) {
    showProblem($('detail-error'), err);
    return;
  }
  renderJobs();
  renderDetail();
}

// ---- history and the event stream -------------------------------------------------------------

async function refreshList() {
  try {
    const page = await api.jobs({ limit: PAGE });
    state.listed = true;
    if (!state.olderLoaded) {
      // Until older pages are asked for, the list is the first page, plus this page's jobs still in work.
      const keep = new Set(page.jobs.map((j) => j.id));
      state.order = state.order.filter((id) => keep.has(id) || id === state.selected || !FINAL.has(state.jobs.get(id).status));
      state.olderCursor = page.nextCursor;
    }
    for (const job of page.jobs) { remember(job); }
    renderJobs();
    renderDetail();
  } catch {
    $('jobs-updated').textContent = 'the server is not answering; retrying…';
  }
}

async function loadOlder() {
  const button = $('jobs-more');
  if (state.olderCursor === undefined) { return; }
  button.disabled = true;
  try {
    const page = await api.jobs({ limit: PAGE, cursor: state.olderCursor });
    for (const job of page.jobs) { remember(job); }
    state.olderCursor = page.nextCursor;
    state.olderLoaded = true;
    renderJobs();
  } catch (err) {
    $('jobs-updated').textContent = `older jobs could not be loaded: ${err.message}`;
  } finally {
    button.disabled = false;
  }
}

function render() {
  renderJobs();
  renderDetail();
}

/** A job's state changed: a new job (anyone's this user may see) joins the list at its place. */
function onJob(job) {
  remember(job);
  // Rates are measured from the executor's progress reports; a job no longer running has none.
  if (state.jobs.get(job.id).status !== 'running') { state.meters.delete(job.id); }
  render();
}

/** A running job read further: its bar moves and its rate is measured. */
function onProgress({ id, progress }) {
  const job = state.jobs.get(id);
  if (!job || job.status !== 'running') { return; }
  job.progress = progress;
  observe(job);
  render();
}

/** A job recorded and taken back (the queue refused it): it never was. */
function onGone({ id }) {
  state.jobs.delete(id);
  state.order = state.order.filter((i) => i !== id);
  if (state.selected === id) { state.selected = undefined; }
  render();
}

const STREAM_WORDS = { live: 'live', down: 'reconnecting…', absent: 'updates come as jobs finish' };

function onStreamState(s) {
  state.stream = s;
  $('jobs-updated').textContent = STREAM_WORDS[s];
  if (s !== 'live') { $('counts').classList.add('offline'); }
  // Read after the stream listens, so no change falls between the two; a resumed stream says what it missed.
  if (s === 'live' && !state.listed) { void refreshList(); }
  if (s === 'absent' && !state.listed) { void refreshList(); }
  if (s !== 'live') { void waitOnJobs(); }
  if (state.wake) { state.wake(); }
}

/**
 * Without the stream (reconnecting, or a server without one), the job on show is waited on: each
 * request answers as soon as the job is final (`?wait=`), so nothing is asked again and again.
 */
async function waitOnJobs() {
  if (state.waiting) { return; }
  state.waiting = true;
  try {
    while (state.stream !== 'live') {
      const id = [state.follow, state.selected].find((i) => i && state.jobs.has(i) && !FINAL.has(state.jobs.get(i).status));
      if (!id) {
        await new Promise((resolve) => (state.wake = resolve));
        state.wake = undefined;
        continue;
      }
      try {
        onJob(await api.job(id, 25));
        await refreshCounts();
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
    }
  } finally {
    state.waiting = false;
  }
}

// ---- wiring ---------------------------------------------------------------------------------

$('job-form').addEventListener('submit', submit);
$('upload').addEventListener('change', () => {
  const file = $('upload').files && $('upload').files[0];
  if (file) { void upload(file); }
});
$('upload-stop').addEventListener('click', () => {
  if (state.uploading) { state.uploading.abort(); }
});
$('stored').addEventListener('change', () => {
  if ($('stored').value) { $('location').value = $('stored').value; }
  showProblem($('form-error'), undefined);
  setUploadStatus('', '');
});
$('location').addEventListener('input', () => showProblem($('form-error'), undefined));
$('refresh-files').addEventListener('click', () => void loadFiles());
$('copy').addEventListener('click', () => void copyResult());
$('download-csv').addEventListener('click', downloadCsv);
$('cancel').addEventListener('click', () => void cancelSelected());
$('jobs-more').addEventListener('click', () => void loadOlder());
for (const id of ['step', 'offset']) { $(id).addEventListener('input', optionsSummary); }

const drop = $('drop');
for (const type of ['dragenter', 'dragover']) {
  drop.addEventListener(type, (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
}
for (const type of ['dragleave', 'drop']) { drop.addEventListener(type, () => drop.classList.remove('over')); }
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  const file = e.dataTransfer && e.dataTransfer.files[0];
  if (file) { void upload(file); }
});
optionsSummary();
void loadFiles();
events({ job: onJob, progress: onProgress, gone: onGone, active: showCounts, reset: () => void refreshList(), state: onStreamState });
