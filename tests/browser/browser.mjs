// Debian's chromium, headless, driven by playwright-core for the browser tests: contexts that carry
// a token the way the page keeps it (sessionStorage, never a URL), and a record of what every page
// did: its requests, console errors (CSP violations among them), uncaught errors and dialogs.
import { chromium } from '../../web/node_modules/playwright-core/index.mjs';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { sourceRoot } from './farm.mjs';

export const CHROMIUM = process.env.ASSAY_CHROMIUM || '/usr/bin/chromium';
export const VIEWPORT = { width: 1280, height: 800 };

export function launch() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
}

// What the pages of every context did, for the tests' final checks.
export class Record {
  constructor() {
    this.requests = [];      // every URL requested
    this.consoleErrors = []; // console errors (a CSP violation is one)
    this.pageErrors = [];    // uncaught exceptions
    this.dialogs = [];       // alert/confirm/prompt: none may open
  }

  watchPage(page) {
    page.on('console', (m) => { if (m.type() === 'error') this.consoleErrors.push(`${page.url()}: ${m.text()}`); });
    page.on('pageerror', (e) => this.pageErrors.push(`${page.url()}: ${e.message}`));
    page.on('dialog', (d) => { this.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  }
}

// A browser context for one role: with a token it is put in sessionStorage before the page's
// scripts run (as the token form would), without one the page must ask.
export async function newContext(browser, record, token = '') {
  const context = await browser.newContext({ viewport: VIEWPORT });
  if (token) {
    await context.addInitScript((t) => {
      if (location.protocol === 'http:') sessionStorage.setItem('assay.token', t);  // not on about:blank
    }, token);
  }
  await context.addInitScript(() => {
    window.__longTasks = [];
    try {
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) window.__longTasks.push({ start: e.startTime, duration: e.duration });
      }).observe({ type: 'longtask', buffered: true });
    } catch { /* no long-task timing */ }
  });
  context.on('request', (r) => record.requests.push(r.url()));
  context.on('page', (p) => record.watchPage(p));
  return context;
}

// Saves docs/dashboard/NAME.png when ASSAY_SCREENSHOTS=1.
export async function screenshot(page, name) {
  if (process.env.ASSAY_SCREENSHOTS !== '1') return;
  const dir = path.join(sourceRoot, 'docs/dashboard');
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`) });
}

// The text of the page's main area.
export const mainText = (page) => page.innerText('main');
