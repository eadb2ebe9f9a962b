import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type App } from '../support/apps.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { putKeys, settled, startLbWith } from '../support/lb.js';
import { waitFor } from '../support/wait.js';

// The dashboard in a real browser (Debian's chromium driven by playwright-core) against a real
// edgelb with its etcd and HAProxy: live updates, health as HAProxy sees it, rejections, axe-core.

const CHROMIUM = '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
if (!HAVE_CHROMIUM) console.log(`dashboard browser test skipped: ${CHROMIUM} is missing (apt-get install chromium)`);

const ROOT = path.resolve(import.meta.dirname, '../..');
// Screenshots go to docs/ only when asked (they are committed); otherwise to a temp dir.
const SHOT_DIR = process.env.EDGELB_DASHBOARD_SCREENSHOTS === 'docs' ? path.join(ROOT, 'docs') : path.join(os.tmpdir(), 'edgelb-dashboard-shots');

let etcd: EtcdServer;
let lb: TestEdgelb;
let browser: Browser;
let page: Page;
let web: App;
let live: App;
const consoleErrors: string[] = [];
const weight = { html: 0, js: 0, css: 0 };

function adminUrl(pathname = '/'): string {
  return `http://127.0.0.1:${lb.config.adminPort}${pathname}`;
}

/** The text and background colour of an instance's health badge, or undefined while it is not shown. */
async function instanceHealth(name: string): Promise<{ text: string; background: string } | undefined> {
  const badge = page.locator('#instances tr', { has: page.locator('th', { hasText: new RegExp(`^${name}$`) }) }).locator('.badge');
  if ((await badge.count()) !== 1) return undefined;
  return badge.evaluate((el) => ({ text: el.textContent ?? '', background: getComputedStyle(el).backgroundColor }));
}

async function waitForHealth(name: string, word: string, timeoutMs = 20_000): Promise<{ text: string; background: string }> {
  let last: unknown;
  return waitFor(
    async () => {
      last = await instanceHealth(name);
      return (last as { text: string } | undefined)?.text.includes(word) ? (last as { text: string; background: string }) : undefined;
    },
    { timeoutMs, intervalMs: 100, what: `instance ${name} to show "${word}" on the dashboard (last: ${JSON.stringify(last)})` },
  );
}

describe.skipIf(!HAVE_CHROMIUM)('the dashboard in a real browser', () => {
  beforeAll(async () => {
    etcd = await startEtcd();
    web = await startApp({ name: 'web' });
    live = await startApp({ name: 'live' });
    lb = await startLbWith(etcd, {
      'services/web/virtual_hosts': 'web.example.com',
      'services/web/virtual_path': '/shop',
      'services/web/upstreams/web-1': web.address,
      'services/bad/virtual_hosts': 'not a host!',
      'services/bad/upstreams/x': web.address,
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(error.message));
    page.on('response', async (response) => {
      const type = response.headers()['content-type'] ?? '';
      const kind = type.startsWith('text/html') ? 'html' : type.startsWith('text/javascript') ? 'js' : type.startsWith('text/css') ? 'css' : undefined;
      if (kind) weight[kind] += (await response.body().catch(() => Buffer.alloc(0))).length;
    });
    await mkdir(SHOT_DIR, { recursive: true });
  });

  afterAll(async () => {
    await browser?.close();
    await lb?.stopAll();
    await Promise.all([web?.close(), live?.close()]);
    await etcd?.stop();
  });

  it('loads without console errors and reports its weight and first paint', async () => {
    const response = await page.goto(adminUrl('/'), { waitUntil: 'load' });
    expect(response?.status()).toBe(200);
    expect(response?.headers()['content-type']).toBe('text/html; charset=utf-8');
    expect(response?.headers()['cache-control']).toBe('no-store');
    const fcp = await waitFor(() => page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime), {
      timeoutMs: 10_000,
      what: 'the first contentful paint entry',
    });
    await waitFor(() => page.evaluate(() => document.getElementById('connection')?.textContent?.startsWith('Live')), {
      timeoutMs: 10_000,
      what: 'the event stream to connect',
    });
    const total = weight.html + weight.js + weight.css;
    console.log(`dashboard page weight: ${total} bytes (HTML ${weight.html}, JS ${weight.js}, CSS ${weight.css}); first contentful paint ${fcp.toFixed(0)} ms`);
    expect(weight.js).toBeGreaterThan(0);
    expect(weight.css).toBeGreaterThan(0);
    const services = await page.locator('#services').textContent();
    expect(services).toContain('web.example.com');
    expect(services).toContain('/shop');
    expect(consoleErrors).toEqual([]);
  });

  it('shows a service written to etcd without a reload', async () => {
    await settled(lb, await putKeys(etcd, lb, { 'services/live/virtual_hosts': 'live.example.com', 'services/live/upstreams/live-1': live.address }));
    await waitFor(
      () =>
        page
          .locator('#services')
          .textContent()
          .then((t) => t?.includes('live.example.com')),
      {
        timeoutMs: 10_000,
        what: 'the new service on the dashboard',
      },
    );
    const up = await waitForHealth('live-1', 'up');
    expect(up.background).not.toBe('rgb(220, 38, 38)');
  });

  it('turns an instance red and "down" when its backend dies, and back when it returns', async () => {
    const port = live.port;
    await live.close();
    const started = Date.now();
    const down = await waitForHealth('live-1', 'down');
    console.log(`dashboard showed live-1 down ${Date.now() - started} ms after its backend was killed`);
    expect(down.background).toBe('rgb(220, 38, 38)');
    await page.screenshot({ path: path.join(SHOT_DIR, 'dashboard-instance-down.png'), fullPage: false });
    live = await startApp({ name: 'live', port });
    const up = await waitForHealth('live-1', 'up');
    expect(up.background).not.toBe('rgb(220, 38, 38)');
  });

  it('shows a rejected entry with its key and reason', async () => {
    const rows = page.locator('#rejected tr', { hasText: 'services/bad/virtual_hosts' });
    expect(await rows.count()).toBe(1);
    const reason = lb.controller.status().rejected.find((r) => r.key === 'services/bad/virtual_hosts')?.reason ?? 'missing';
    const text = await rows.textContent();
    expect(text).toContain(reason);
    expect(text).toContain('rejected');
  });

  it('passes axe-core with no serious or critical violations', async () => {
    // Evaluated through the DevTools protocol: the page's policy rightly refuses an injected <script>.
    await page.evaluate(readFileSync(path.join(ROOT, 'node_modules/axe-core/axe.min.js'), 'utf8'));
    const violations = await page.evaluate(async () => {
      const result = await (
        window as unknown as { axe: { run(): Promise<{ violations: { id: string; impact: string; help: string; nodes: unknown[] }[] }> } }
      ).axe.run();
      return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length }));
    });
    if (violations.length > 0) console.log('axe-core (minor and moderate):', JSON.stringify(violations));
    expect(violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')).toEqual([]);
    await page.screenshot({ path: path.join(SHOT_DIR, 'dashboard.png'), fullPage: true });
    expect(consoleErrors).toEqual([]);
  });

  it('is readable without JavaScript', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    try {
      const plain = await context.newPage();
      await plain.goto(adminUrl('/'));
      expect(await plain.locator('#services').textContent()).toContain('live.example.com');
      expect(await plain.locator('#rejected').textContent()).toContain('services/bad/virtual_hosts');
      expect(await plain.locator('noscript').count()).toBe(1);
    } finally {
      await context.close();
    }
  });
});
