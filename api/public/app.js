// decisum's web page: plain browser JavaScript, no build step, talking to the same JSON API as everyone else.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const FINAL = new Set(['succeeded', 'failed', 'cancelled']);
  const UPLOAD_FOLDER = 'uploads';
  const LIST_LIMIT = 20;

  const WORDS = {
    NON_NUMERIC: 'A cell in a summed column is not a number',
    RAGGED_ROW: 'A row has a different number of fields than the header',
    UNTERMINATED_QUOTE: 'A quoted field is never closed',
    NOT_TEXT: 'The file is not text',
    EMPTY_FILE: 'The file is empty',
    LINE_TOO_LONG: 'A line is too long',
    FILE_NOT_FOUND: 'The file does not exist',
    FILE_ACCESS_DENIED: 'Storage refused access to the file',
    BUCKET_NOT_FOUND: 'The bucket does not exist',
    S3_CREDENTIALS_MISSING: 'The server has no S3 credentials',
    S3_CREDENTIALS_INVALID: 'S3 refused the server\'s credentials',
    S3_WRONG_REGION: 'The bucket is in another S3 region',
    FILE_CHANGED: 'The file changed while it was being read',
    PATH_OUTSIDE_DATA_DIR: 'The path leaves the data folder',
    STORAGE_UNAVAILABLE: 'Storage could not be reached',
    BROKER_UNAVAILABLE: 'The job queue could not be reached',
    STORE_UNAVAILABLE: 'The job store could not be reached',
    DELIVERY_LIMIT: 'The job kept failing and was given up',
    CANCELLED: 'The job was cancelled',
    VALIDATION: 'The request is not valid',
    IDEMPOTENCY_KEY_REUSED: 'This request repeats an earlier key with different content',
    JOB_NOT_FOUND: 'No such job',
    JOB_FINISHED: 'The job has already finished',
    INTERNAL: 'Something went wrong on the server',
  };

  const state = {
    jobs: new Map(), // id → job
    order: [], // ids, newest first
    selected: undefined,
    uploading: false,
    listTimer: undefined,
    jobTimer: undefined,
  };

  const number = new Intl.NumberFormat();
  const time = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  const day = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

  function bytes(n) {
    if (!Number.isFinite(n)) { return ''; }
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let i = 0;
    let v = n;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i += 1;
    }
    return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
  }

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

  /** An error from the API, carrying its problem+json body. */
  class ApiError extends Error {
    constructor(problem, status) {
      super(problem.detail || problem.title || `HTTP ${status}`);
      this.problem = problem;
      this.status = status;
    }
  }

  async function api(path, init = {}) {
    let res;
    try {
      res = await fetch(path, { ...init, headers: { Accept: 'application/json', ...(init.headers || {}) } });
    } catch {
      throw new ApiError({ code: 'UNREACHABLE', detail: 'The server could not be reached. Is decisum running?' }, 0);
    }
    const type = res.headers.get('content-type') || '';
    const body = type.includes('json') ? await res.json().catch(() => ({})) : await res.text();
    if (!res.ok) { throw new ApiError(typeof body === 'object' ? body : { detail: String(body).slice(0, 200) }, res.status); }
    return body;
  }

  /** A problem in words: what kind of problem, then the server's own detail. */
  function problemText(err) {
    const p = err instanceof ApiError ? err.problem : { detail: String(err && err.message ? err.message : err) };
    const kind = WORDS[p.code];
    const detail = p.detail || '';
    return kind && detail ? `${kind}: ${detail}` : kind || detail || 'Something went wrong.';
  }

  function showAlert(node, text) {
    node.textContent = text;
    node.hidden = !text;
  }

  // ---- counts ---------------------------------------------------------------------------------

  async function refreshCounts() {
    try {
      const c = await api('/api/v1/jobs/active');
      $('count-active').textContent = number.format(c.active);
      $('count-queued').textContent = number.format(c.queued);
      $('count-running').textContent = number.format(c.running);
      $('counts').classList.toggle('busy', c.active > 0);
      $('counts').classList.remove('offline');
    } catch {
      $('counts').classList.add('offline');
    }
  }

  // ---- files ----------------------------------------------------------------------------------

  async function loadFiles(select) {
    const list = $('stored');
    const keep = select || list.value;
    try {
      const listing = await api('/api/v1/files/local/');
      const entries = [...listing.entries].sort((a, b) => a.path.localeCompare(b.path));
      list.replaceChildren(
        el('option', { value: '', text: entries.length ? `Choose one of ${entries.length} stored file${entries.length === 1 ? '' : 's'}…` : 'No files stored yet' }),
        ...entries.map((e) =>
          el('option', { value: e.location, text: `${e.path}  ·  ${bytes(e.size)}  ·  ${day.format(new Date(e.modified))}` }),
        ),
      );
      if (keep && entries.some((e) => e.location === keep)) { list.value = keep; }
    } catch (err) {
      list.replaceChildren(el('option', { value: '', text: `Listing unavailable — ${problemText(err)}` }));
    }
  }

  async function upload(file) {
    const status = $('upload-status');
    const name = file.name.replace(/[\\/]/g, '_');
    state.uploading = true;
    $('submit').disabled = true;
    $('drop').classList.add('working');
    status.className = 'upload-status';
    status.textContent = `Uploading ${name} (${bytes(file.size)})…`;
    try {
      // The File goes as the body: the browser streams it from disk, the server streams it to storage.
      const written = await api(`/api/v1/files/local/${UPLOAD_FOLDER}/${encodeURIComponent(name)}`, {
        method: 'PUT',
        headers: { 'Content-Type': file.type || 'text/csv' },
        body: file,
      });
      status.className = 'upload-status ok';
      status.textContent = `Uploaded ${written.location} (${bytes(written.size)}).`;
      $('location').value = written.location;
      showAlert($('form-error'), '');
      await loadFiles(written.location);
    } catch (err) {
      status.className = 'upload-status bad';
      status.textContent = `Upload failed. ${problemText(err)}`;
    } finally {
      state.uploading = false;
      $('submit').disabled = false;
      $('drop').classList.remove('working');
      $('upload').value = '';
    }
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
    showAlert(form, '');
    const file = $('location').value.trim();
    if (!file) {
      showAlert(form, 'Choose a file first: upload a CSV, pick a stored file, or type its location.');
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
      const job = await api('/api/v1/jobs', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      remember(job, true);
      select(job.id);
      renderJobs();
      scheduleJobs(0);
      void refreshCounts();
    } catch (err) {
      showAlert(form, problemText(err));
    } finally {
      button.disabled = state.uploading;
      button.textContent = 'Sum columns';
    }
  }

  // ---- jobs -----------------------------------------------------------------------------------

  function remember(job, newest) {
    state.jobs.set(job.id, job);
    if (!state.order.includes(job.id)) {
      if (newest) { state.order.unshift(job.id); }
      else { state.order.push(job.id); }
    }
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

  function progressText(job) {
    const p = job.progress || { bytesRead: 0, bytesTotal: 0, rows: 0 };
    switch (job.status) {
      case 'queued':
        return 'Waiting for an executor';
      case 'running':
        return p.bytesTotal
          ? `${percent(job)}% · ${bytes(p.bytesRead)} of ${bytes(p.bytesTotal)} · ${number.format(p.rows)} rows`
          : `Reading · ${number.format(p.rows)} rows`;
      case 'succeeded':
        return `${job.result.columns.length} column${job.result.columns.length === 1 ? '' : 's'} over ${number.format(job.result.rows)} rows · ${bytes(p.bytesTotal || p.bytesRead)}${duration(job)}`;
      case 'failed':
        return job.error ? WORDS[job.error.code] || job.error.code : 'Failed';
      case 'cancelled':
        return 'Cancelled';
      default:
        return job.status;
    }
  }

  function duration(job) {
    if (!job.startedAt || !job.finishedAt) { return ''; }
    const ms = Date.parse(job.finishedAt) - Date.parse(job.startedAt);
    return ms < 1000 ? ` · ${ms} ms` : ` · ${(ms / 1000).toFixed(1)} s`;
  }

  function renderJobs() {
    const list = $('jobs');
    $('jobs-empty').hidden = state.order.length > 0;
    const items = state.order.slice(0, LIST_LIMIT).map((id) => {
      const job = state.jobs.get(id);
      const selected = id === state.selected;
      const button = el(
        'button',
        { type: 'button', class: 'job', 'aria-current': selected ? 'true' : undefined, 'data-id': id },
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
      });
      return el('li', { 'data-status': job.status }, button);
    });
    list.replaceChildren(...items);
  }

  function select(id) {
    if (id !== state.selected) {
      $('copy-status').textContent = '';
      $('copy').textContent = 'Copy as JSON';
    }
    state.selected = id;
    renderDetail();
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
      ...(FINAL.has(job.status) ? [] : [progressBar(job), el('p', { class: 'small muted', text: progressText(job) })]),
    );
    $('cancel').hidden = FINAL.has(job.status);

    const errorBox = $('detail-error');
    if (job.status === 'failed' && job.error) {
      const e = job.error;
      const where = [e.row !== undefined ? `row ${number.format(e.row)}` : '', e.column !== undefined ? `column “${e.column}”` : '']
        .filter(Boolean)
        .join(', ');
      errorBox.replaceChildren(
        el('strong', { text: `${WORDS[e.code] || 'The job failed'}${where ? ` — ${where}` : ''}.` }),
        el('span', { class: 'error-message', text: e.message }),
        el('span', { class: 'small muted', text: `code ${e.code}` }),
      );
      errorBox.hidden = false;
    } else if (job.status === 'cancelled') {
      errorBox.replaceChildren(el('strong', { text: 'This job was cancelled before it finished.' }));
      errorBox.hidden = false;
    } else {
      errorBox.hidden = true;
    }

    const wrap = $('result-wrap');
    const copy = $('copy');
    if (job.status === 'succeeded' && job.result) {
      const r = job.result;
      $('result-caption').textContent = `${r.columns.length} column${r.columns.length === 1 ? '' : 's'} summed over ${number.format(r.rows)} rows${duration(job)}`;
      wrap.querySelector('tbody').replaceChildren(
        ...r.columns.map((c) =>
          el(
            'tr',
            {},
            el('th', { scope: 'row', text: c.name }),
            el('td', { class: 'num', text: String(c.index) }),
            el('td', { class: 'num sum', text: c.sum }),
            el('td', { class: 'num muted', text: String(c.value) }),
            el('td', { class: 'num', text: number.format(c.count) }),
          ),
        ),
      );
      if (!r.columns.length) { wrap.querySelector('tbody').append(el('tr', {}, el('td', { colspan: 5, class: 'muted', text: 'No column at this offset.' }))); }
      wrap.hidden = false;
      copy.hidden = false;
    } else {
      wrap.hidden = true;
      copy.hidden = true;
    }
  }

  async function copyResult() {
    const job = state.jobs.get(state.selected);
    if (!job || !job.result) { return; }
    const text = JSON.stringify({ id: job.id, file: job.file, options: job.options, ...job.result }, null, 2);
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
        status.textContent = 'Copying is blocked here; the JSON is at ' + `/api/v1/jobs/${job.id}`;
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

  async function cancelSelected() {
    const id = state.selected;
    if (!id) { return; }
    try {
      remember(await api(`/api/v1/jobs/${encodeURIComponent(id)}`, { method: 'DELETE' }));
    } catch (err) {
      showAlert($('detail-error'), problemText(err));
    }
    renderJobs();
    renderDetail();
  }

  // ---- polling --------------------------------------------------------------------------------

  async function refreshList() {
    try {
      const page = await api(`/api/v1/jobs?limit=${LIST_LIMIT}`);
      const ids = page.jobs.map((j) => j.id);
      // Jobs this page submitted stay listed even when other clients push them off the first page.
      const mine = state.order.filter((id) => !ids.includes(id) && !FINAL.has(state.jobs.get(id).status));
      for (const job of page.jobs) { state.jobs.set(job.id, job); }
      state.order = [...ids, ...mine];
      $('jobs-updated').textContent = `updated ${time.format(new Date())}`;
      renderJobs();
      renderDetail();
    } catch {
      $('jobs-updated').textContent = 'the server is not answering; retrying…';
    }
  }

  /** Jobs still in work are fetched one by one, faster than the list, so their bars move smoothly. */
  async function refreshActiveJobs() {
    const open = state.order.filter((id) => !FINAL.has(state.jobs.get(id).status)).slice(0, LIST_LIMIT);
    if (!open.length) { return false; }
    const jobs = await Promise.all(open.map((id) => api(`/api/v1/jobs/${encodeURIComponent(id)}`).catch(() => undefined)));
    for (const job of jobs) { if (job) { state.jobs.set(job.id, job); } }
    renderJobs();
    renderDetail();
    return true;
  }

  function scheduleList(delay) {
    clearTimeout(state.listTimer);
    state.listTimer = setTimeout(async () => {
      if (!document.hidden) { await Promise.all([refreshList(), refreshCounts()]); }
      scheduleList(2000);
    }, delay);
  }

  function scheduleJobs(delay) {
    clearTimeout(state.jobTimer);
    state.jobTimer = setTimeout(async () => {
      const busy = document.hidden ? true : await refreshActiveJobs();
      if (busy) { void refreshCounts(); }
      scheduleJobs(busy ? 400 : 1500);
    }, delay);
  }

  // ---- wiring ---------------------------------------------------------------------------------

  $('job-form').addEventListener('submit', submit);
  $('upload').addEventListener('change', () => {
    const file = $('upload').files && $('upload').files[0];
    if (file) { void upload(file); }
  });
  $('stored').addEventListener('change', () => {
    if ($('stored').value) { $('location').value = $('stored').value; }
    showAlert($('form-error'), '');
    $('upload-status').textContent = '';
  });
  $('location').addEventListener('input', () => showAlert($('form-error'), ''));
  $('refresh-files').addEventListener('click', () => void loadFiles());
  $('copy').addEventListener('click', () => void copyResult());
  $('cancel').addEventListener('click', () => void cancelSelected());
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
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) {
      scheduleList(0);
      scheduleJobs(0);
    }
  });

  optionsSummary();
  void loadFiles();
  scheduleList(0);
  scheduleJobs(300);
})();
