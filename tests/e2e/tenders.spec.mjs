// End-to-end test of the public calls for tender pages in headless
// Chromium, in French and in English, as a visitor without an account, on a
// server started with --demo: the list of published calls with their
// status, a call's page (lots, requirements, weighted criteria, versions),
// and its open data.
//
// and, with the demo's credentials, a provider finds the open call that its
// offer meets on its space.
//
// Then a whole procedure in the browser, the buyer in French and the bidders
// in English: the buyer drafts a call closing a minute ahead, attaches a
// document (which a bidder downloads), publishes it
// with an opening key made in its browser (downloaded, never sent), amends
// it, answers a question; two providers seal their bids in their browsers; after the
// deadline the buyer is refused a wrong key, opens with the downloaded one,
// marks, ranks and awards, and is refused the signature inside the standstill.
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

const readCredentials = async () => {
  const { readFileSync } = await import('node:fs');
  const lines = readFileSync(CREDENTIALS, 'utf8').split('\n');
  return (email) => lines.find((l) => l.startsWith(`${email}\t`)).split('\t')[1];
};

const logIn = async (context, email, password, labels) => {
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  await page.goto('/login');
  await page.getByLabel(labels.email).fill(email);
  await page.getByLabel(labels.password).fill(password);
  await page.getByRole('button', { name: labels.logIn }).click();
  await page.waitForURL(`${BASE}/`);
  return page;
};

// A datetime-local value in the browser's time zone, to the second.
const localInput = (date) => {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
};

describe('a whole call for tender in the browser', { skip: !CREDENTIALS && 'needs NUAGE_DEMO_CREDENTIALS' }, () => {
  test('draft, publish with a browser-made key, sealed bids, opening, marks, award', async () => {
    const password = await readCredentials();
    const fr = await browser.newContext({ locale: 'fr-FR', baseURL: BASE, acceptDownloads: true });
    const en = await browser.newContext({ locale: 'en-US', baseURL: BASE });
    const en2 = await browser.newContext({ locale: 'en-US', baseURL: BASE });
    const FR = { email: 'Adresse e-mail', password: /^Mot de passe/, logIn: 'Se connecter' };
    const EN = { email: 'E-mail address', password: /^Password/, logIn: 'Log in' };
    try {
      // The buyer drafts the call.
      const buyer = await logIn(fr, 'dsi@belleville.example', password('dsi@belleville.example'), FR);
      await buyer.goto('/tenders');
      await buyer.getByRole('link', { name: "Rédiger un appel d'offres" }).click();
      await buyer.waitForURL(/\/tenders\/new$/);
      const title = `Stockage des délibérations ${Date.now()}`;
      const deadline = new Date(Date.now() + 60_000);
      await buyer.getByLabel('Objet').fill(title);
      await buyer.getByLabel('Description', { exact: true }).first().fill('Conservation des délibérations numérisées, en France.');
      await buyer.getByLabel(/^Valeur estimée/).fill('30000');
      await buyer.getByLabel('Date limite de remise').fill(localInput(deadline));
      await buyer.getByLabel("Intitulé du lot").first().fill('Stockage objet');
      await buyer.locator('#lot1_stored_gb').fill('500');
      await buyer.locator('#lot1_class_a').fill('100000');
      await buyer.locator('#lot1_class_b').fill('1000000');
      await buyer.locator('#lot1_egress_gb').fill('20');
      await buyer.locator('#lot1_jurisdictions').fill('FR');
      await buyer.locator('#crit1_name').fill('prix');
      await buyer.locator('#crit2_name').fill('réversibilité');
      // Weights that do not add up to 100 are refused, the values kept.
      await buyer.locator('#crit2_weight').fill('30');
      await buyer.getByRole('button', { name: 'Enregistrer le brouillon' }).click();
      assert.match(await buyer.getByRole('alert').innerText(), /100/);
      assert.equal(await buyer.getByLabel('Objet').inputValue(), title);
      await buyer.locator('#crit2_weight').fill('40');
      await buyer.getByRole('button', { name: 'Enregistrer le brouillon' }).click();
      await buyer.waitForURL(/\/tenders\/[0-9a-f-]{36}\?notice=tender_saved$/);
      const callUrl = buyer.url().replace(/\?.*$/, '');
      assert.match(await buyer.locator('main').innerText(), /Brouillon/i);
      // The deadline is shorter than the adapted procedure's 15 days: warned, with its rule.
      assert.match(await buyer.locator('#buyer-desk-section').innerText(), /15 days/);

      // A document of the consultation, kept sealed and published with the call.
      const rules = 'Règlement : réponse avant la date limite.';
      await buyer.locator('#document-files').setInputFiles({ name: 'Règlement de consultation.txt', mimeType: 'text/plain', buffer: Buffer.from(rules) });
      await buyer.getByRole('button', { name: 'Joindre', exact: true }).click();
      await buyer.waitForURL(/notice=document_added/);
      assert.match(await buyer.locator('#documents').innerText(), /Règlement de consultation\.txt/);

      // Publication: the key is made in the browser and downloaded.
      await buyer.getByRole('button', { name: "Créer la clé d'ouverture dans ce navigateur" }).click();
      const recipient = await buyer.getByLabel("Clé publique d'ouverture (age1…)").inputValue();
      assert.match(recipient, /^age1[0-9a-z]{58}$/);
      const [download] = await Promise.all([
        buyer.waitForEvent('download'),
        buyer.getByRole('link', { name: 'Télécharger la clé privée' }).click(),
      ]);
      const { mkdtempSync, readFileSync, writeFileSync } = await import('node:fs');
      const { tmpdir } = await import('node:os');
      const keyFile = `${mkdtempSync(`${tmpdir()}/nuage-key-`)}/opening.key`;
      await download.saveAs(keyFile);
      const keyText = readFileSync(keyFile, 'utf8');
      assert.ok(keyText.includes(recipient) && /AGE-SECRET-KEY-1[0-9A-Z]{58}/.test(keyText), keyText);
      await buyer.getByLabel(/J'ai mis la clé privée en lieu sûr/).check();
      await buyer.getByRole('button', { name: "Publier l'appel" }).click();
      await buyer.waitForURL(/notice=tender_published/);
      assert.match(await buyer.getByRole('status').first().innerText(), /publié/);

      // An amendment: a new version, the deadline kept to the second.
      await buyer.getByRole('link', { name: "Modifier l'appel (nouvelle version)" }).click();
      await buyer.waitForURL(/\/edit$/);
      await buyer.getByLabel('Ce que la modification change').fill('Précision : formats de sortie ouverts.');
      await buyer.getByLabel('Description', { exact: true }).first().fill('Conservation des délibérations numérisées, en France ; sortie en formats ouverts.');
      await buyer.getByRole('button', { name: 'Publier la modification' }).click();
      await buyer.waitForURL(/notice=tender_amended/);
      assert.match(await buyer.locator('#versions').innerText(), /Précision : formats de sortie ouverts/);
      assert.match(await buyer.locator('main').innerText(), /formats ouverts/);

      // A provider asks a question; the buyer answers it publicly.
      const cumulus = await logIn(en, 'admin@cumulus.example', password('admin@cumulus.example'), EN);
      await cumulus.goto(callUrl);
      const [rulesDownload] = await Promise.all([
        cumulus.waitForEvent('download'),
        cumulus.getByRole('link', { name: 'Règlement de consultation.txt' }).click(),
      ]);
      assert.equal(readFileSync(await rulesDownload.path(), 'utf8'), rules);
      await cumulus.getByLabel('Ask the buyer a question').fill('Is an S3-compatible interface required?');
      await cumulus.getByRole('button', { name: 'Send the question' }).click();
      await cumulus.waitForURL(/notice=question_sent/);
      await buyer.goto(callUrl);
      await buyer.getByLabel(/^Votre réponse/).fill('Oui, S3 est attendu.');
      await buyer.getByRole('button', { name: 'Publier la réponse' }).click();
      await buyer.waitForURL(/notice=answer_published/);
      assert.match(await buyer.locator('#questions').innerText(), /Oui, S3 est attendu/);

      // Two providers seal their bids in their browsers.
      const bid = async (page, offer, prices, mark) => {
        await page.goto(callUrl);
        await page.getByLabel('Bid for this lot').check();
        await page.locator('#bid1_offer').selectOption({ label: offer });
        await page.getByLabel('Monthly fee').fill(prices.fee);
        await page.getByLabel('Per GB-month stored').fill(prices.gb);
        await page.getByLabel(/Answer to the criterion/).fill(mark);
        await page.locator('#bid-documents').setInputFiles({ name: 'memo.txt', mimeType: 'text/plain', buffer: Buffer.from(`memo ${mark}`) });
        await page.getByRole('button', { name: 'Seal and submit' }).click();
        await page.locator('#bid-status').getByText('Bid submitted').waitFor();
        assert.match(await page.locator('#bid-status').innerText(), /SHA-256 [0-9a-f]{64}/);
        await page.reload();
        assert.match(await page.locator('#envelopes').innerText(), /counts/);
      };
      await bid(cumulus, 'Stockage objet souverain', { fee: '10', gb: '0.01' }, 'Exports in Parquet and CSV.');
      const stratus = await logIn(en2, 'admin@stratus.example', password('admin@stratus.example'), EN);
      await bid(stratus, 'Stockage de données de santé', { fee: '12', gb: '0.02' }, 'Exports in CSV.');

      // Before the deadline, the buyer sees no bid and cannot open.
      await buyer.goto(callUrl);
      assert.equal(await buyer.locator('#open-form').count(), 0);
      assert.ok(!(await buyer.locator('main').innerText()).includes('Parquet'));

      // After the deadline: a wrong key is refused, the right one opens.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline.getTime() - Date.now()) + 1500));
      await buyer.goto(callUrl);
      const other = readFileSync(CREDENTIALS, 'utf8').split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-'));
      await buyer.getByLabel("Clé privée d'ouverture").fill(other);
      await buyer.getByRole('button', { name: 'Ouvrir les plis' }).click();
      assert.match(await buyer.getByRole('alert').innerText(), /not the key of this call/);
      writeFileSync(keyFile, keyText);
      await buyer.locator('#identity-file').setInputFiles(keyFile);
      await buyer.waitForFunction(() => document.getElementById('identity').value.includes('AGE-SECRET-KEY-'));
      await buyer.getByRole('button', { name: 'Ouvrir les plis' }).click();
      await buyer.waitForURL(/notice=bids_opened/);

      // Evaluation: eligibility per rule, marks, ranking, award.
      await buyer.getByRole('link', { name: /^Lot 1 — Stockage objet/ }).click();
      await buyer.waitForURL(/\/lots\/1$/);
      const candidates = buyer.locator('section[id^=candidate-]');
      assert.equal(await candidates.count(), 2);
      assert.match(await buyer.locator('main').innerText(), /Parquet/);
      for (const [name, mark] of [['Cumulus', '8'], ['Stratus', '6']]) {
        const section = candidates.filter({ hasText: name });
        await section.getByLabel(/^réversibilité/).fill(mark);
        await section.getByRole('button', { name: 'Enregistrer les notes' }).click();
        await buyer.waitForURL(/notice=marks_saved/);
      }
      const ranking = await buyer.locator('#ranking').innerText();
      assert.match(ranking.split('\n')[1], /^1\s+Cumulus/, ranking);
      await buyer.getByRole('button', { name: 'Attribuer le lot au premier' }).click();
      await buyer.waitForURL(/notice=lot_awarded/);
      // Signature inside the standstill: refused, nothing signed.
      await buyer.getByRole('button', { name: 'Signer le marché' }).click();
      assert.match(await buyer.getByRole('alert').innerText(), /standstill/);
      await buyer.goto(callUrl);
      assert.match(await buyer.locator('#awards').innerText(), /Délai de suspension|jusqu/);

      // The bidders see the award on the call's page, and their result.
      await stratus.goto(callUrl);
      assert.ok(await stratus.locator('#awards').isVisible());
      const result = await stratus.locator('#results').innerText();
      assert.match(result, /Not retained \(Rank 2\)/, result);
      const winnerScore = ranking.split('\n')[1].split('\t').pop().trim();
      assert.ok(result.includes(winnerScore), `${result} names the winner's score ${winnerScore}`);
      await cumulus.goto(callUrl);
      assert.match(await cumulus.locator('#results').innerText(), /Awarded to your bid \(Rank 1\)/);
    } finally {
      await fr.close();
      await en.close();
      await en2.close();
    }
  });
});
