// Drives the presenced dashboard in Debian's headless Chromium, for
// integration/dashboard_test.go:
//
//   node dashboard.mjs URL JID TEXT1 TEXT2 SCREENSHOT
//
// opens URL, prints "ready" once the page says its stream is live, waits
// until the row data-jid=JID shows TEXT1 as its status and prints
// "seen TEXT1", then waits for TEXT2 and prints "seen TEXT2", each followed
// by a "state {...}" line (JSON: the row's show, status and resource count,
// the connection state, the last seq, the counts by show, every row's jid,
// show and status) for the test to check. Then it saves a screenshot to SCREENSHOT and exits
// 0. It exits 1 with a message on stderr when a wait times out (30s each),
// when the page throws, or on any other error. CHROMIUM overrides the
// browser's path.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const TIMEOUT = 30_000;
const [url, jid, text1, text2, shot] = process.argv.slice(2);
if (!shot) {
  console.error('usage: node dashboard.mjs URL JID TEXT1 TEXT2 SCREENSHOT');
  process.exit(2);
}

const profile = mkdtempSync(join(tmpdir(), 'presenced-chromium-'));
let context;
let failed = false;

function fail(msg) {
  console.error(`dashboard.mjs: ${msg}`);
  failed = true;
}

try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    viewport: { width: 1200, height: 800 },
    timeout: TIMEOUT,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const pageErrors = [];
  page.on('pageerror', (err) => {
    pageErrors.push(err.message);
    console.error(`page error: ${err.message}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') console.error(`page console ${m.type()}: ${m.text()}`);
  });

  await page.goto(url, { timeout: TIMEOUT });
  try {
    await page.locator('#conn[data-state="live"]').waitFor({ timeout: TIMEOUT });
  } catch {
    throw new Error(`timed out after ${TIMEOUT / 1000}s waiting for the stream to be live; ` +
      `connection: ${await page.locator('#conn-text').textContent()}`);
  }
  console.log('ready');
  const row = page.locator(`tr[data-jid="${jid}"]`);

  for (const text of [text1, text2]) {
    try {
      await row.locator('.status').filter({ hasText: text }).waitFor({ timeout: TIMEOUT });
    } catch {
      const seen = (await row.count()) ? await row.locator('.status').textContent() : '(no row)';
      throw new Error(`timed out after ${TIMEOUT / 1000}s waiting for ${jid}'s status "${text}"; ` +
        `it shows "${seen}"; connection: ${await page.locator('#conn-text').textContent()}`);
    }
    console.log(`seen ${text}`);
    const state = await page.evaluate((j) => {
      const tr = document.querySelector(`tr[data-jid="${j}"]`);
      const counts = {};
      for (const li of document.querySelectorAll('#counts li')) counts[li.dataset.show] = Number(li.querySelector('.n').textContent);
      return {
        show: tr.querySelector('.show').textContent,
        status: tr.querySelector('.status').textContent,
        resources: Number(tr.querySelector('.resources .n').textContent),
        conn: document.querySelector('#conn').dataset.state,
        seq: document.querySelector('#seq').textContent,
        counts,
        rows: [...document.querySelectorAll('#users tr')].map((r) => ({
          jid: r.dataset.jid,
          show: r.querySelector('.show').textContent,
          status: r.querySelector('.status').textContent,
        })),
      };
    }, jid);
    console.log(`state ${JSON.stringify(state)}`);
  }

  // Let the chart take a few more samples so the screenshot shows a line.
  await page.waitForTimeout(2000);
  await page.screenshot({ path: shot, fullPage: true });
  if (pageErrors.length) fail(`the page threw ${pageErrors.length} error(s): ${pageErrors.join('; ')}`);
} catch (err) {
  fail(err.message);
} finally {
  await context?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
