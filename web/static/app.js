// bkstor dashboard: plain JS, no build step, no framework, no external requests.
// The page polls the control API (docs/api.md) behind the dashboard login and keeps the
// DOM in place between polls (keyed updates), so buttons stay clickable while data
// changes under them. Every element is built with textContent, never innerHTML: disk
// paths and event messages come from the appliance and are shown as text.
'use strict';

const POLL_MS = { status: 2000, throughput: 5000, events: 3000 };
const MAX_EVENTS = 200;
const CHART_POINTS = 360;          // 3600 one-second samples drawn as 10-second means
const SVG_NS = 'http://www.w3.org/2000/svg';

const $ = (sel, root = document) => root.querySelector(sel);

const state = {
  csrf: null,
  loggedIn: false,
  status: null,
  events: [],
  nextEvent: 0,
  pollers: {},
  lastJobs: new Map(),   // kind -> the job seen running at the previous poll
  ended: new Map(),      // kind -> a rebuild/replace that finished (the API drops them)
};

// ---------------------------------------------------------------- formatting

function fmtBytes(n) {
  if (n === null || n === undefined || !isFinite(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let i = 0;
  let v = Math.abs(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  const s = i === 0 ? String(Math.round(v)) : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0);
  return (n < 0 ? '-' : '') + s + ' ' + units[i];
}

const fmtRate = (bps) => fmtBytes(bps) + '/s';
const fmtRatio = (x) => (x && isFinite(x) ? x.toFixed(2) + '×' : '–');
const fmtCount = (n) => (n === null || n === undefined ? '–' : Number(n).toLocaleString());
const fmtPct = (x) => (isFinite(x) ? (x < 10 ? x.toFixed(1) : Math.round(x)) + '%' : '–');

function fmtDuration(s) {
  if (s === null || s === undefined || !isFinite(s)) return 'unknown';
  s = Math.max(0, Math.round(s));
  if (s < 60) return s + ' s';
  const m = Math.floor(s / 60);
  if (m < 60) return m + ' min ' + String(s % 60).padStart(2, '0') + ' s';
  const h = Math.floor(m / 60);
  if (h < 24) return h + ' h ' + String(m % 60).padStart(2, '0') + ' min';
  return Math.floor(h / 24) + ' d ' + (h % 24) + ' h';
}

function fmtTime(ns, withDate) {
  if (!ns) return '–';
  const d = new Date(ns / 1e6);
  const t = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  if (!withDate && Date.now() - d.getTime() < 20 * 3600 * 1000) return t;
  return d.toLocaleDateString([], { month: 'short', day: 'numeric' }) + ' ' + t;
}

// ---------------------------------------------------------------- DOM helpers

// el('div', {class: 'x', text: 'hi', data: {slot: 3}, attrs: {role: 'meter'}}, child...)
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  if (props.class) node.className = props.class;
  if (props.text !== undefined) node.textContent = props.text;
  for (const [k, v] of Object.entries(props.data || {})) node.dataset[k] = v;
  for (const [k, v] of Object.entries(props.attrs || {})) node.setAttribute(k, v);
  for (const c of children) if (c) node.append(c);
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function setText(sel, text, root) {
  const node = typeof sel === 'string' ? $(sel, root) : sel;
  if (node && node.textContent !== text) node.textContent = text;
}

// Width of a bar's fill (CSSOM, which the Content-Security-Policy allows, unlike
// style="" attributes) and its ARIA value.
function setBar(bar, pct, valueAttr = 'aria-valuenow') {
  const p = Math.max(0, Math.min(100, pct));
  bar.querySelector('.fill').style.width = p + '%';
  bar.setAttribute(valueAttr, String(Math.floor(p)));
}

// Reuse children by data-key: nodes are updated in place, added or removed, in order.
function syncList(container, items, keyOf, create, update) {
  const old = new Map();
  for (const c of container.children) old.set(c.dataset.key, c);
  let prev = null;
  for (const item of items) {
    const key = keyOf(item);
    let node = old.get(key);
    if (node) old.delete(key);
    else { node = create(item); node.dataset.key = key; }
    update(node, item);
    const want = prev ? prev.nextElementSibling : container.firstElementChild;
    if (node !== want) container.insertBefore(node, want);
    prev = node;
  }
  for (const n of old.values()) n.remove();
}

// ---------------------------------------------------------------- messages

let messageSource = null;
let messageTimer = null;

// kind: 'error' (stays until dismissed or replaced) or 'info' (fades after 10 s).
// source: who may clear it again (a poller clears its own error when it recovers).
function showMessage(text, kind = 'error', source = null) {
  const box = $('#message');
  box.dataset.kind = kind;
  setText('#message-text', text);
  box.hidden = false;
  messageSource = source;
  clearTimeout(messageTimer);
  if (kind === 'info') messageTimer = setTimeout(() => clearMessage(source), 10000);
}

function clearMessage(source) {
  if (source !== undefined && source !== messageSource) return;
  $('#message').hidden = true;
  messageSource = null;
}

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const opts = { method, credentials: 'same-origin', cache: 'no-store', headers: {} };
  if (method === 'POST') {
    opts.headers['Content-Type'] = 'application/json';
    if (state.csrf) opts.headers['X-CSRF-Token'] = state.csrf;
    opts.body = JSON.stringify(body || {});
  }
  let res;
  try {
    res = await fetch(path, opts);
  } catch (e) {
    throw new ApiError(0, 'cannot reach the appliance (' + e.message + ')');
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : {}; } catch (e) { data = null; }
  if (!res.ok) {
    const msg = data && data.error ? data.error : 'HTTP ' + res.status + ' ' + res.statusText;
    const err = new ApiError(res.status, msg, data && data.code);
    err.data = data;
    err.retryAfter = res.headers.get('Retry-After');
    if (res.status === 401 && path !== '/api/v1/login') sessionLost(msg);
    throw err;
  }
  if (data === null) throw new ApiError(res.status, path + ': the reply is not JSON');
  return data;
}

// POST an action; the reply's message (or the error) goes to the message area.
async function doAction(path, body, what) {
  try {
    const r = await api('POST', path, body);
    showMessage(r.message || what + ': done', 'info');
  } catch (e) {
    if (e.status !== 401) showMessage(what + ' failed: ' + e.message);
  }
  pollNow('status');
  pollNow('events');
}

// POST an add-spare or a replace. When the daemon finds something on the target (a
// file system, a partition table, data) it refuses with needs_force and says what:
// ask, naming it, and only then send the same request with force.
async function doDiskWrite(path, body, what, target) {
  try {
    const r = await api('POST', path, body);
    showMessage(r.message || what + ': done', 'info');
  } catch (e) {
    if (e.status === 409 && e.data && e.data.needs_force && !body.force) {
      const ok = await confirmDialog({ title: 'Overwrite ' + target + '?', okLabel: 'Overwrite it', danger: true,
        text: target + ' is not blank: it holds ' + e.data.found + '. ' + what + ' writes over it, and what is on it is lost. Go on only if you are sure its content is not needed.' });
      if (ok) return doDiskWrite(path, Object.assign({}, body, { force: true }), what, target);
    } else if (e.status !== 401) {
      showMessage(what + ' failed: ' + e.message);
    }
  }
  pollNow('status');
  pollNow('events');
}

// ---------------------------------------------------------------- polling

class Poller {
  constructor(name, fn, ms) {
    Object.assign(this, { name, fn, ms, timer: null, busy: false, again: false, stopped: true });
  }

  start() { this.stopped = false; this.tick(); }

  stop() { this.stopped = true; clearTimeout(this.timer); }

  now() {
    if (this.stopped) return;
    if (this.busy) { this.again = true; return; }
    clearTimeout(this.timer);
    this.tick();
  }

  async tick() {
    this.busy = true;
    const source = 'poll:' + this.name;
    try {
      await this.fn();
      clearMessage(source);
      setConn(true);
    } catch (e) {
      if (e.status !== 401 && !this.stopped) {
        showMessage('Could not update ' + this.name + ': ' + e.message, 'error', source);
        setConn(false);
      }
    }
    this.busy = false;
    if (this.stopped) return;
    this.timer = setTimeout(() => this.tick(), this.again ? 0 : this.ms);
    this.again = false;
  }
}

function setConn(good) {
  const c = $('#conn-state');
  c.dataset.state = good ? 'ok' : 'error';
  const t = new Date().toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  setText(c, good ? 'updated ' + t : 'no connection');
}

function startPolling() {
  stopPolling();
  state.pollers = {
    status: new Poller('status', pollStatus, POLL_MS.status),
    throughput: new Poller('throughput', pollThroughput, POLL_MS.throughput),
    events: new Poller('events', pollEvents, POLL_MS.events),
  };
  for (const p of Object.values(state.pollers)) p.start();
}

function stopPolling() {
  for (const p of Object.values(state.pollers)) p.stop();
  state.pollers = {};
}

function pollNow(name) {
  const p = state.pollers[name];
  if (p) p.now();
}

async function pollStatus() {
  const st = await api('GET', '/api/v1/status');
  state.status = st;
  renderStatus(st);
}

async function pollThroughput() {
  const t = await api('GET', '/api/v1/throughput');
  const step = t.interval_s || 1;
  renderChart($('#chart-ingest'), t.ingest_bps || [], step);
  renderChart($('#chart-restore'), t.restore_bps || [], step);
}

async function pollEvents() {
  const r = await api('GET', '/api/v1/events?since=' + state.nextEvent);
  if (typeof r.next === 'number' && r.next < state.nextEvent) {
    // The daemon restarted (its sequence began again): start over.
    state.events = [];
    state.nextEvent = 0;
    $('#events').replaceChildren();
    return pollEvents();
  }
  const fresh = (r.events || []).filter((e) => e.seq >= state.nextEvent);
  if (typeof r.next === 'number') state.nextEvent = r.next;
  else if (fresh.length) state.nextEvent = fresh[fresh.length - 1].seq + 1;
  if (!fresh.length) return;
  state.events = state.events.concat(fresh).slice(-MAX_EVENTS);
  renderEvents();
}

// ---------------------------------------------------------------- session

async function checkSession() {
  try {
    const s = await api('GET', '/api/v1/session');
    state.csrf = s.csrf;
    showApp();
  } catch (e) {
    if (e.status === 401) return; // sessionLost() showed the form
    showMessage('Cannot reach the appliance: ' + e.message + ' (retrying)', 'error', 'session');
    setTimeout(checkSession, 5000);
  }
}

function sessionLost(why) {
  const wasIn = state.loggedIn;
  state.loggedIn = false;
  state.csrf = null;
  stopPolling();
  showLogin(wasIn ? 'Your session ended (' + why + '). Log in again.' : '');
}

function showLogin(why) {
  clearMessage();
  $('#login-view').hidden = false;
  for (const v of document.querySelectorAll('.view')) v.hidden = true;
  $('#nav').hidden = true;
  $('#logout').hidden = true;
  $('#conn-state').textContent = '';
  const err = $('#login-error');
  err.textContent = why || '';
  err.hidden = !why;
  $('#password').focus();
}

function showApp() {
  clearMessage();
  state.loggedIn = true;
  $('#login-view').hidden = true;
  $('#nav').hidden = false;
  $('#logout').hidden = false;
  route();
  startPolling();
}

async function onLogin(ev) {
  ev.preventDefault();
  const pw = $('#password');
  const err = $('#login-error');
  const btn = $('#login-submit');
  btn.disabled = true;
  err.hidden = true;
  try {
    const r = await api('POST', '/api/v1/login', { password: pw.value });
    state.csrf = r.csrf;
    pw.value = '';
    showApp();
  } catch (e) {
    let msg = e.message;
    if (e.status === 429 && e.retryAfter && !/\d+ s/.test(msg)) msg += ' (try again in ' + e.retryAfter + ' s)';
    err.textContent = msg;
    err.hidden = false;
    pw.select();
  } finally {
    btn.disabled = false;
  }
}

async function onLogout() {
  try {
    await api('POST', '/api/v1/logout', {});
  } catch (e) {
    if (e.status !== 401) showMessage('Log out failed: ' + e.message);
  }
  sessionLost('logged out');
  $('#login-error').hidden = true;
}

// ---------------------------------------------------------------- views

const VIEWS = ['overview', 'disks', 'jobs'];

function route() {
  if (!state.loggedIn) return;
  const want = location.hash.slice(1);
  const view = VIEWS.includes(want) ? want : 'overview';
  for (const v of VIEWS) $('#view-' + v).hidden = v !== view;
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.view === view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

// ---------------------------------------------------------------- status

const HEALTH_TITLE = {
  ONLINE: 'OK — the array is healthy',
  DEGRADED: 'DEGRADED — redundancy is reduced',
  REBUILDING: 'REBUILDING — redundancy is being restored',
  FAILED: 'FAILED — data cannot be read or written',
};

function renderStatus(st) {
  const arr = st.array || {};
  const disks = arr.disks || [];
  const health = st.health || arr.health || 'UNKNOWN';
  const banner = $('#health-banner');
  banner.dataset.health = health;
  setText('#health-title', HEALTH_TITLE[health] || health);
  let action = st.action || '';
  if (!action && health === 'ONLINE') {
    const members = disks.filter((d) => d.role === 'member');
    const spares = disks.filter((d) => d.role === 'spare');
    action = members.length + ' disks online, ' + (spares.length ? spares.length + ' hot spare' +
      (spares.length === 1 ? '' : 's') + '. Nothing to do.' : 'no hot spare: add one (Disks) so that a failed disk is rebuilt at once.');
  }
  if (st.state === 'stopping') action = 'The daemon is shutting down. ' + action;
  setText('#health-action', action);
  setText('#array-name', arr.name ? '· ' + arr.name : '');
  document.title = 'bkstor · ' + health;

  renderCapacity(st.capacity || {});
  setText('#st-connections', fmtCount(st.connections));
  setText('#st-uptime', fmtDuration(st.uptime_s));
  renderJobs(st.jobs || arr.jobs || []);
  renderLuns(st.luns || []);
  renderNfs(st.nfs || {});
  renderRepl(st.repl || {});
  renderDisks(disks);
  renderScrubInfo(arr.last_scrub, (st.jobs || []).find((j) => j.kind === 'scrub'));
}

// LUNs: one row each (name, size, mapped bytes, block size, sessions, write cache, ACL).
function renderLuns(luns) {
  const rows = $('#lun-rows');
  $('#lun-table').hidden = luns.length === 0;
  $('#luns-none').hidden = luns.length !== 0;
  syncList(rows, luns, (l) => l.name, () => {
    const tr = el('tr');
    for (let i = 0; i < 7; i++) tr.appendChild(el('td'));
    return tr;
  }, (tr, l) => {
    const td = tr.children;
    td[0].textContent = l.name;
    td[1].textContent = fmtBytes(l.size);
    td[2].textContent = fmtBytes(l.mapped_bytes) + (l.size ? ' (' + (100 * l.mapped_bytes / l.size).toFixed(1) + '%)' : '');
    td[3].textContent = String(l.block_size);
    td[4].textContent = fmtCount(l.sessions);
    // write_cache false: an initiator turned it off (MODE SELECT), every write is
    // written through; absent (an older daemon): on.
    td[5].textContent = l.write_cache === false ? 'write-through' : 'write-back';
    td[6].textContent = l.initiators || 'any';
  });
}

function renderCapacity(c) {
  const total = c.total_bytes || 0;
  const used = total - (c.free_bytes || 0);
  const usedPct = total ? (100 * used) / total : 0;
  const bar = $('#cap-used-bar');
  setBar(bar, usedPct);
  // Full: the free rows are down to the reserve kept for commits and garbage
  // collection; new backups are refused until deletes and a collection free rows.
  const full = c.full === true;
  $('#full-banner').hidden = !full;
  setText('#full-action', full ? 'New backups are refused. Delete old backups, then run garbage collection (Jobs & events), or add disks. ' +
    fmtCount(c.rows_free) + ' rows free, ' + fmtCount(c.rows_reserved) + ' kept for commits and garbage collection.' : '');
  bar.classList.toggle('high', !full && usedPct >= 80 && usedPct < 95);
  bar.classList.toggle('full', full || usedPct >= 95);
  setText('#cap-used-text', total ? fmtBytes(used) + ' of ' + fmtBytes(total) + ' (' + fmtPct(usedPct) + ')' : '–');
  const logical = c.logical_bytes || 0;
  const physical = c.physical_bytes || 0;
  setBar($('#cap-reduce-bar'), logical ? (100 * physical) / logical : 0);
  setText('#cap-reduce-text', logical ? fmtBytes(physical) + ' stored for ' + fmtBytes(logical) + ' written' : 'nothing written yet');
  setText('#cap-logical', fmtBytes(c.logical_bytes));
  setText('#cap-physical', fmtBytes(c.physical_bytes));
  setText('#cap-free', fmtBytes(c.free_bytes));
  setText('#cap-total', fmtBytes(c.total_bytes));
  setText('#ratio-dedup', fmtRatio(c.dedup_ratio));
  setText('#ratio-compression', fmtRatio(c.compression_ratio));
  setText('#ratio-overall', physical ? fmtRatio(logical / physical) : '–');
  setText('#cap-objects', fmtCount(c.objects));
  setText('#cap-chunks', fmtCount(c.unique_chunks));
}

// ---------------------------------------------------------------- NFS

// One table row of cells (text, right-aligned when num).
function nfsRow(cells) {
  return el('tr', {}, ...cells.map(([text, num]) => el('td', num ? { class: 'num', text } : { text })));
}
function nfsFill(tbody, rows) {
  // The tables are short (exports, and at most 64 client addresses): rebuilt whole.
  tbody.replaceChildren(...rows.map(nfsRow));
}

function renderNfs(n) {
  const card = $('#nfs-card');
  card.hidden = !n.enabled;
  if (!n.enabled) return;
  const pm = n.rpcbind ? 'registered with rpcbind' : n.portmap_port ? 'portmapper on ' + n.portmap_port : 'no portmapper';
  setText('#nfs-summary', '· port ' + n.port + ', mount port ' + n.mount_port + ', ' + pm + ' · ' +
    fmtCount(n.connections) + ' of ' + fmtCount(n.max_connections) + ' connections');
  nfsFill($('#nfs-exports tbody'), (n.exports || []).map((x) => [
    [x.name], [x.path], [x.access], [fmtRate(x.write_bps), 1], [fmtRate(x.read_bps), 1],
    [fmtBytes(x.bytes_written), 1], [fmtBytes(x.bytes_read), 1]]));
  const clients = n.clients || [];
  nfsFill($('#nfs-clients tbody'), clients.map((k) => [
    [k.address], [fmtCount(k.connections), 1], [fmtCount(k.calls), 1],
    [fmtBytes(k.bytes_written), 1], [fmtBytes(k.bytes_read), 1], [fmtTime(k.last_seen_ns)]]));
  $('#nfs-clients').hidden = clients.length === 0;
  $('#nfs-clients-none').hidden = clients.length > 0;
}

// ---------------------------------------------------------------- replication

// The Replication card: role, twin (address and the start of its certificate's
// fingerprint), state, lag, rate, last sync, deletes held back (on the twin), errors,
// repair (damaged chunks wanted from the peer, fetched from it, sent for its repair,
// failed); while a cycle sends, its progress (bytes, rate, ETA). Always shown:
// "disabled" says how to turn it on.
function renderRepl(r) {
  const card = $('#repl-card');
  const on = r.enabled === true;
  const role = !on ? 'disabled' : r.paired ? r.role : r.role + ' (not paired)';
  card.dataset.role = on ? r.role : 'disabled';
  card.dataset.state = on ? (r.state || '') : 'disabled';
  card.dataset.alert = String(on && r.lag_alert === true);
  $('#repl-off').hidden = on;
  setText('#repl-role', role);
  if (!on) {
    for (const id of ['state', 'twin', 'lag', 'rate', 'last-sync', 'deletes', 'errors', 'repair']) setText('#repl-' + id, '–');
    setText('#repl-summary', '');
    $('#repl-progress-box').hidden = true;
    return;
  }
  const source = r.role === 'source';
  const lag = r.lag || {};
  const rx = r.received || {};
  let stateText = r.state || '–';
  if (r.window) stateText += ' · window ' + r.window;
  setText('#repl-state', stateText);
  const fp = r.peer_fingerprint ? 'SHA-256 ' + r.peer_fingerprint.slice(0, 16) + '…' : '';
  setText('#repl-twin', r.paired ? (source ? (r.peer_address || '?') + ' · ' : 'source · ') + fp : 'not paired');
  setText('#repl-lag', source ? fmtCount(lag.files) + ' files · ' + fmtBytes(lag.bytes) + ' · ' + fmtDuration(lag.seconds) +
    (r.lag_alert ? ' · past the alert threshold' : '') : 'counted on the source');
  const limit = r.bwlimit_bps ? ' (limit ' + fmtRate(r.bwlimit_bps) + ')' : '';
  setText('#repl-rate', source ? fmtRate(r.rate_bps || 0) + limit : '–');
  setText('#repl-last-sync', r.last_sync_wall_ns ? fmtTime(r.last_sync_wall_ns) : source ? 'not yet' : '–');
  // Deletes wait on the twin (its delete_delay): counted there, not on the source.
  $('#repl-deletes').parentElement.hidden = source;
  setText('#repl-deletes', fmtCount(rx.deletes_pending) +
    (rx.deletes_pending && rx.next_delete_due_s ? ' · next ' + fmtTime(rx.next_delete_due_s * 1e9, true) : ''));
  const errs = [];
  if (r.last_error) errs.push(r.last_error);
  if (rx.refused_connections) errs.push(fmtCount(rx.refused_connections) + ' connections refused');
  setText('#repl-errors', errs.length ? errs.join(' · ') : 'none');
  setText('#repl-repair', repairText(r.repair || {}));
  setText('#repl-summary', '· this appliance ' + (r.fingerprint || '').slice(0, 16) + '…');
  // Progress of the cycle that is sending, against the bytes of the files it had to
  // send when it began: the files done, or the bytes on the wire (a large file that
  // is half sent) when more. Only the chunks the twin lacks cross, so a file it
  // mostly has completes at once.
  const sending = source && r.state === 'sending' && r.cycle_bytes > 0;
  $('#repl-progress-box').hidden = !sending;
  if (sending) {
    const done = Math.min(r.cycle_bytes, Math.max(0, r.cycle_bytes - (lag.bytes || 0), r.cycle_wire_bytes || 0));
    setBar($('#repl-progress'), (100 * done) / r.cycle_bytes);
    setText('#repl-progress-text', fmtBytes(done) + ' of ' + fmtBytes(r.cycle_bytes) + ' · ' + fmtRate(r.rate_bps || 0) +
      ' · ETA ' + (r.eta_s === null || r.eta_s === undefined ? 'unknown' : 'at most ' + fmtDuration(r.eta_s)));
  }
}

// The repair counters of the status's repl.repair (docs/api.md): "none" while all are 0.
function repairText(rep) {
  const n = (k) => rep[k] || 0;
  if (!n('chunks_wanted') && !n('chunks_received') && !n('chunks_sent') && !n('chunks_failed')) return 'none';
  return [fmtCount(n('chunks_wanted')) + ' wanted' + (rep.wanted_from ? ' from the ' + rep.wanted_from : ''),
    fmtCount(n('chunks_received')) + ' fetched (' + fmtCount(n('chunks_repaired')) + ' repaired)',
    fmtCount(n('chunks_sent')) + ' sent', fmtCount(n('chunks_failed')) + ' failed'].join(' · ');
}

// ---------------------------------------------------------------- jobs

const JOB_NAME = { rebuild: 'Rebuild', replace: 'Replace', scrub: 'Scrub', gc: 'Garbage collection', verify: 'Verify',
  compress: 'Deferred compression' };
const ARRAY_JOBS = ['rebuild', 'replace', 'scrub'];

// The API lists a rebuild or replace only while it runs; remember one that ends so
// the page can say it finished instead of silently dropping it.
function withEndedJobs(jobs) {
  const now = new Set(jobs.map((j) => j.kind));
  for (const [kind, j] of state.lastJobs) {
    if ((kind === 'rebuild' || kind === 'replace') && !now.has(kind)) {
      state.ended.set(kind, Object.assign({}, j, {
        state: 'done', done_rows: j.total_rows, eta_s: 0, rate_bps: 0, ended_ms: Date.now(),
      }));
    }
  }
  state.lastJobs = new Map(jobs.filter((j) => j.state === 'running').map((j) => [j.kind, j]));
  for (const kind of now) state.ended.delete(kind);
  return jobs.concat([...state.ended.values()]);
}

function jobProgress(j) {
  if (ARRAY_JOBS.includes(j.kind)) return j.total_rows ? (100 * j.done_rows) / j.total_rows : (j.state === 'done' ? 100 : 0);
  if (j.kind === 'verify') return j.objects ? (100 * j.objects_done) / j.objects : (j.state === 'done' ? 100 : null);
  return j.state === 'done' ? 100 : null; // gc has no total
}

function jobDetail(j) {
  const parts = [];
  if (ARRAY_JOBS.includes(j.kind)) {
    parts.push(fmtCount(j.done_rows) + ' of ' + fmtCount(j.total_rows) + ' rows');
    if (j.state === 'running') {
      parts.push(j.rate_bps ? fmtRate(j.rate_bps) : 'measuring rate');
      parts.push('ETA ' + (j.eta_s === null || j.eta_s === undefined ? 'unknown' : fmtDuration(j.eta_s)));
    }
    if (j.kind === 'scrub') {
      parts.push(fmtCount(j.errors_found) + ' errors found, ' + fmtCount(j.repaired) + ' repaired, ' +
        fmtCount(j.unrecoverable) + ' unrecoverable');
    }
    if (j.ended_ms) parts.push('finished at ' + new Date(j.ended_ms).toLocaleTimeString());
  } else if (j.kind === 'gc') {
    parts.push(fmtCount(j.segments_scanned) + ' segments scanned, ' + fmtCount(j.segments_freed) + ' freed, ' +
      fmtCount(j.segments_compacted) + ' compacted', fmtBytes(j.bytes_moved) + ' moved', fmtCount(j.rows_freed) + ' rows freed');
  } else if (j.kind === 'compress') {
    if (j.waiting_for === 'room') parts.push('no room to move what is left until a commit gives rows back');
    else if (j.waiting_for === 'error') parts.push(j.error + ', tries again ' + fmtTime(j.retry_ns));
    if (j.state !== 'done') parts.push((j.bytes_left_estimate ? 'at least ' : '') + fmtBytes(j.bytes_left) + ' left',
      j.rate_bps ? fmtRate(j.rate_bps) : j.state === 'waiting' ? 'waiting' : 'waits for idle clients');
    parts.push(fmtBytes(j.raw_done) + ' raw stored as ' + fmtBytes(j.stored_after), fmtBytes(j.bytes_saved) + ' saved');
  } else if (j.kind === 'verify') {
    parts.push(fmtCount(j.objects_done) + ' of ' + fmtCount(j.objects) + ' objects', fmtCount(j.chunks_checked) + ' chunks checked');
    if (j.chunks_bad || j.objects_damaged) parts.push(fmtCount(j.chunks_bad) + ' bad chunks, ' + fmtCount(j.objects_damaged) + ' damaged objects');
  }
  if (j.started_ns && j.kind !== 'scrub') parts.push('started ' + fmtTime(j.started_ns));
  if (j.finished_ns && j.state !== 'running') parts.push('finished ' + fmtTime(j.finished_ns));
  return parts.join(' · ');
}

function createJob(j) {
  const name = JOB_NAME[j.kind] || j.kind;
  return el('div', { class: 'job', data: { kind: j.kind } },
    el('div', { class: 'job-head' }, el('span', { class: 'job-name', text: name }), el('span', { class: 'job-state' })),
    el('div', { class: 'progress', attrs: { role: 'progressbar', 'aria-label': name + ' progress', 'aria-valuemin': '0', 'aria-valuemax': '100' } },
      el('div', { class: 'fill' })),
    el('div', { class: 'job-detail' }));
}

function updateJob(node, j) {
  node.dataset.state = j.state;
  const pct = jobProgress(j);
  const bar = $('.progress', node);
  bar.hidden = pct === null;
  if (pct !== null) setBar(bar, pct);
  const stateText = pct !== null && (j.state === 'running' || j.state === 'paused') ? j.state + ' ' + fmtPct(pct) : j.state;
  setText($('.job-state', node), stateText);
  setText($('.job-detail', node), jobDetail(j));
}

function renderJobs(jobs) {
  const all = withEndedJobs(jobs);
  const active = all.filter((j) => j.state === 'running' || j.state === 'paused');
  // The jobs list leaves out store jobs that never ran.
  const listed = all.filter((j) => j.state !== 'idle' || j.started_ns);
  syncList($('#active-jobs'), active, (j) => j.kind, createJob, updateJob);
  syncList($('#jobs'), listed, (j) => j.kind, createJob, updateJob);
  $('#active-jobs-none').hidden = active.length > 0;
  const scrub = jobs.find((j) => j.kind === 'scrub');
  const ss = scrub ? scrub.state : 'idle';
  $('#scrub-start').disabled = ss === 'running' || ss === 'paused';
  $('#scrub-pause').disabled = ss !== 'running';
  $('#scrub-resume').disabled = ss !== 'paused';
  $('#scrub-stop').disabled = ss !== 'running' && ss !== 'paused';
  const running = (kind) => jobs.some((j) => j.kind === kind && j.state === 'running');
  $('#gc-start').disabled = running('gc');
  $('#verify-start').disabled = running('verify');
}

function renderScrubInfo(ls, job) {
  let text = '';
  if (ls && (ls.started_ns || ls.rows_checked)) {
    text = 'Last scrub: ' + ls.state;
    if (ls.started_ns) text += ', started ' + fmtTime(ls.started_ns);
    if (ls.finished_ns) text += ', finished ' + fmtTime(ls.finished_ns);
    text += '; ' + fmtCount(ls.rows_checked) + ' rows checked, ' + fmtCount(ls.errors_found) + ' errors found, ' +
      fmtCount(ls.repaired) + ' repaired, ' + fmtCount(ls.unrecoverable) + ' unrecoverable.';
  } else if (!job) {
    text = 'No scrub has run yet. A scrub reads every row and repairs what does not match its parity.';
  }
  setText('#last-scrub', text);
}

// ---------------------------------------------------------------- disks

const STATE_TEXT = {
  ONLINE: 'online', FAULTED: 'faulted', OFFLINE: 'offline', REMOVED: 'removed', UNAVAIL: 'missing',
  REBUILDING: 'rebuilding', REPLACING: 'replacing', AVAIL: 'available',
};

function diskId(d) { return d.path || d.uuid || ''; }
function diskLabel(d) {
  const where = d.slot === null || d.slot === undefined ? 'spare' : 'slot ' + d.slot;
  return (d.path || d.uuid || 'unknown disk') + ' (' + where + ')';
}

// Which buttons a disk gets, by role and state.
function diskActions(d) {
  if (d.role === 'spare') return ['locate', 'remove'];
  if (d.role === 'incoming') return [];
  switch (d.state) {
    case 'ONLINE': return ['fail', 'offline', 'locate'];
    case 'OFFLINE': return ['online', 'replace'];
    case 'FAULTED': case 'REMOVED': case 'UNAVAIL': return ['replace', 'remove'];
    default: return [];
  }
}

const ACTION_LABEL = { fail: 'Fail', offline: 'Offline', online: 'Online', locate: 'Locate', replace: 'Replace…', remove: 'Remove' };

function createDisk() {
  return el('div', { class: 'disk-tile' },
    el('div', { class: 'disk-head' }, el('span', { class: 'disk-slot' }), el('span', { class: 'disk-state' })),
    el('div', { class: 'disk-path' }),
    el('div', { class: 'disk-meta' }),
    el('div', { class: 'disk-errs' }),
    el('div', { class: 'progress', attrs: { role: 'progressbar', 'aria-label': 'copy progress', 'aria-valuemin': '0', 'aria-valuemax': '100' } },
      el('div', { class: 'fill' })),
    el('div', { class: 'disk-actions' }));
}

function updateDisk(node, d) {
  const spare = d.role === 'spare';
  if (spare) delete node.dataset.slot;
  else node.dataset.slot = String(d.slot);
  node.dataset.state = d.state;
  node.dataset.role = d.role;
  node.dataset.disk = diskId(d);
  node.dataset.label = diskLabel(d);
  let title = spare ? 'Hot spare' : 'Slot ' + d.slot;
  if (d.role === 'incoming') title += ' · incoming';
  setText($('.disk-slot', node), title);
  let stateText = STATE_TEXT[d.state] || d.state;
  if (d.role === 'incoming' && d.rows_total) stateText += ' ' + fmtPct((100 * d.cursor) / d.rows_total);
  setText($('.disk-state', node), stateText);
  const path = d.path || '(missing: ' + (d.uuid || 'unknown') + ')';
  const pathNode = $('.disk-path', node);
  if (pathNode.dataset.path !== path) { // a line may break after each '/'
    pathNode.dataset.path = path;
    pathNode.replaceChildren(...path.split(/(?<=\/)/).flatMap((part) => [part, el('wbr')]));
  }
  node.title = 'uuid ' + (d.uuid || '–');
  setText($('.disk-meta', node), (d.serial ? 'serial ' + d.serial : 'no serial') + ' · ' + fmtBytes(d.size));
  const errs = (d.read_errors || 0) + (d.write_errors || 0) + (d.cksum_errors || 0);
  const errNode = $('.disk-errs', node);
  setText(errNode, 'errors  read ' + fmtCount(d.read_errors) + '  write ' + fmtCount(d.write_errors) +
    '  cksum ' + fmtCount(d.cksum_errors));
  errNode.classList.toggle('has-errors', errs > 0);
  const bar = $('.progress', node);
  bar.hidden = d.role !== 'incoming';
  if (d.role === 'incoming') {
    setBar(bar, d.rows_total ? (100 * d.cursor) / d.rows_total : 0);
    bar.title = fmtCount(d.cursor) + ' of ' + fmtCount(d.rows_total) + ' rows copied';
  }
  // Rebuild the buttons only when the set changes, so a click is never lost.
  const acts = diskActions(d);
  const box = $('.disk-actions', node);
  if (box.dataset.acts !== acts.join(',')) {
    box.dataset.acts = acts.join(',');
    box.replaceChildren(...acts.map((a) => el('button', {
      class: 'disk-' + a + (a === 'fail' || a === 'remove' ? ' danger' : ''),
      text: ACTION_LABEL[a],
      data: { action: a, testid: a + '-' + (spare ? 'spare-' + diskId(d) : d.slot) },
      attrs: { type: 'button', 'aria-label': ACTION_LABEL[a].replace('…', '') + ' ' + diskLabel(d) },
    })));
  }
}

function renderDisks(disks) {
  const roleOrder = { member: 0, incoming: 1 };
  const members = disks.filter((d) => d.role !== 'spare')
    .sort((a, b) => a.slot - b.slot || roleOrder[a.role] - roleOrder[b.role]);
  const spares = disks.filter((d) => d.role === 'spare');
  const key = (d) => d.role + ':' + (d.slot === null ? '' : d.slot) + ':' + (d.uuid || d.path);
  syncList($('#disk-grid'), members, key, createDisk, updateDisk);
  syncList($('#spare-grid'), spares, key, createDisk, updateDisk);
  $('#spares-none').hidden = spares.length > 0;
  const m = members.filter((d) => d.role === 'member');
  const online = m.filter((d) => d.state === 'ONLINE').length;
  setText('#disk-summary', online + ' of ' + m.length + ' online');
}

async function onDiskAction(ev) {
  const btn = ev.target.closest('button[data-action]');
  if (!btn) return;
  const tile = btn.closest('.disk-tile');
  const disk = tile.dataset.disk;
  const label = tile.dataset.label;
  const act = btn.dataset.action;
  let body = { disk };
  let opts = null;
  switch (act) {
    case 'fail':
      opts = { title: 'Fail this disk?', okLabel: 'Fail disk', danger: true,
        text: 'Mark ' + label + ' FAULTED. A hot spare, if there is one, takes its place and is rebuilt; until then the array has less redundancy.' };
      break;
    case 'offline':
      opts = { title: 'Take this disk offline?', okLabel: 'Take offline',
        text: 'Stop using ' + label + ' (for example to reseat it). The array runs degraded until it is brought back online.' };
      break;
    case 'online':
      opts = { title: 'Bring this disk online?', okLabel: 'Bring online',
        text: 'Use ' + label + ' again; the rows written while it was away are copied to it in the background.' };
      break;
    case 'remove':
      opts = { title: 'Remove this disk?', okLabel: 'Remove', danger: true,
        text: 'Remove ' + label + ' from the array configuration.' };
      break;
    case 'replace':
      opts = { title: 'Replace this disk', okLabel: 'Replace', input: { label: 'Path of the new disk', placeholder: '/dev/disk/by-id/…' }, force: true,
        text: 'Copy the data of ' + label + ' onto a new disk. The new disk is checked (not mounted; size; anything on it — another array’s label, a file system, data — is named and needs your confirmation; a write/read test) before it joins.' };
      break;
    case 'locate':
      body = { disk, on: true };
      break;
  }
  if (opts) {
    const r = await confirmDialog(opts);
    if (!r) return;
    if (act === 'replace') {
      await doDiskWrite('/api/v1/disks/replace', { disk, new: r.value, force: r.force }, 'Replace', r.value);
      return;
    }
  }
  await doAction('/api/v1/disks/' + act, body, ACTION_LABEL[act].replace('…', ''));
}

async function onAddSpare() {
  const r = await confirmDialog({ title: 'Add a hot spare', okLabel: 'Add spare', force: true,
    input: { label: 'Path of the disk', placeholder: '/dev/disk/by-id/…' },
    text: 'The disk is checked (not mounted; size; anything on it is named and needs your confirmation; a write/read test) and then waits as a hot spare: it takes the place of the next disk that fails.' });
  if (r) await doDiskWrite('/api/v1/disks/add-spare', { path: r.value, force: r.force }, 'Add spare', r.value);
}

// ---------------------------------------------------------------- maintenance

const MAINT = {
  'scrub-start': { path: '/api/v1/scrub', body: { action: 'start' }, what: 'Scrub start',
    confirm: { title: 'Start a scrub?', okLabel: 'Start scrub', text: 'Read every row of the array, check it against its parity and checksums, and repair what does not match. It runs in the background at the background rate; backups keep running.' } },
  'scrub-stop': { path: '/api/v1/scrub', body: { action: 'stop' }, what: 'Scrub stop',
    confirm: { title: 'Stop the scrub?', okLabel: 'Stop scrub', danger: true, text: 'The rows not yet checked stay unchecked until the next scrub.' } },
  'scrub-pause': { path: '/api/v1/scrub', body: { action: 'pause' }, what: 'Scrub pause' },
  'scrub-resume': { path: '/api/v1/scrub', body: { action: 'resume' }, what: 'Scrub resume' },
  'gc-start': { path: '/api/v1/gc', body: { action: 'start' }, what: 'GC start',
    confirm: { title: 'Start garbage collection?', okLabel: 'Start GC', text: 'Free the space of deleted backups: segments with little live data are compacted and their rows freed. It runs in the background.' } },
  'verify-start': { path: '/api/v1/verify', body: { action: 'start' }, what: 'Verify start',
    confirm: { title: 'Start a verify?', okLabel: 'Start verify', text: 'Read every chunk of every file and check its fingerprint. It runs in the background and reads all stored data.' } },
  'commit-now': { path: '/api/v1/commit', body: {}, what: 'Commit' },
};

async function onMaintenance(ev) {
  const m = MAINT[ev.currentTarget.id];
  if (m.confirm && !(await confirmDialog(m.confirm))) return;
  await doAction(m.path, m.body, m.what);
}

// ---------------------------------------------------------------- events

function renderEvents() {
  const list = $('#events');
  const newestFirst = state.events.slice().reverse();
  syncList(list, newestFirst, (e) => String(e.seq), (e) => el('li', { data: { seq: e.seq, level: e.level } },
    el('time', { text: fmtTime(e.time_ns), attrs: { datetime: new Date(e.time_ns / 1e6).toISOString() } }),
    el('span', { class: 'ev-level', text: e.level }),
    el('span', { class: 'ev-msg', text: e.msg })), () => {});
  $('#events-none').hidden = state.events.length > 0;
}

// ---------------------------------------------------------------- charts
//
// A line-and-area chart in hand-written SVG: the viewBox is (points × 100) with
// preserveAspectRatio="none", so the chart stretches to any width without JS layout;
// strokes keep their width through vector-effect, and the labels are HTML around it.

function niceMax(v) {
  if (!(v > 0)) return 1024 * 1024; // an empty chart still shows a scale (1 MiB/s)
  const exp = Math.pow(1024, Math.floor(Math.log(v) / Math.log(1024)));
  const m = v / exp;
  const step = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024].find((s) => s >= m);
  return step * exp;
}

function downsample(samples, n) {
  const per = Math.max(1, Math.ceil(samples.length / n));
  const out = [];
  for (let i = 0; i < samples.length; i += per) {
    let sum = 0;
    let cnt = 0;
    for (let k = i; k < Math.min(i + per, samples.length); k++) { sum += Number(samples[k]) || 0; cnt++; }
    out.push(sum / cnt);
  }
  return { points: out, per };
}

function buildChart(box) {
  const line = svg('path', { class: 'line', 'vector-effect': 'non-scaling-stroke' });
  const area = svg('path', { class: 'area' });
  const cursor = svg('line', { class: 'cursor', y1: 0, y2: 100, 'vector-effect': 'non-scaling-stroke', visibility: 'hidden' });
  const root = svg('svg', { preserveAspectRatio: 'none', role: 'img', 'aria-label': box.dataset.title });
  for (const y of [0, 25, 50, 75, 100]) {
    root.append(svg('line', { class: 'grid-line', x1: 0, x2: 1, y1: y, y2: y, 'vector-effect': 'non-scaling-stroke' }));
  }
  root.append(area, line, cursor);
  const body = el('div', { class: 'chart-body' }, root, el('span', { class: 'chart-ymax' }));
  box.replaceChildren(
    el('div', { class: 'chart-head' }, el('span', { class: 'chart-title', text: box.dataset.title }), el('span', { class: 'chart-now' })),
    body,
    el('div', { class: 'chart-axis' }, ...['−60 min', '−45', '−30', '−15', 'now'].map((t) => el('span', { text: t }))));
  body.addEventListener('pointermove', (ev) => chartHover(box, ev));
  body.addEventListener('pointerleave', () => chartHover(box, null));
  box.chart = { root, line, area, cursor, body };
}

function renderChart(box, samples, stepS) {
  if (!box.chart) buildChart(box);
  const c = box.chart;
  const { points, per } = downsample(samples, CHART_POINTS);
  const n = Math.max(points.length, 2);
  const peak = Math.max(0, ...points);
  const top = niceMax(peak);
  const y = (v) => (100 - (100 * v) / top).toFixed(2);
  let d = '';
  points.forEach((v, i) => { d += (i ? 'L' : 'M') + i + ' ' + y(v); });
  if (points.length === 1) d += 'L1 ' + y(points[0]);
  c.root.setAttribute('viewBox', '0 0 ' + (n - 1) + ' 100');
  for (const g of c.root.querySelectorAll('.grid-line')) g.setAttribute('x2', n - 1);
  c.line.setAttribute('d', d);
  c.area.setAttribute('d', d ? d + 'L' + (n - 1) + ' 100L0 100Z' : '');
  setText($('.chart-ymax', box), fmtRate(top));
  const recent = samples.slice(-10);
  const nowBps = recent.length ? recent.reduce((a, b) => a + (Number(b) || 0), 0) / recent.length : 0;
  c.summary = 'now ' + fmtRate(nowBps) + ' · peak ' + fmtRate(peak) + ' (' + fmtDuration(stepS * per) + ' average)';
  c.points = points;
  c.stepS = stepS * per;
  box.dataset.points = String(points.length);
  box.dataset.peak = String(Math.round(peak));
  if (!c.hovering) setText($('.chart-now', box), c.summary);
}

function chartHover(box, ev) {
  const c = box.chart;
  if (!ev || !c.points || !c.points.length) {
    c.hovering = false;
    c.cursor.setAttribute('visibility', 'hidden');
    setText($('.chart-now', box), c.summary || '');
    return;
  }
  const r = c.body.getBoundingClientRect();
  const n = c.points.length;
  const i = Math.max(0, Math.min(n - 1, Math.round(((ev.clientX - r.left) / r.width) * (n - 1))));
  c.hovering = true;
  c.cursor.setAttribute('x1', i);
  c.cursor.setAttribute('x2', i);
  c.cursor.setAttribute('visibility', 'visible');
  const ago = (n - 1 - i) * c.stepS;
  const when = new Date(Date.now() - ago * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  setText($('.chart-now', box), when + ' · ' + fmtRate(c.points[i]));
}

// ---------------------------------------------------------------- confirmation dialog

let dialogDone = null;

// Resolves to null (cancelled) or {value, force}.
function confirmDialog({ title, text, okLabel = 'OK', danger = false, input = null, force = false }) {
  const dlg = $('#confirm-dialog');
  setText('#confirm-title', title);
  setText('#confirm-text', text || '');
  const ok = $('#confirm-ok');
  ok.textContent = okLabel;
  ok.classList.toggle('danger', danger);
  ok.classList.toggle('primary', !danger);
  $('#confirm-field').hidden = !input;
  $('#confirm-force-row').hidden = !force;
  $('#confirm-force').checked = false;
  const field = $('#confirm-input');
  field.value = '';
  field.setCustomValidity('');
  if (input) {
    setText('#confirm-input-label', input.label);
    field.placeholder = input.placeholder || '';
  }
  if (dialogDone) dialogDone(null);
  return new Promise((resolve) => {
    dialogDone = (result) => {
      dialogDone = null;
      if (dlg.open) dlg.close();
      resolve(result);
    };
    dlg.showModal();
    (input ? field : ok).focus();
  });
}

function onConfirmOk() {
  if (!dialogDone) return;
  const field = $('#confirm-input');
  if (!$('#confirm-field').hidden) {
    const v = field.value.trim();
    if (!v) {
      field.setCustomValidity('Enter a path');
      field.reportValidity();
      return;
    }
    dialogDone({ value: v, force: $('#confirm-force').checked });
  } else {
    dialogDone({ value: null, force: false });
  }
}

// ---------------------------------------------------------------- start

function init() {
  $('#login-form').addEventListener('submit', onLogin);
  $('#logout').addEventListener('click', onLogout);
  $('#message-close').addEventListener('click', () => clearMessage());
  $('#disk-grid').addEventListener('click', onDiskAction);
  $('#spare-grid').addEventListener('click', onDiskAction);
  $('#spare-add').addEventListener('click', onAddSpare);
  for (const id of Object.keys(MAINT)) $('#' + id).addEventListener('click', onMaintenance);
  $('#confirm-ok').addEventListener('click', onConfirmOk);
  $('#confirm-cancel').addEventListener('click', () => dialogDone && dialogDone(null));
  $('#confirm-dialog').addEventListener('close', (e) => {
    if (dialogDone && !e.target.open) dialogDone(null); // Escape key
  });
  $('#confirm-input').addEventListener('input', (e) => e.target.setCustomValidity(''));
  $('#confirm-input').addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { e.preventDefault(); onConfirmOk(); }
  });
  window.addEventListener('hashchange', route);
  // Back from a hidden tab: refresh at once rather than waiting for the next tick.
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) for (const name of Object.keys(state.pollers)) pollNow(name);
  });
  checkSession();
}

document.addEventListener('DOMContentLoaded', init);
