/**
 * The operator's view in a real browser (Debian's Chromium driven by playwright-core, no browser
 * download): the API docs page, then the run in the Temporal Web UI, found by the service's search
 * attribute and opened from the API's temporal_ui_url. Screenshots go to test-artifacts/.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { admin, auth, createService, readyEnvironment, waitForStatus } from '../support/fixtures';
import { startStack, type TestStack } from '../support/stack';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const ARTIFACTS = path.resolve(__dirname, '../../test-artifacts');
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium)
  console.warn(`operator-view: skipped, no Chromium at ${CHROMIUM} (apt-get install chromium)`);

(haveChromium ? describe : describe.skip)('operator view in Chromium', () => {
  let stack: TestStack;
  let browser: Browser;
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    stack = await startStack({ worker: true });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.close();
  });

  it('shows the docs, finds the run by search attribute and opens it from temporal_ui_url', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`${stack.baseUrl}/api/docs`);
    await expect(page.locator('h1').textContent()).resolves.toContain('Internal Developer Platform API');
    await expect(page.getByText('/api/deployments/{id}/approvals').count()).resolves.toBeGreaterThan(0);
    await page.screenshot({ path: path.join(ARTIFACTS, 'api-docs.png'), fullPage: false });

    const service = await createService(stack);
    const env = await readyEnvironment(stack, service.id, 'dev');
    const res = await stack.http
      .post(`/api/services/${service.id}/environments/${env.id}/deployments`)
      .set(auth(admin))
      .send({ version: '1.2.3' });
    expect(res.status).toBe(202);
    const deployment = await waitForStatus(stack, res.body.id, 'succeeded');

    const ui = process.env['IDP_TEST_TEMPORAL_UI']!;
    const query = encodeURIComponent(`IdpService="${service.name}"`);
    await page.goto(`${ui}/namespaces/default/workflows?query=${query}`);
    await page.getByText(deployment.job_id).first().waitFor({ timeout: 30_000 });
    await page.screenshot({ path: path.join(ARTIFACTS, 'temporal-ui-list.png') });
    // Only this service's runs are listed: its provisioning and its deployment.
    await expect(page.getByText(`provision-${service.name}-dev-${env.id}`).count()).resolves.toBeGreaterThan(
      0,
    );

    await page.goto(deployment.temporal_ui_url);
    await page.getByText(deployment.job_id).first().waitFor({ timeout: 30_000 });
    await page
      .getByText(/completed/i)
      .first()
      .waitFor({ timeout: 30_000 });
    await page.screenshot({ path: path.join(ARTIFACTS, 'temporal-ui-run.png') });
  });
});
