// The admin UI: plain ES module, no framework, no CDN. It talks to the same
// REST API as curl does (the token stays in this tab's sessionStorage), and
// polls a running backup's job for its progress.
const TOKEN_KEY = 'chango-admin-token';
const API = '/admin/api';
const POLL_MS = 500;
const REFRESH_MS = 5000;
/** Backups per page of the objects table (the api pages newest first; the cursor is the last key shown). */
const OBJECTS_PAGE = 20;
/** Share of the bar each phase fills: the upload (the archive is made as it goes out) is most of a backup. */
const PHASES = { queued: [0, 0], checkpoint: [0, 25], upload: [25, 95], commit: [95, 99], done: [100, 100], verify: [0, 100] };

const $ = (id) => document.getElementById(id);
let role = 'viewer';
let refreshTimer;
/** Cursors of the objects pages from the newest to the one shown (the newest page has none). */
let objectCursors = [undefined];
let objectsNext = null;
/** The second copy as the api last answered it (never with a secret: an S3 copy says only secretKeySet). */
let loadedCopy = null;
/** `lastCopy` of the last status read: per copy target, its last committed and last failed copy. */
let copyTargets = [];

async function api(method, path, body) {
  const headers = { authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) ?? ''}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path.startsWith('/') ? path : `${API}/${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let parsed = null;
  try {
    parsed = await response.json();
  } catch {
    parsed = null;
  }
  if (response.status === 401 && path !== 'whoami') signOut('Your token is no longer accepted: sign in again.');
  return { status: response.status, body: parsed };
}

const text = (el, value) => {
  el.textContent = value ?? '';
};
const bytes = (n) => (n == null ? '' : n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`);
const when = (iso) => (iso ? new Date(iso).toLocaleString() : '');

// --- sign in / out -------------------------------------------------------

async function signIn(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  const me = await api('GET', 'whoami');
  if (me.status !== 200) {
    sessionStorage.removeItem(TOKEN_KEY);
    return me.body?.message ?? `sign-in failed (${me.status})`;
  }
  role = me.body.role;
  text($('whoami'), `${me.body.name} (${me.body.role})`);
  const viewer = role !== 'admin';
  $('viewer-note').hidden = !viewer;
  $('run').disabled = viewer;
  $('save').disabled = viewer;
  for (const input of $('dest-form').querySelectorAll('input, select')) input.disabled = viewer;
  $('signin').hidden = true;
  $('shell').hidden = false;
  await Promise.all([loadConfig(), refresh()]);
  clearInterval(refreshTimer);
  // A slow round (a worker that does not answer takes CHANGO_WORKER_ANSWER_MS) is not stacked on by the next tick.
  refreshTimer = setInterval(() => refreshesUnderWay === 0 && refresh(), REFRESH_MS);
  $('run').disabled ? $('dest-title').focus?.() : $('run').focus();
  return null;
}

function signOut(message = '') {
  sessionStorage.removeItem(TOKEN_KEY);
  clearInterval(refreshTimer);
  $('shell').hidden = true;
  $('signin').hidden = false;
  text($('signin-error'), message);
  $('token').value = '';
  $('token').focus();
}

/** A drill's verdict in words: restored, only its stored bytes checked (encrypted, no identity on the worker), or failed. */
const drillWords = (verify) => (!verify.ok ? 'FAILED' : verify.kind === 'checksum' ? 'bytes checked (encrypted: not restored)' : 'restored');

// --- destination form ----------------------------------------------------

async function loadConfig() {
  const { status, body } = await api('GET', 'backup/config');
  if (status !== 200) {
    text($('secret-hint'), 'no secret key stored yet');
    fillCopy($('dest-form'), null);
    return;
  }
  const form = $('dest-form');
  for (const name of ['endpoint', 'region', 'bucket', 'prefix', 'accessKey', 'timezone', 'sse', 'sseKmsKeyId']) form.elements[name].value = body[name] ?? '';
  form.elements.schedule.value = body.schedule ?? '';
  form.elements.keepLast.value = body.retention?.keepLast ?? '';
  form.elements.maxAgeDays.value = body.retention?.maxAgeDays ?? '';
  form.elements.keepAll.checked = body.retention?.keepAll === true;
  form.elements.recipients.value = (body.encryption?.recipients ?? []).join('\n');
  form.elements.objectLockMode.value = body.objectLock?.mode ?? '';
  form.elements.objectLockDays.value = body.objectLock?.days ?? '';
  form.elements.secretKey.value = '';
  form.elements.secretKey.placeholder = body.secretKeySet ? 'set (leave empty to keep it)' : '';
  text($('secret-hint'), body.secretKeySet ? 'A secret key is set; it is never shown.' : '');
  fillCopy(form, body.copy ?? null);
}

/** The second copy's part of the form, from the stored copy (null: none). Its secret key box is always left empty. */
function fillCopy(form, copy) {
  loadedCopy = copy;
  const field = (name) => form.elements[`copy.${name}`];
  const s3 = copy?.type === 's3' ? copy : null;
  field('type').value = copy?.type ?? '';
  for (const name of ['endpoint', 'region', 'bucket', 'prefix', 'accessKey']) field(name).value = s3?.[name] ?? '';
  field('sse').value = s3?.sse ?? 'AES256';
  field('sseKmsKeyId').value = s3?.sseKmsKeyId ?? '';
  field('objectLock.mode').value = s3?.objectLock?.mode ?? '';
  field('objectLock.days').value = s3?.objectLock?.days ?? '';
  field('path').value = copy?.type === 'directory' ? copy.path : '';
  field('retention.keepLast').value = copy?.retention?.keepLast ?? '';
  field('retention.maxAgeDays').value = copy?.retention?.maxAgeDays ?? '';
  field('retention.keepAll').checked = copy?.retention?.keepAll === true;
  field('secretKey').value = '';
  const secretSet = s3?.secretKeySet === true;
  field('secretKey').placeholder = secretSet ? 'set (leave empty to keep it)' : '';
  text($('copy-secret-hint'), secretSet ? 'A secret key is set for this copy; it is never shown.' : 'No secret key is stored for an S3 copy yet: enter one.');
  showCopyFields(form);
  showCopyStatus();
}

/** Only the fields of the chosen kind of copy are shown (and sent). */
function showCopyFields(form) {
  const type = form.elements['copy.type'].value;
  $('copy-s3').hidden = type !== 's3';
  $('copy-directory').hidden = type !== 'directory';
  $('copy-retention').hidden = type === '';
}

/** A copy target as status and metrics name it: `<endpoint>/<bucket>/<prefix>` or `file://<path>` (copyDestinationLabel in the contracts). */
const copyLabel = (copy) => (copy.type === 'directory' ? `file://${copy.path}` : `${copy.endpoint.replace(/\/$/, '')}/${copy.bucket}/${copy.prefix}`);

/** The form control an api field error belongs to, where its name differs from the field's. */
const INPUT_FOR_FIELD = {
  objectLock: 'objectLockMode',
  'objectLock.mode': 'objectLockMode',
  'objectLock.days': 'objectLockDays',
  'encryption.recipients': 'recipients',
  // The second copy's controls are named by their api field (copy.bucket, copy.retention.keepLast, …); these are the exceptions.
  copy: 'copy.type',
  'copy.objectLock': 'copy.objectLock.mode',
};

/** A number field: a whole number is sent as one; anything else as typed, so the api names the field. */
const numberOrText = (value) => (/^\d+$/.test(value) ? Number(value) : value);

function formBody(form) {
  const v = (name) => form.elements[name].value.trim();
  const body = { endpoint: v('endpoint'), region: v('region'), bucket: v('bucket'), prefix: v('prefix'), accessKey: v('accessKey'), sse: v('sse') };
  if (v('secretKey')) body.secretKey = form.elements.secretKey.value;
  // A key id typed while another mode is chosen is sent as it is: the api says it goes with aws:kms only.
  body.sseKmsKeyId = v('sseKmsKeyId') || null;
  body.schedule = v('schedule') || null;
  if (v('timezone')) body.timezone = v('timezone');
  const retention = {};
  if (v('keepLast')) retention.keepLast = numberOrText(v('keepLast'));
  if (v('maxAgeDays')) retention.maxAgeDays = numberOrText(v('maxAgeDays'));
  if (form.elements.keepAll.checked) retention.keepAll = true;
  body.retention = Object.keys(retention).length ? retention : null;
  const recipients = recipientLines(form);
  body.encryption = recipients.length ? { recipients } : null;
  // Off is null; days without a mode are sent as they are, so the api says the mode is missing.
  const lockMode = v('objectLockMode');
  const lockDays = v('objectLockDays');
  body.objectLock = lockMode || lockDays ? { mode: lockMode || undefined, days: lockDays ? numberOrText(lockDays) : undefined } : null;
  body.copy = copyBody(form);
  return body;
}

/** The second copy as the api takes it: null for none, else the fields of its type only. An empty secret key box is left out: the stored one is kept. */
function copyBody(form) {
  const field = (name) => form.elements[`copy.${name}`];
  const v = (name) => field(name).value.trim();
  const type = v('type');
  if (!type) return null;
  const retention = {};
  if (v('retention.keepLast')) retention.keepLast = numberOrText(v('retention.keepLast'));
  if (v('retention.maxAgeDays')) retention.maxAgeDays = numberOrText(v('retention.maxAgeDays'));
  if (field('retention.keepAll').checked) retention.keepAll = true;
  const kept = Object.keys(retention).length ? retention : null;
  if (type === 'directory') return { type, path: v('path'), retention: kept };
  const copy = { type, endpoint: v('endpoint'), region: v('region'), bucket: v('bucket'), prefix: v('prefix'), accessKey: v('accessKey'), sse: v('sse'), retention: kept };
  if (v('secretKey')) copy.secretKey = field('secretKey').value;
  copy.sseKmsKeyId = v('sseKmsKeyId') || null;
  // Addressing has no box here: an S3 copy keeps the style stored (set through the api), path by default.
  if (loadedCopy?.type === 's3' && loadedCopy.addressing) copy.addressing = loadedCopy.addressing;
  const lockMode = v('objectLock.mode');
  const lockDays = v('objectLock.days');
  copy.objectLock = lockMode || lockDays ? { mode: lockMode || undefined, days: lockDays ? numberOrText(lockDays) : undefined } : null;
  return copy;
}

/** The recipients box, one per line. */
const recipientLines = (form) => form.elements.recipients.value.split('\n').map((line) => line.trim()).filter(Boolean);

/** An age identity pasted where a recipient belongs: it must never leave the page (it opens every encrypted backup). */
const IDENTITY_LINE = /AGE-SECRET-KEY-/i;

function clearFieldErrors(form) {
  for (const el of form.querySelectorAll('[data-error-for]')) text(el, '');
  for (const input of form.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
  text($('dest-error'), '');
  text($('dest-saved'), '');
}

async function saveDestination(event) {
  event.preventDefault();
  const form = $('dest-form');
  clearFieldErrors(form);
  if (recipientLines(form).some((line) => IDENTITY_LINE.test(line))) {
    // Refused here, before any request: the api must never see the identity.
    form.elements.recipients.value = recipientLines(form).filter((line) => !IDENTITY_LINE.test(line)).join('\n');
    text(form.querySelector('[data-error-for="encryption.recipients"]'), 'That was an identity (AGE-SECRET-KEY-…), the key that opens the backups: it was removed and not sent. Paste its public key instead (age-keygen -y key.txt prints it), and keep the identity offline.');
    form.elements.recipients.setAttribute('aria-invalid', 'true');
    form.elements.recipients.focus();
    return;
  }
  const { status, body } = await api('PUT', 'backup/config', formBody(form));
  if (status === 200) {
    // The secrets leave the page at once: the form shows only that one is set.
    form.elements.secretKey.value = '';
    form.elements['copy.secretKey'].value = '';
    await Promise.all([loadConfig(), refresh()]);
    text($('dest-saved'), 'Saved.');
    return;
  }
  const unplaced = [];
  for (const { field: named, message } of body?.fields ?? []) {
    // One slot for the whole recipients box: encryption.recipients.2 is its third line.
    const field = named.replace(/^(encryption\.recipients)\.\d+$/, '$1');
    const slot = form.querySelector(`[data-error-for="${CSS.escape(field)}"]`);
    if (!slot) {
      unplaced.push(`${field} ${message}`);
      continue;
    }
    text(slot, message);
    const input = form.elements[INPUT_FOR_FIELD[field] ?? field.replace(/^retention\./, '')];
    if (input) input.setAttribute('aria-invalid', 'true');
  }
  text($('dest-error'), unplaced.length ? unplaced.join('; ') : body?.fields?.length ? 'Some fields need fixing (see above).' : (body?.message ?? `saving failed (${status})`));
  form.querySelector('[aria-invalid="true"]')?.focus();
}

// --- backup now ----------------------------------------------------------

function showProgress(progress) {
  const phase = progress?.phase ?? 'queued';
  const [from, to] = PHASES[phase] ?? [0, 0];
  const share = progress?.bytesExpected ? Math.min(1, progress.bytesDone / progress.bytesExpected) : 0;
  $('progress-bar').value = Math.round(from + (to - from) * share);
  text($('progress-phase'), phase);
  text($('progress-bytes'), progress?.bytesExpected ? `${bytes(progress.bytesDone)} of ${bytes(progress.bytesExpected)}` : '');
}

/** What the retention pass after a backup did, in words: deleted, and kept because S3 Object Lock still holds them. */
function retentionWords(result) {
  const deleted = result?.retentionDeleted?.length ?? 0;
  const locked = result?.retentionKeptLocked ?? 0;
  const words = [`${deleted} old backup${deleted === 1 ? '' : 's'} deleted`];
  if (locked > 0) words.push(`${locked} kept: Object Lock still holds ${locked === 1 ? 'it' : 'them'}`);
  return words.join(', ');
}

async function runBackup() {
  $('run').disabled = true;
  $('run-result').hidden = true;
  text($('run-error'), '');
  $('progress').hidden = false;
  showProgress(null);
  try {
    const started = await api('POST', 'backup/run?wait=false');
    if (started.status !== 202 && started.status !== 200) {
      text($('run-error'), started.body?.message ?? `the backup could not start (${started.status})`);
      return;
    }
    for (;;) {
      const job = await api('GET', started.body.statusUrl);
      if (job.status !== 200) throw new Error(job.body?.message ?? `job lookup failed (${job.status})`);
      showProgress(job.body.progress);
      if (job.body.state === 'completed') {
        showProgress({ phase: 'done' });
        text($('result-key'), job.body.result?.key ?? '');
        text($('result-sha256'), job.body.result?.sha256 ?? '');
        text($('result-retention'), retentionWords(job.body.result));
        $('run-result').hidden = false;
        break;
      }
      if (job.body.state === 'failed') {
        text($('run-error'), `The backup failed: ${job.body.failure?.message ?? 'no reason given'}`);
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } catch (err) {
    text($('run-error'), err.message);
  } finally {
    $('run').disabled = role !== 'admin';
    await refresh();
  }
}

// --- status and history ---------------------------------------------------

function row(cells) {
  const tr = document.createElement('tr');
  for (const cell of cells) {
    const td = document.createElement('td');
    text(td, cell.value);
    if (cell.className) td.className = cell.className;
    tr.append(td);
  }
  return tr;
}

/** Where a copy job put its copy: the file's path in a directory, the object's URL at an S3 target. */
function copyWhere(result) {
  if (result.destination.startsWith('file://')) return result.key;
  // The label ends with the target's prefix, and the key is that prefix and the archive's name.
  return `${result.destination}${result.key.slice(result.key.lastIndexOf('/') + 1)}`;
}

/** The Key column: a copy job shows the backup it copied and, once done, where the copy is. */
function jobKey(job) {
  if (job.kind !== 'copy') return job.result?.key ?? job.key ?? '';
  return job.result && !job.result.skipped ? `${job.key} → ${copyWhere(job.result)}` : (job.key ?? '');
}

/** Shown beside the backups (from the status, and the copy configured: the two are read apart). */
function showCopyStatus() {
  $('copy-status').replaceChildren(...copyStatusItems(copyTargets));
}

/** One line per copy target: its newest outcome first (committed, or FAILED with the reason), then the other. */
function copyStatusItems(targets) {
  if (targets.length === 0 && loadedCopy) {
    return [listItem(`Second copy to ${copyLabel(loadedCopy)}: none made yet (one follows each backup).`, 'muted')];
  }
  return targets.map(({ destination, lastSuccess: ok, lastFailure: failed }) => {
    const failing = failed && (!ok || Date.parse(failed.finishedAt) > Date.parse(ok.finishedAt));
    if (failing) {
      const before = ok ? ` · last copy committed ${when(ok.finishedAt)}` : ' · no copy committed there yet';
      return listItem(`Second copy to ${destination}: FAILED ${when(failed.finishedAt)} (backup ${failed.key}): ${failed.error ?? 'no reason given'}${before}`, 'copy-failed');
    }
    if (!ok) return listItem(`Second copy to ${destination}: none made yet (one follows each backup).`, 'muted');
    const since = failed ? ` · last failure ${when(failed.finishedAt)}` : '';
    return listItem(`Second copy to ${destination}: last copy committed ${when(ok.finishedAt)}: ${ok.copyKey}${since}`, 'copy-ok');
  });
}

function listItem(words, className) {
  const li = document.createElement('li');
  text(li, words);
  li.className = className;
  return li;
}

function objectsPath() {
  const cursor = objectCursors.at(-1);
  return `backup/objects?limit=${OBJECTS_PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
}

/** Bumped by every refresh: the answers of an older one that arrive late (the timer's, overtaken by a click) are dropped. */
let refreshSeq = 0;
let refreshesUnderWay = 0;

async function refresh() {
  const seq = ++refreshSeq;
  refreshesUnderWay += 1;
  let answers;
  try {
    answers = await Promise.all([api('GET', 'backup/status'), api('GET', 'backup/jobs?limit=20'), api('GET', objectsPath())]);
  } finally {
    refreshesUnderWay -= 1;
  }
  if (seq !== refreshSeq) return;
  const [status, jobs, objects] = answers;
  if (status.status === 200) {
    const s = status.body;
    const parts = [s.leader ? `Leader: ${s.leader.nodeId}` : 'No leader: no worker can run backups', s.schedule ? `next scheduled run ${when(s.schedule.nextRunAt)} (${s.schedule.cron}, ${s.schedule.timezone})` : 'no schedule'];
    if (s.lastSuccess) parts.push(`last success ${when(s.lastSuccess.finishedAt)}`);
    if (s.lastFailure) parts.push(`last failure ${when(s.lastFailure.finishedAt)}`);
    if (s.lastVerify) parts.push(`last drill ${drillWords(s.lastVerify)} ${when(s.lastVerify.verifiedAt)}`);
    text($('status-line'), parts.join(' · '));
    const d = s.destination;
    text(
      $('objects-summary'),
      d ? `${d.committed} backup${d.committed === 1 ? '' : 's'} (${bytes(d.bytes)}${d.archives > d.committed ? `, ${d.archives - d.committed} incomplete` : ''}), counted ${when(d.countedAt)} · Retention: ${d.retention.words}` : 'Not counted yet: the count is made as backups run.',
    );
    copyTargets = s.lastCopy ?? [];
    showCopyStatus();
  }
  if (jobs.status === 200) {
    $('jobs').tBodies[0].replaceChildren(
      ...jobs.body.jobs.map((job) =>
        row([
          { value: when(job.startedAt ?? job.createdAt) },
          { value: job.kind },
          { value: job.trigger },
          { value: job.result?.skipped ? 'skipped' : job.state, className: `state-${job.state}` },
          { value: jobKey(job) },
          { value: job.result?.sha256 ?? '', className: 'mono' },
          { value: job.result?.durationMs != null ? `${(job.result.durationMs / 1000).toFixed(1)} s` : '' },
        ]),
      ),
    );
  }
  text($('objects-error'), objects.status === 200 || objects.status === 404 ? '' : (objects.body?.message ?? ''));
  objectsNext = objects.status === 200 ? objects.body.nextCursor : null;
  $('objects-older').disabled = !objectsNext;
  $('objects-newer').disabled = objectCursors.length === 1;
  text($('objects-page'), `page ${objectCursors.length}`);
  $('objects').tBodies[0].replaceChildren(
    ...(objects.status === 200 ? objects.body.objects : []).map((o) =>
      row([
        { value: o.key },
        { value: bytes(o.size) },
        { value: when(o.lastModified) },
        { value: o.complete ? 'complete' : 'INCOMPLETE' },
        { value: o.verify ? `${drillWords(o.verify)} ${when(o.verify.verifiedAt)}` : 'not verified', className: o.verify ? (o.verify.ok ? 'drill-ok' : 'drill-failed') : '' },
      ]),
    ),
  );
}

// --- start -----------------------------------------------------------------

$('signin-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  text($('signin-error'), '');
  const problem = await signIn($('token').value.trim());
  if (problem) text($('signin-error'), problem);
});
$('signout').addEventListener('click', () => signOut());
$('dest-form').addEventListener('submit', saveDestination);
$('f-copyType').addEventListener('change', () => showCopyFields($('dest-form')));
$('run').addEventListener('click', runBackup);
$('objects-older').addEventListener('click', () => {
  if (!objectsNext) return;
  objectCursors.push(objectsNext);
  refresh();
});
$('objects-newer').addEventListener('click', () => {
  if (objectCursors.length > 1) objectCursors.pop();
  refresh();
});

if (sessionStorage.getItem(TOKEN_KEY)) {
  signIn(sessionStorage.getItem(TOKEN_KEY)).then((problem) => problem && signOut(problem));
} else {
  signOut();
}
