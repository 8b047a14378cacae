// End-to-end test of the usage and billing page in headless Chromium, in
// French and in English: an organisation's owner sees the month's usage as
// charts and a table, the forecast of the month's bill, sets quota alert
// thresholds (a bad value is refused with a readable message), makes an
// export key to leave the platform (a second is refused), and a plain
// member is told that amounts are not for them.
//
// Run against a running server (see market.spec.mjs):
//   NUAGE_CONSOLE_URL=http://127.0.0.1:PORT NUAGE_E2E_ROOT_TOKEN=… node tests/e2e/billing.spec.mjs

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const BASE = (process.env.NUAGE_CONSOLE_URL || '').replace(/\/+$/, '');
const ROOT = process.env.NUAGE_E2E_ROOT_TOKEN || '';
if (!BASE || !ROOT) {
  console.error('set NUAGE_CONSOLE_URL and NUAGE_E2E_ROOT_TOKEN');
  process.exit(2);
}
const PASSWORD = 'billing passphrase for the e2e run';

const RUNS = [
  {
    locale: 'fr-FR', lang: 'fr', email: 'Adresse e-mail', password: /^Mot de passe/, logIn: 'Se connecter',
    nav: 'Consommation', title: 'Consommation et factures', chartStorage: 'Stockage (Go)',
    chartRequests: 'Requêtes', forecast: /^Facture prévue du mois/, thresholds: "Seuils d'alerte (% du quota)",
    save: 'Enregistrer les seuils', saved: 'Le réglage est enregistré.', invalid: 'Certaines informations ne sont pas valides.',
    noInvoice: "Aucune facture pour l'instant.", restricted: 'réservés aux propriétaires',
    revenue: "Chiffre d'affaires", show: 'Afficher', csv: 'Télécharger en CSV',
    exportSubmit: "Créer une clé d'export", exportPurpose: 'Export (départ), expire le', conflict: "Impossible dans l'état actuel.",
    foreignWords: ['Usage and invoices', 'Forecast', 'Invoices', 'Save thresholds'],
  },
  {
    locale: 'en-US', lang: 'en', email: 'E-mail address', password: /^Password/, logIn: 'Log in',
    nav: 'Usage', title: 'Usage and invoices', chartStorage: 'Storage (GB)',
    chartRequests: 'Requests', forecast: /^This month's forecast bill/, thresholds: 'Alert thresholds (% of the quota)',
    save: 'Save thresholds', saved: 'The setting is saved.', invalid: 'Some of the information is not valid.',
    noInvoice: 'No invoice yet.', restricted: 'for owners, admins and billing members',
    revenue: 'Revenue', show: 'Show', csv: 'Download as CSV',
    exportSubmit: 'Create an export key', exportPurpose: 'Export (leaving), expires', conflict: 'Not possible in the current state.',
    foreignWords: ['Consommation et factures', 'Facture prévue', 'Enregistrer les seuils'],
  },
];

let browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
after(async () => { await browser?.close(); });

async function api(method, path, body) {
  const response = await fetch(`${BASE}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${ROOT}`, 'content-type': 'application/json' },
    body: body && JSON.stringify(body),
  });
  return { status: response.status, body: await response.json().catch(() => null) };
}

for (const run of RUNS) {
  describe(`the usage and billing page in ${run.locale}`, () => {
    const unique = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    const owner = `owner-${run.lang}-${unique}@billing.example`;
    const member = `member-${run.lang}-${unique}@billing.example`;
    const operator = `operator-${run.lang}-${unique}@billing.example`;
    const contexts = [];

    async function actor(email) {
      const context = await browser.newContext({ locale: run.locale, baseURL: BASE });
      contexts.push(context);
      const page = await context.newPage();
      page.setDefaultTimeout(15_000);
      await page.goto('/login');
      await page.getByLabel(run.email).fill(email);
      await page.getByLabel(run.password).fill(PASSWORD);
      await page.getByRole('button', { name: run.logIn }).click();
      await page.waitForURL(`${BASE}/`);
      return page;
    }

    before(async () => {
      const org = await api('POST', '/orgs', { name: `Facturé ${run.lang} ${unique}`, kind: 'company' });
      assert.equal(org.status, 201, JSON.stringify(org.body));
      for (const [email, role] of [[owner, 'owner'], [member, 'member']]) {
        const user = await api('POST', '/users', { org_id: org.body.id, email, password: PASSWORD, role });
        assert.equal(user.status, 201, JSON.stringify(user.body));
      }
      const op = await api('POST', '/operators', { email: operator, password: PASSWORD });
      assert.equal(op.status, 201, JSON.stringify(op.body));
      const found = await (await fetch(`${BASE}/api/v1/directory/search?kind=offer&q=personnel`)).json();
      const order = await api('POST', `/orgs/${org.body.id}/orders`, { offer_id: found.hits[0].id });
      assert.equal(order.status, 201, JSON.stringify(order.body));
      // Usage of this hour, as a meter would deliver it.
      const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000;
      const usage = await api('POST', '/usage-records', { records: [{
        id: `e2e-${unique}`, org_id: org.body.id, bucket: order.body.subscription.resources.buckets[0],
        hour_ms: hour, class_a: 40, class_b: 300, egress_bytes: 2_000_000_000,
      }] });
      assert.equal(usage.status, 200, JSON.stringify(usage.body));
    });

    after(async () => { for (const c of contexts) await c.close(); });

    test('an owner sees the month as charts, the forecast bill, and sets quota alerts', async () => {
      const page = await actor(owner);
      await page.getByRole('navigation').getByRole('link', { name: run.nav, exact: true }).click();
      await page.waitForURL(/\/billing$/);
      assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), `${run.title} · Facturé ${run.lang} ${unique}`);
      assert.ok(await page.getByRole('img', { name: run.chartStorage }).isVisible());
      assert.ok(await page.getByRole('img', { name: run.chartRequests }).isVisible());
      // The table behind the charts has today's 340 requests.
      assert.ok((await page.locator('#usage-days').textContent()).includes('340'));
      // The personal bundle (1.50 € a month) from today, prorated to the
      // days left in the month (today included), plus 20 % VAT.
      assert.ok(await page.getByRole('heading', { name: run.forecast }).isVisible());
      const now = new Date();
      const days = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 0)).getUTCDate();
      const net = Math.round((150 * (days - now.getUTCDate() + 1)) / days);
      const gross = net + Math.round(net * 0.2);
      assert.equal(await page.locator('#forecast-gross').innerText(), (gross / 100).toFixed(2));
      assert.ok((await page.locator('#invoices').innerText()).includes(run.noInvoice));
      const text = await page.locator('body').innerText();
      for (const word of run.foreignWords) assert.ok(!text.includes(word), `"${word}" is not ${run.lang}`);

      // A threshold over 100 is refused, readably, and nothing is saved.
      await page.getByLabel(run.thresholds).fill('80, 120');
      await page.getByRole('button', { name: run.save }).click();
      assert.ok((await page.getByRole('alert').innerText()).includes(run.invalid));
      assert.equal(await page.getByLabel(run.thresholds).getAttribute('aria-invalid'), 'true');
      assert.equal(await page.getByLabel(run.thresholds).inputValue(), '80, 120', 'the input is kept');

      await page.getByLabel(run.thresholds).fill('95, 80');
      await page.getByRole('button', { name: run.save }).click();
      await page.waitForURL(/notice=setting_saved/);
      assert.ok((await page.getByRole('status').first().innerText()).includes(run.saved));
      assert.equal(await page.getByLabel(run.thresholds).inputValue(), '80, 95');
    });

    test('an owner leaving the platform makes one export key, not two', async () => {
      const page = await actor(owner);
      await page.goto('/s3-keys');
      await page.getByRole('button', { name: run.exportSubmit }).click();
      assert.ok(await page.locator('#new-secret').isVisible(), 'the secret is shown once');
      const id = await page.locator('code.secret-value').first().innerText();
      const row = page.getByRole('row').filter({ hasText: id });
      assert.ok((await row.innerText()).includes(run.exportPurpose), await row.innerText());
      // A second one is refused, readably, and none is made.
      await page.goto('/s3-keys');
      await page.getByRole('button', { name: run.exportSubmit }).click();
      assert.ok((await page.locator('main').innerText()).includes(run.conflict));
      await page.goto('/s3-keys');
      assert.equal(await page.getByRole('row').filter({ hasText: run.exportPurpose }).count(), 1);
    });

    test('a plain member sees the usage, not the amounts', async () => {
      const page = await actor(member);
      await page.goto('/billing');
      assert.ok(await page.getByRole('img', { name: run.chartStorage }).isVisible());
      assert.ok((await page.locator('main').innerText()).includes(run.restricted));
      assert.equal(await page.locator('#forecast').count(), 0);
      assert.equal(await page.locator('#invoices').count(), 0);
    });

    test('the operator reads revenue per month, provider and offer, and downloads it as CSV', async () => {
      const page = await actor(operator);
      await page.getByRole('navigation').getByRole('link', { name: run.revenue, exact: true }).click();
      await page.waitForURL(/\/operator\/revenue$/);
      assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), run.revenue);
      await page.getByRole('button', { name: run.show }).click();
      await page.waitForURL(/from=\d{4}-\d{2}&to=\d{4}-\d{2}/);
      const href = await page.getByRole('link', { name: run.csv }).getAttribute('href');
      const csv = await page.request.get(href);
      assert.equal(csv.status(), 200);
      assert.match(csv.headers()['content-type'], /^text\/csv/);
      assert.ok((await csv.text()).startsWith('month,provider_id,provider_name,offer,net_eur,invoices'));
      // A month that does not exist is refused, readably.
      const response = await page.goto('/operator/revenue?from=2026-13&to=2026-12');
      assert.equal(response.status(), 400);
      assert.ok((await page.getByRole('alert').innerText()).includes(run.invalid));
      // Nobody else reads it.
      const owned = await actor(owner);
      const refused = await owned.goto('/operator/revenue');
      assert.equal(refused.status(), 403);
    });
  });
}
