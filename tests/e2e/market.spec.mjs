// End-to-end test of the single window in headless Chromium, once in French
// and once in English, on a server started with `nuage serve --demo`:
// a visitor searches, filters and compares; a buyer orders the house's
// personal bundle and gets its bucket and S3 key at once; an organisation
// declares it uses a service; a provider lists
// an offer (a bad price is refused), the operator publishes it from the
// review queue, a buyer orders it and the provider delivers it.
//
// Run against a running demo server:
//   cd tests/e2e && npm install
//   NUAGE_CONSOLE_URL=http://127.0.0.1:PORT NUAGE_E2E_ROOT_TOKEN=… \
//     NUAGE_DEMO_CREDENTIALS=DATA_DIR/demo-credentials.txt node tests/e2e/market.spec.mjs

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const BASE = (process.env.NUAGE_CONSOLE_URL || '').replace(/\/+$/, '');
const ROOT = process.env.NUAGE_E2E_ROOT_TOKEN || '';
const CREDENTIALS = process.env.NUAGE_DEMO_CREDENTIALS || '';
if (!BASE || !ROOT || !CREDENTIALS) {
  console.error('set NUAGE_CONSOLE_URL, NUAGE_E2E_ROOT_TOKEN and NUAGE_DEMO_CREDENTIALS (a server started with --demo)');
  process.exit(2);
}

/** The demo accounts: e-mail → password. */
const DEMO = Object.fromEntries(
  readFileSync(CREDENTIALS, 'utf8')
    .split('\n')
    .filter((l) => l.includes('\t') && !l.startsWith('#'))
    .map((l) => l.split('\t').slice(0, 2)),
);
const BUYER = 'gerance@atelier.example';
const TOWN = 'dsi@belleville.example';
const PROVIDER = 'admin@cumulus.example';
const OPERATOR_PASSWORD = 'operator passphrase for the e2e run';

const RUNS = [
  {
    locale: 'fr-FR',
    lang: 'fr',
    email: 'Adresse e-mail',
    password: /^Mot de passe/,
    logIn: 'Se connecter',
    catalogue: 'Catalogue',
    search: 'Rechercher',
    results: /^Résultats/,
    loginToOrder: 'Connectez-vous pour commander',
    compareSubmit: 'Comparer les offres cochées',
    compareThis: 'Comparer',
    storedGb: 'Go stockés en moyenne',
    recompute: 'Recalculer',
    order: 'Commander',
    active: 'Votre abonnement est actif.',
    pending: 'Votre commande est transmise au fournisseur.',
    subscriptions: 'Abonnements',
    stateActive: 'actif',
    providerSpace: 'Espace fournisseur',
    newOffer: 'Nouvelle offre',
    offerName: "Nom de l'offre",
    perGb: /^Par Go-mois/,
    saveDraft: 'Enregistrer le brouillon',
    invalid: 'Certaines informations ne sont pas valides.',
    draft: 'brouillon',
    inReview: 'en relecture',
    submitReview: 'Soumettre à la relecture',
    review: 'Relecture',
    publish: 'Publier',
    deliver: 'Marquer livrée',
    note: /^Note/,
    declareUse: 'Nous utilisons ce logiciel',
    stopUsing: "Nous ne l'utilisons plus",
    usedBy: 'Utilisé par',
    service: 'Messagerie Azur',
    foreignWords: ['Filters', 'Subscriptions', 'Provider space', 'Results', 'Log in to order'],
  },
  {
    locale: 'en-US',
    lang: 'en',
    email: 'E-mail address',
    password: /^Password/,
    logIn: 'Log in',
    catalogue: 'Catalogue',
    search: 'Search',
    results: /^Results/,
    loginToOrder: 'Log in to order',
    compareSubmit: 'Compare the ticked offers',
    compareThis: 'Compare',
    storedGb: 'GB stored on average',
    recompute: 'Recompute',
    order: 'Order',
    active: 'Your subscription is active.',
    pending: 'Your order has been sent to the provider.',
    subscriptions: 'Subscriptions',
    stateActive: 'active',
    providerSpace: 'Provider space',
    newOffer: 'New offer',
    offerName: 'Offer name',
    perGb: /^Per GB-month/,
    saveDraft: 'Save the draft',
    invalid: 'Some of the information is not valid.',
    draft: 'draft',
    inReview: 'in review',
    submitReview: 'Submit for review',
    review: 'Review',
    publish: 'Publish',
    deliver: 'Mark delivered',
    note: /^Note/,
    declareUse: 'We use this software',
    stopUsing: 'We no longer use it',
    usedBy: 'Used by',
    service: 'Classe Ouverte',
    foreignWords: ['Filtres', 'Abonnements', 'Espace fournisseur', 'Résultats', 'Connectez-vous'],
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

after(async () => {
  await browser?.close();
});

async function assertLanguage(page, run) {
  assert.equal(await page.getAttribute('html', 'lang'), run.lang, 'the <html lang> attribute');
  const text = await page.locator('body').innerText();
  for (const word of run.foreignWords) {
    assert.ok(!text.includes(word), `"${word}" is not ${run.lang}: ${page.url()}`);
  }
}

async function api(method, path, body) {
  const response = await fetch(`${BASE}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${ROOT}`, 'content-type': 'application/json' },
    body: body && JSON.stringify(body),
  });
  return { status: response.status, body: await response.json().catch(() => null) };
}

for (const run of RUNS) {
  describe(`the single window in ${run.locale}`, () => {
    const unique = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    const offerName = `E2E ${run.lang} offer ${unique}`;
    const operator = `operator-${run.lang}-${unique}@example.fr`;
    const contexts = [];

    /** A page in a new browser context, logged in as `email` if given. */
    async function actor(email, password) {
      const context = await browser.newContext({ locale: run.locale, baseURL: BASE });
      contexts.push(context);
      const page = await context.newPage();
      page.setDefaultTimeout(15_000);
      if (email) {
        await page.goto('/login');
        await page.getByLabel(run.email).fill(email);
        await page.getByLabel(run.password).fill(password ?? DEMO[email]);
        await page.getByRole('button', { name: run.logIn }).click();
        await page.waitForURL(`${BASE}/`);
      }
      return page;
    }

    before(async () => {
      for (const email of [BUYER, TOWN, PROVIDER]) {
        assert.ok(DEMO[email], `the demo account ${email} is in the credentials file`);
      }
      const created = await api('POST', '/operators', { email: operator, password: OPERATOR_PASSWORD });
      assert.equal(created.status, 201, JSON.stringify(created.body));
    });

    after(async () => {
      for (const c of contexts) await c.close();
    });

    test('a visitor searches, filters by a facet and opens an offer', async () => {
      const page = await actor();
      await page.goto('/');
      await page.getByRole('link', { name: run.catalogue }).first().click();
      await page.waitForURL(/\/directory/);
      await page.getByRole('searchbox', { name: run.search }).fill('stockage');
      await page.getByRole('button', { name: run.search }).click();
      await page.waitForURL(/q=stockage/);
      const results = page.getByRole('region', { name: run.results });
      assert.ok(await results.getByRole('link', { name: 'Personnel 100 Go' }).isVisible());
      await assertLanguage(page, run);

      await page.getByRole('complementary').getByRole('link', { name: /secnumcloud/ }).click();
      await page.waitForURL(/certification=secnumcloud/);
      assert.ok(await results.getByRole('link', { name: 'Stockage objet souverain' }).isVisible());
      assert.equal(await results.getByRole('link', { name: 'Personnel 100 Go' }).count(), 0, 'the filter applies');

      await results.getByRole('link', { name: 'Stockage objet souverain' }).click();
      assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), 'Stockage objet souverain');
      assert.ok(await page.getByRole('link', { name: run.loginToOrder }).isVisible());
      await assertLanguage(page, run);
    });

    test('a visitor compares two offers for a usage of their own', async () => {
      const page = await actor();
      await page.goto('/directory?kind=offer&category=storage');
      await page.getByRole('checkbox', { name: `${run.compareThis} Personnel 100 Go` }).check();
      await page.getByRole('checkbox', { name: `${run.compareThis} Object Storage Standard` }).check();
      await page.getByRole('button', { name: run.compareSubmit }).click();
      await page.waitForURL(/\/compare/);
      const row = (name) => page.getByRole('row').filter({ has: page.getByRole('link', { name }) });
      // The reference month: 100 GB, 100,000 class A, 1,000,000 class B, 10 GB out.
      assert.ok((await row('Personnel 100 Go').innerText()).includes('1.50 €'));
      assert.ok((await row('Object Storage Standard').innerText()).includes('1.38 €'));
      await page.getByLabel(run.storedGb).fill('150');
      await page.getByRole('button', { name: run.recompute }).click();
      await page.waitForURL(/stored_gb=150/);
      assert.ok((await row('Object Storage Standard').innerText()).includes('1.63 €'));
      await assertLanguage(page, run);
    });

    test('a buyer orders the personal bundle and gets its bucket and S3 key at once', async () => {
      const page = await actor(BUYER);
      await page.goto('/directory?q=personnel&kind=offer');
      await page.getByRole('region', { name: run.results }).getByRole('link', { name: 'Personnel 100 Go' }).click();
      await page.getByRole('button', { name: run.order, exact: true }).click();
      await page.waitForURL(/\/order$/);
      assert.ok((await page.getByRole('status').first().innerText()).includes(run.active));
      const secret = await page.locator('#new-secret').innerText();
      assert.match(secret, /^[a-z2-7]{40}$/);
      const key = await page.locator('#new-access-key').innerText();
      await assertLanguage(page, run);

      await page.getByRole('navigation').getByRole('link', { name: run.subscriptions }).click();
      await page.waitForURL(/\/subscriptions$/);
      const text = await page.locator('main').innerText();
      assert.ok(text.includes('Personnel 100 Go') && text.includes(key), 'the subscription and its key are listed');
      assert.ok(text.includes(run.stateActive));
      assert.ok(!(await page.content()).includes(secret), 'the secret is not shown again');
      assert.ok(/sub-[0-9a-f]{20}/.test(text), 'the provisioned bucket is shown');
    });

    test('an organisation declares it uses a service, and it shows on the service page', async () => {
      const page = await actor(BUYER);
      await page.goto(`/directory?kind=service&q=${encodeURIComponent(run.service)}`);
      await page.getByRole('region', { name: run.results }).getByRole('link', { name: run.service }).click();
      const usedBy = () => page.locator('h2', { hasText: run.usedBy }).locator('xpath=following-sibling::*[1]').innerText();
      assert.equal(await page.title(), `${run.service} · Nuage`, 'the title is the service name alone');
      assert.ok(!(await usedBy()).includes('Atelier Exemple'));
      await page.getByRole('button', { name: run.declareUse }).click();
      await page.waitForURL(/notice=declaration_saved/);
      assert.ok((await usedBy()).includes('Atelier Exemple'), 'the declaration is public');
      assert.ok(await page.getByRole('button', { name: run.stopUsing }).isVisible());
      await assertLanguage(page, run);
    });

    test('a provider lists an offer: a bad price is refused, a good one is a draft sent for review', async () => {
      const page = await actor(PROVIDER);
      await page.getByRole('navigation').getByRole('link', { name: run.providerSpace }).click();
      await page.waitForURL(/\/provider$/);
      await page.getByRole('link', { name: run.newOffer }).click();
      await page.getByLabel(run.offerName).fill(offerName);
      await page.getByRole('checkbox', { name: /^fr-lyon/ }).check();
      await page.getByLabel(run.perGb).fill('-1');
      await page.getByRole('button', { name: run.saveDraft }).click();
      assert.ok((await page.getByRole('alert').innerText()).includes(run.invalid));
      assert.equal(await page.getByLabel(run.offerName).inputValue(), offerName, 'what was typed is kept');
      await assertLanguage(page, run);
      await page.goto('/provider');
      assert.equal(await page.getByRole('link', { name: offerName }).count(), 0, 'nothing was saved');

      await page.getByRole('link', { name: run.newOffer }).click();
      await page.getByLabel(run.offerName).fill(offerName);
      await page.getByRole('checkbox', { name: /^fr-lyon/ }).check();
      await page.getByLabel(run.perGb).fill('0.011');
      await page.getByRole('button', { name: run.saveDraft }).click();
      await page.waitForURL(/\/provider\?notice=sheet_saved/);
      const line = page.getByRole('row').filter({ has: page.getByRole('link', { name: offerName }) });
      assert.ok((await line.innerText()).includes(run.draft));
      await line.getByRole('button', { name: `${run.submitReview} ${offerName}` }).click();
      await page.waitForURL(/notice=sheet_moved/);
      assert.ok((await page.getByRole('row').filter({ has: page.getByRole('link', { name: offerName }) }).innerText()).includes(run.inReview));
    });

    test('the operator publishes it from the review queue, and visitors find it', async () => {
      const page = await actor(operator, OPERATOR_PASSWORD);
      await page.getByRole('navigation').getByRole('link', { name: run.review }).click();
      await page.waitForURL(/\/operator\/review$/);
      const card = page.getByRole('region', { name: new RegExp(offerName) });
      await card.getByRole('button', { name: run.publish }).click();
      await page.waitForURL(/notice=review_done/);
      assert.equal(await page.getByRole('region', { name: new RegExp(offerName) }).count(), 0);
      await assertLanguage(page, run);

      const visitor = await actor();
      await visitor.goto(`/directory?q=${encodeURIComponent(offerName)}`);
      assert.ok(await visitor.getByRole('link', { name: offerName }).isVisible());
    });

    test('a buyer orders it, the provider delivers it, the buyer sees it active', async () => {
      const buyer = await actor(TOWN);
      await buyer.goto(`/directory?q=${encodeURIComponent(offerName)}`);
      await buyer.getByRole('link', { name: offerName }).click();
      await buyer.getByRole('button', { name: run.order, exact: true }).click();
      await buyer.waitForURL(/\/order$/);
      assert.ok((await buyer.getByRole('status').first().innerText()).includes(run.pending));
      assert.equal(await buyer.locator('#new-secret').count(), 0, 'nothing is provisioned by the house');

      const provider = await actor(PROVIDER);
      await provider.goto('/provider');
      const sale = provider.getByRole('region', { name: new RegExp(`${offerName}.*Belleville`) });
      await sale.getByLabel(run.note).fill(`Delivered ${unique}`);
      await sale.getByRole('button', { name: run.deliver }).click();
      await provider.waitForURL(/notice=order_updated/);

      await buyer.goto('/subscriptions');
      const mine = buyer.getByRole('region', { name: new RegExp(offerName) });
      const text = await mine.innerText();
      assert.ok(text.includes(run.stateActive) && text.includes(`Delivered ${unique}`), text);
      await assertLanguage(buyer, run);
    });
  });
}
