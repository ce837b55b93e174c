// tests/web-browser.mjs: the dashboard in headless Chromium (run by test-web-browser.sh,
// which starts bkstord --demo with data on it and sets the admin password).
// Environment: BKS_URL, BKS_PASSWORD, BKS_ARTIFACTS, BKS_NPM_DIR (holds
// node_modules/playwright-core), BKS_CHROMIUM. Prints one ok/FAIL line per check;
// exit 0 only when all passed.
import { createRequire } from 'node:module';
import path from 'node:path';

const env = (k) => {
  if (!process.env[k]) { console.log(`FAIL - ${k} is not set`); process.exit(2); }
  return process.env[k];
};
const BASE = env('BKS_URL');
const PASSWORD = env('BKS_PASSWORD');
const ARTIFACTS = env('BKS_ARTIFACTS');
const require = createRequire(path.join(env('BKS_NPM_DIR'), 'node_modules', '/'));
const { chromium } = require('playwright-core');

let fails = 0;
const ok = (desc) => console.log(`ok   - ${desc}`);
const bad = (desc) => { console.log(`FAIL - ${desc}`); fails++; };
const expect = (cond, desc, why = '') => (cond ? ok(desc) : bad(why ? `${desc}: ${why}` : desc));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The whole run is bounded: a hung page must not hang make check.
const guard = setTimeout(() => { bad('the browser test took more than 6 minutes'); process.exit(1); }, 360000);

async function shot(page, name) {
  const file = path.join(ARTIFACTS, name);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`# screenshot ${file}`);
}

// Poll FN (async, returns a value or null) until it returns non-null, or TIMEOUT ms.
async function until(fn, timeout, every = 250) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > end) return null;
    await sleep(every);
  }
}

const health = (page) => page.getAttribute('#health-banner', 'data-health');

async function noHorizontalScroll(page, label) {
  const views = ['overview', 'disks', 'jobs'];
  const wide = [];
  for (const v of views) {
    await page.click(`#tab-${v}`);
    await page.waitForSelector(`#view-${v}:not([hidden])`);
    const w = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    if (w[0] > w[1]) wide.push(`${v} ${w[0]} px wide in ${w[1]} px`);
  }
  expect(!wide.length, `${label}: no horizontal scrolling`, wide.join(', '));
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.BKS_CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // Expected: 401 (the session check before login, the wrong password), 409 (locate).
    if (m.type() === 'error' && !/status of 40[19]/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('request', (r) => {
    if (!r.url().startsWith(BASE)) problems.push(`external request: ${r.url()}`);
  });

  // --- load and log in
  const res = await page.goto(BASE);
  expect(res && res.status() === 200, 'GET / serves the dashboard', res ? `status ${res.status()}` : 'no reply');
  const csp = (res && res.headers()['content-security-policy']) || '';
  expect(/script-src 'self'/.test(csp) && /style-src 'self'/.test(csp), 'the page is served with a strict CSP', csp);
  await page.waitForSelector('#login-form', { state: 'visible', timeout: 10000 });
  ok('the login form is shown before logging in');

  await page.fill('#password', 'not the password');
  await page.click('#login-submit');
  const err = await page.waitForSelector('#login-error:not([hidden])', { timeout: 10000 }).catch(() => null);
  const errText = err ? (await err.textContent()).trim() : '';
  expect(/wrong password/i.test(errText), 'a wrong password shows an error', `"${errText}"`);
  expect(await page.isVisible('#login-form'), 'still on the login form after a wrong password');

  await page.fill('#password', PASSWORD);
  await page.click('#login-submit');
  const h0 = await until(async () => {
    const h = await health(page);
    return h ? h : null;
  }, 15000);
  expect(h0 === 'ONLINE', 'logged in: the health banner says ONLINE', `data-health=${h0}`);
  expect(!(await page.isVisible('#login-form')), 'the login form is gone after logging in');

  // --- overview
  const logical = (await page.textContent('#cap-logical')).trim();
  expect(/\d.*(MiB|GiB)/.test(logical), 'capacity shows the data written', `logical ${logical}`);
  const dedup = (await page.textContent('#ratio-dedup')).trim();
  expect(/^\d+\.\d+×$/.test(dedup), 'the dedup ratio is shown', dedup);
  expect(await page.getAttribute('#cap-used-bar', 'aria-valuenow') !== null, 'the capacity bar has a value');
  const peak = await until(async () => Number(await page.getAttribute('#chart-ingest', 'data-peak')) || null, 12000);
  expect(peak > 0, 'the ingest chart shows the put of the last minutes', `peak ${peak} B/s`);
  const linePath = await page.getAttribute('#chart-ingest svg path.line', 'd');
  expect(linePath && linePath.split('L').length > 100, 'the ingest chart is drawn as an SVG line');
  // the NFS card: the client that wrote a file over NFS before the page loaded
  if (process.env.BKS_NFS_CLIENT) {
    const who = process.env.BKS_NFS_CLIENT;
    const row = await until(async () => {
      const rows = await page.$$eval('#nfs-clients tbody tr', (trs) => trs.map((tr) => tr.innerText));
      return rows.find((r) => r.includes(who)) || null;
    }, 5000);
    expect(await page.isVisible('#nfs-card'), 'the NFS card is shown');
    expect(row && /\d.*MiB/.test(row), `the NFS card lists client ${who} with the bytes it wrote`, row || 'no row');
    const xrow = await page.$eval('#nfs-exports tbody tr', (tr) => tr.innerText).catch(() => '');
    expect(/MiB/.test(xrow), 'the NFS card lists the export with its bytes written', xrow);
  }
  // the Replication card: the demo has no [repl], so it says so
  const replRole = await until(async () => {
    const t = (await page.textContent('#repl-role')).trim();
    return t && t !== '–' ? t : null;
  }, 5000);
  const wantRole = process.env.BKS_REPL_ROLE || 'disabled';
  expect(replRole === wantRole && (await page.getAttribute('#repl-card', 'data-role')) === wantRole,
    `the Replication card shows role "${wantRole}"`, `role "${replRole}"`);
  expect(await page.isVisible('#repl-off') === (wantRole === 'disabled'), 'the Replication card says how to turn it on (only when off)');
  if (wantRole === 'disabled') {
    const rep0 = (await page.textContent('#repl-repair')).trim();
    expect(rep0 === '–', 'the Replication card has a Repair row, empty while replication is off', `"${rep0}"`);
  }
  await shot(page, 'dashboard-overview.png');

  // The Repair row on a twin, from the status's repl.repair (docs/api.md): the status
  // the page polls gets a twin's repl object with repair counters added (the demo has
  // no [repl]), then its own again.
  const twinRepl = {
    enabled: true, paired: true, role: 'twin', state: 'listening', peer_fingerprint: 'ab'.repeat(32),
    fingerprint: 'cd'.repeat(32), received: { files: 2, deletes_pending: 0 },
    repair: { wanted_from: 'source', chunks_wanted: 3, chunks_received: 2, chunks_repaired: 1,
      chunks_sent: 0, chunks_failed: 1, chunks_refused: 1 },
  };
  const statusUrl = (u) => new URL(u).pathname === '/api/v1/status';
  await page.route(statusUrl, async (route) => {
    const real = await route.fetch();
    const body = await real.json();
    await route.fulfill({ response: real, json: { ...body, repl: twinRepl } });
  });
  const repText = await until(async () => {
    const t = (await page.textContent('#repl-repair')).trim();
    return /wanted/.test(t) ? t : null;
  }, 8000);
  expect(repText === '3 wanted from the source · 2 fetched (1 repaired) · 0 sent · 1 failed',
    'the Replication card shows the repair counters (wanted, fetched, sent, failed)', `"${repText}"`);
  await page.unroute(statusUrl);
  const repOff = await until(async () => ((await page.textContent('#repl-repair')).trim() === '–' ? true : null), 8000);
  expect(repOff === true, 'and "–" again with the real status (replication off)');

  // --- disks
  await page.click('#tab-disks');
  await page.waitForSelector('#view-disks:not([hidden])');
  const members = await page.$$eval('#disk-grid .disk-tile[data-role=member]', (ts) => ts.map((t) => [t.dataset.slot, t.dataset.state]));
  expect(members.length === 8, '8 member tiles', JSON.stringify(members));
  expect(members.every(([s, st], i) => s === String(i) && st === 'ONLINE'), 'members in slot order, all ONLINE', JSON.stringify(members));
  const spares = await page.$$eval('#spare-grid .disk-tile', (ts) => ts.map((t) => [t.dataset.role, t.dataset.state]));
  expect(spares.length === 1 && spares[0][0] === 'spare' && spares[0][1] === 'AVAIL', 'one spare tile, shown apart', JSON.stringify(spares));
  const tile3 = '#disk-grid .disk-tile[data-slot="3"][data-role=member]';
  const errs = (await page.textContent(`${tile3} .disk-errs`)).trim();
  expect(/read 0.*write 0.*cksum 0/.test(errs), 'a tile shows its error counters', errs);
  await shot(page, 'dashboard-disks.png');

  // --- fail slot 3 from the page; the spare rebuilds
  await page.click(`${tile3} button.disk-fail`);
  await page.waitForSelector('#confirm-dialog[open]', { timeout: 5000 });
  ok('failing a disk asks for confirmation');
  await page.click('#confirm-ok');
  const degraded = await until(async () => {
    const h = await health(page);
    return h === 'DEGRADED' || h === 'REBUILDING' ? h : null;
  }, 20000, 100);
  expect(degraded, 'after the fail the banner says DEGRADED or REBUILDING', `data-health=${await health(page)}`);
  const action = (await page.textContent('#health-action')).trim();
  expect(action.length > 0, 'the banner says what to do', action);
  const faulted = await until(() => page.$(`#disk-grid .disk-tile[data-slot="3"][data-state=FAULTED]`), 5000);
  expect(faulted, 'slot 3 tile turns FAULTED');
  const incoming = await until(() => page.$(`#disk-grid .disk-tile[data-slot="3"][data-role=incoming]`), 5000);
  expect(incoming, 'the spare appears as the incoming disk of slot 3');
  await shot(page, 'dashboard-disks-rebuilding.png');

  await page.click('#tab-jobs');
  const job = '#jobs .job[data-kind=rebuild]';
  const seen = [];
  let states = new Set();
  const t0 = Date.now();
  const back = await until(async () => {
    const j = await page.$(job);
    if (j) {
      const v = await page.getAttribute(`${job} [role=progressbar]`, 'aria-valuenow');
      const st = await j.getAttribute('data-state');
      states.add(st);
      if (v !== null && (!seen.length || seen[seen.length - 1] !== Number(v))) seen.push(Number(v));
    }
    return (await health(page)) === 'ONLINE' ? true : null;
  }, 180000, 200);
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  console.log(`# rebuild progress seen: ${seen.join(' ')} (${secs} s)`);
  expect(states.has('running'), 'the rebuild job is listed as running', [...states].join(','));
  expect(seen.filter((v) => v > 0 && v < 100).length >= 2, 'the progress bar advanced while the rebuild ran', seen.join(' '));
  expect(seen.every((v, i) => i === 0 || v >= seen[i - 1]), 'progress never went backwards', seen.join(' '));
  expect(back, 'the array is ONLINE again after the rebuild', `data-health=${await health(page)}`);
  const doneState = await until(async () => ((await page.getAttribute(job, 'data-state')) === 'done' ? 'done' : null), 5000);
  const doneVal = await page.getAttribute(`${job} [role=progressbar]`, 'aria-valuenow').catch(() => null);
  expect(doneState === 'done' && doneVal === '100', 'the rebuild job ends as done at 100%', `state ${doneState} value ${doneVal}`);
  await page.click('#tab-disks');
  const after = await until(async () => {
    const m = await page.$$eval('#disk-grid .disk-tile', (ts) => ts.map((t) => `${t.dataset.slot}:${t.dataset.role}:${t.dataset.state}`));
    return m.length === 8 && m.every((x) => /:member:ONLINE$/.test(x)) ? m : null;
  }, 10000);
  expect(after, 'after the rebuild: 8 ONLINE members');
  expect((await page.$$('#spare-grid .disk-tile')).length === 0 && (await page.isVisible('#spares-none')), 'the spare was used: none left, and the page says so');

  // --- scrub from the page
  await page.click('#tab-jobs');
  await page.click('#scrub-start');
  await page.waitForSelector('#confirm-dialog[open]', { timeout: 5000 });
  ok('starting a scrub asks for confirmation');
  await page.click('#confirm-ok');
  const scrub = '#jobs .job[data-kind=scrub]';
  const sState = await until(async () => {
    const s = await page.getAttribute(scrub, 'data-state').catch(() => null);
    return s === 'running' || s === 'done' ? s : null;
  }, 10000, 100);
  expect(sState, 'the scrub job appears', `state ${sState}`);
  const msg = (await page.textContent('#message-text')).trim();
  expect(/scrub/i.test(msg) && !(await page.isHidden('#message')), 'the reply to the action is shown', msg);
  expect(await page.isDisabled('#scrub-start') || sState === 'done', 'Start is disabled while the scrub runs');
  const sDone = await until(async () => ((await page.getAttribute(scrub, 'data-state')) === 'done' ? true : null), 180000, 500);
  expect(sDone, 'the scrub runs to done', `state ${await page.getAttribute(scrub, 'data-state')}`);
  const sVal = await page.getAttribute(`${scrub} [role=progressbar]`, 'aria-valuenow');
  expect(sVal === '100', 'the scrub progress bar reaches 100', sVal);

  // --- errors from the API are shown: a file disk has no locate LED (409)
  await page.click('#tab-disks');
  await page.click('#disk-grid .disk-tile[data-slot="0"] button.disk-locate');
  const shown = await until(async () => {
    const t = (await page.textContent('#message-text')).trim();
    return (await page.isVisible('#message')) && /locate/i.test(t) && /fail|support/i.test(t) ? t : null;
  }, 5000);
  expect(shown, 'an API error is shown in the message area', shown || (await page.textContent('#message-text')));

  // --- add a spare that is not blank: the page names what is on it and asks first
  const dirty = process.env.BKS_DIRTY_DISK;
  if (dirty) {
    await page.click('#tab-disks');
    await page.click('#spare-add');
    await page.waitForSelector('#confirm-dialog[open]', { timeout: 5000 });
    await page.fill('#confirm-input', dirty);
    await page.click('#confirm-ok');
    const ask = await until(async () => {
      const t = await page.textContent('#confirm-text').catch(() => '');
      return (await page.isVisible('#confirm-dialog')) && /ext2\/3\/4 file system/.test(t) ? t : null;
    }, 10000);
    expect(ask && ask.includes(dirty), 'a non-blank disk: the page names its content and asks', ask || '');
    expect((await page.$$('#spare-grid .disk-tile')).length === 0, 'nothing added before the answer');
    await page.click('#confirm-ok');
    const added = await until(async () => ((await page.$$('#spare-grid .disk-tile')).length === 1 ? true : null), 10000);
    expect(added, 'after confirming, the disk is a spare');
  }

  // --- events
  await page.click('#tab-jobs');
  const events = await page.$$eval('#events li', (ls) => ls.map((l) => l.textContent));
  expect(events.length > 0 && events.length <= 200, 'recent events listed (at most 200)', `${events.length}`);
  expect(events.some((e) => /FAULTED/.test(e)) && events.some((e) => /rebuild .*complete/.test(e)),
    'the events tell of the failure and the rebuild', events.slice(0, 5).join(' | '));

  // --- a phone
  await page.setViewportSize({ width: 375, height: 812 });
  await noHorizontalScroll(page, '375 px wide');
  await page.click('#tab-overview');
  await shot(page, 'dashboard-phone-overview.png');
  await page.click('#tab-disks');
  await shot(page, 'dashboard-phone-disks.png');
  await page.setViewportSize({ width: 1280, height: 900 });

  // --- log out: the session is over
  await page.click('#logout');
  await page.waitForSelector('#login-form', { state: 'visible', timeout: 5000 }).catch(() => null);
  expect(await page.isVisible('#login-form'), 'logging out shows the login form');
  const st = await page.request.get(new URL('/api/v1/status', BASE).href);
  expect(st.status() === 401, 'after logging out the API answers 401', `status ${st.status()}`);

  expect(!problems.length, 'no CSP violation, script error, failed or external request', problems.slice(0, 8).join(' | '));
  await browser.close();
}

try {
  await main();
} catch (e) {
  bad(`the browser test stopped: ${e.message.split('\n')[0]}`);
}
clearTimeout(guard);
console.log(fails ? `# ${fails} browser check(s) failed` : '# all browser checks passed');
process.exit(fails ? 1 : 0);
