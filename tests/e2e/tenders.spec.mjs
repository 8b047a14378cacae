// End-to-end test of the public calls for tender pages in headless
// Chromium, in French and in English, as a visitor without an account, on a
// server started with --demo: the list of published calls with their
// status, a call's page (lots, requirements, weighted criteria, versions),
// and its open data.
//
// and, with the demo's credentials, a provider finds the open call that its
// offer meets on its space.
//
// Run against a running demo server (see market.spec.mjs):
//   NUAGE_CONSOLE_URL=http://127.0.0.1:PORT NUAGE_DEMO_CREDENTIALS=DATA_DIR/demo-credentials.txt \
//     node tests/e2e/tenders.spec.mjs

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const BASE = (process.env.NUAGE_CONSOLE_URL || '').replace(/\/+$/, '');
if (!BASE) {
  console.error('set NUAGE_CONSOLE_URL');
  process.exit(2);
}

const RUNS = [
  {
    locale: 'fr-FR', nav: "Appels d'offres", open: 'Ouvert aux offres', closed: "Clos, en attente d'ouverture",
    criteria: "Critères d'attribution", jurisdiction: 'Juridiction : FR', technical: 'Technique (0–20)',
    openData: 'Données ouvertes (OCDS)', sealed: 'Plis scellés',
    email: 'Adresse e-mail', password: /^Mot de passe/, logIn: 'Se connecter', matching: "Appels d'offres pour vos offres",
    foreignWords: ['Calls for tender', 'Award criteria', 'Open for bids', 'Deadline for bids'],
  },
  {
    locale: 'en-US', nav: 'Calls for tender', open: 'Open for bids', closed: 'Closed, awaiting opening',
    criteria: 'Award criteria', jurisdiction: 'Jurisdiction : FR', technical: 'Technical (0–20)',
    openData: 'Open data (OCDS)', sealed: 'Sealed bids',
    email: 'E-mail address', password: /^Password/, logIn: 'Log in', matching: 'Calls for tender for your offers',
    foreignWords: ["Appels d'offres", "Critères d'attribution", 'Ouvert aux offres', 'Date limite de remise'],
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

const CREDENTIALS = process.env.NUAGE_DEMO_CREDENTIALS || '';

for (const run of RUNS) {
  describe(`the calls for tender in ${run.locale}`, () => {
    test('a visitor finds the calls, reads one and its open data', async () => {
      const context = await browser.newContext({ locale: run.locale, baseURL: BASE });
      try {
        const page = await context.newPage();
        page.setDefaultTimeout(15_000);
        await page.goto('/directory');
        await page.getByRole('navigation').getByRole('link', { name: run.nav, exact: true }).click();
        await page.waitForURL(/\/tenders$/);
        assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), run.nav);
        const rows = page.locator('#tenders tbody tr');
        assert.equal(await rows.count(), 2, 'the demo publishes two calls');
        const open = rows.filter({ hasText: 'archives municipales' });
        assert.ok((await open.innerText()).includes(run.open));
        assert.ok((await rows.filter({ hasText: 'sauvegardes' }).innerText()).includes(run.closed));

        await open.getByRole('link').click();
        await page.waitForURL(/\/tenders\/[0-9a-f-]{36}$/);
        assert.match(await page.getByRole('heading', { level: 1 }).innerText(), /archives municipales/);
        assert.ok(await page.getByRole('heading', { name: run.criteria }).isVisible());
        const criteria = await page.locator('#criteria').innerText();
        assert.match(criteria, /prix[^\n]*60/);
        assert.ok(criteria.includes(run.technical), criteria);
        assert.ok((await page.locator('main').innerText()).includes(run.jurisdiction));
        assert.ok((await page.locator('main').innerText()).includes(run.sealed));
        const text = await page.locator('body').innerText();
        for (const word of run.foreignWords) assert.ok(!text.includes(word), `"${word}" is not ${run.locale}`);

        const href = await page.getByRole('link', { name: run.openData }).getAttribute('href');
        const ocds = await page.request.get(href);
        assert.equal(ocds.status(), 200);
        const pkg = await ocds.json();
        assert.equal(pkg.version, '1.1');
        assert.deepEqual(pkg.releases[0].tag, ['tender']);

        // A provider whose storage offer meets the open call's lot finds it
        // on its space, with a link to the call.
        if (CREDENTIALS) {
          const { readFileSync } = await import('node:fs');
          const line = readFileSync(CREDENTIALS, 'utf8').split('\n').find((l) => l.startsWith('admin@cumulus.example\t'));
          const [email, password] = line.split('\t');
          const provider = await context.newPage();
          await provider.goto('/login');
          await provider.getByLabel(run.email).fill(email);
          await provider.getByLabel(run.password).fill(password);
          await provider.getByRole('button', { name: run.logIn }).click();
          await provider.waitForURL(`${BASE}/`);
          await provider.goto('/provider');
          assert.ok(await provider.getByRole('heading', { name: run.matching }).isVisible());
          assert.match(await provider.locator('#matching-calls').innerText(), /archives municipales/);
          assert.doesNotMatch(await provider.locator('#matching-calls').innerText(), /sauvegardes/, 'a closed call is not offered');
        }

        // A call that does not exist is a readable 404.
        const missing = await page.goto('/tenders/00000000-0000-7000-8000-000000000000');
        assert.equal(missing.status(), 404);
      } finally {
        await context.close();
      }
    });
  });
}
