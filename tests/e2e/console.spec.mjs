// End-to-end test of the Nuage console in headless Chromium, once in French
// and once in English: sign up, log out, log in, a wrong password, an API
// token whose secret is shown once, the language of every visible text,
// keyboard focus, the 404 page and a forged form.
//
// Run against a running server:
//   cd tests/e2e && npm install
//   NUAGE_CONSOLE_URL=http://127.0.0.1:PORT node tests/e2e/console.spec.mjs
// CHROMIUM overrides the browser (default /usr/bin/chromium).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const BASE = (process.env.NUAGE_CONSOLE_URL || '').replace(/\/+$/, '');
if (!BASE) {
  console.error('NUAGE_CONSOLE_URL is not set: start `nuage serve` and give its "console" address');
  process.exit(2);
}

const PASSWORD = 'correct horse battery staple';

// What each language must show. A French word on the English run (or the
// reverse) fails the test.
const RUNS = [
  {
    locale: 'fr-FR',
    lang: 'fr',
    signUp: 'Créer un compte',
    orgName: "Nom de l'organisation",
    orgKind: "Type d'organisation",
    displayName: /^Votre nom/,
    email: 'Adresse e-mail',
    password: /^Mot de passe/,
    signUpSubmit: 'Créer le compte',
    hello: 'Bonjour',
    logout: 'Se déconnecter',
    loggedOut: 'Vous êtes déconnecté·e.',
    logIn: 'Se connecter',
    wrongPassword: 'Adresse e-mail ou mot de passe incorrect.',
    tokens: "Jetons d'API",
    tokenName: 'Nom du jeton',
    createToken: 'Créer le jeton',
    shownOnce: 'Copiez ce secret maintenant',
    notFound: 'Page introuvable',
    otherLanguage: 'English',
    foreignWords: ['Sign up', 'Log in', 'Password', 'Dashboard'],
  },
  {
    locale: 'en-US',
    lang: 'en',
    signUp: 'Sign up',
    orgName: 'Organisation name',
    orgKind: 'Kind of organisation',
    displayName: /^Your name/,
    email: 'E-mail address',
    password: /^Password/,
    signUpSubmit: 'Create the account',
    hello: 'Hello',
    logout: 'Log out',
    loggedOut: 'You are logged out.',
    logIn: 'Log in',
    wrongPassword: 'Wrong e-mail address or password.',
    tokens: 'API tokens',
    tokenName: 'Token name',
    createToken: 'Create the token',
    shownOnce: 'Copy this secret now',
    notFound: 'Page not found',
    otherLanguage: 'Français',
    foreignWords: ['Créer un compte', 'Se connecter', 'Mot de passe', 'Tableau de bord'],
  },
];

let browser;

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
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
});

after(async () => {
  await browser?.close();
});

/** The visible text of the page's body. */
async function visibleText(page) {
  return page.locator('body').innerText();
}

async function assertLanguage(page, run) {
  assert.equal(await page.getAttribute('html', 'lang'), run.lang, 'the <html lang> attribute');
  const text = await visibleText(page);
  for (const word of run.foreignWords) {
    assert.ok(!text.includes(word), `"${word}" is not ${run.lang}: ${page.url()}`);
  }
}

for (const run of RUNS) {
  describe(`the console in ${run.locale}`, () => {
    const unique = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const email = `e2e-${run.lang}-${unique}@example.fr`;
    const displayName = `E2E ${run.lang.toUpperCase()} ${unique}`;
    let context;
    let page;

    before(async () => {
      context = await browser.newContext({ locale: run.locale, baseURL: BASE });
      page = await context.newPage();
      page.setDefaultTimeout(15_000);
    });

    after(async () => {
      await context?.close();
    });

    test('the landing page speaks the browser language', async () => {
      const response = await page.goto('/');
      assert.equal(response.status(), 200);
      await assertLanguage(page, run);
      assert.ok(await page.getByRole('link', { name: run.signUp }).first().isVisible());
    });

    test('keyboard focus is visible on the first link', async () => {
      await page.goto('/');
      await page.keyboard.press('Tab');
      const focused = await page.evaluate(() => {
        const el = document.activeElement;
        const style = getComputedStyle(el);
        const box = el.getBoundingClientRect();
        return {
          tag: el.tagName,
          href: el.getAttribute('href'),
          outlineStyle: style.outlineStyle,
          outlineWidth: parseFloat(style.outlineWidth),
          onScreen: box.top >= 0 && box.bottom > 0 && box.width > 0,
        };
      });
      assert.equal(focused.tag, 'A', 'the first Tab reaches a link');
      assert.equal(focused.href, '#main', 'the first link skips to the content');
      assert.notEqual(focused.outlineStyle, 'none', 'a focused link has an outline');
      assert.ok(focused.outlineWidth > 0, 'the outline has a width');
      assert.ok(focused.onScreen, 'the focused skip link is on screen');
    });

    test('signs up and lands logged in', async () => {
      await page.goto('/');
      await page.getByRole('link', { name: run.signUp }).first().click();
      await assertLanguage(page, run);
      await page.getByLabel(run.orgName).fill(`E2E ${run.lang} ${unique}`);
      await page.getByLabel(run.orgKind).selectOption('company');
      await page.getByLabel(run.displayName).fill(displayName);
      await page.getByLabel(run.email).fill(email);
      await page.getByLabel(run.password).fill(PASSWORD);
      await page.getByRole('button', { name: run.signUpSubmit }).click();
      await page.waitForURL(`${BASE}/`);
      const heading = await page.getByRole('heading', { level: 1 }).innerText();
      assert.equal(heading, `${run.hello}, ${displayName}`);
      assert.ok(await page.getByRole('button', { name: run.logout }).isVisible());
      await assertLanguage(page, run);
    });

    test('logs out', async () => {
      await page.getByRole('button', { name: run.logout }).click();
      await page.waitForURL(/\/login/);
      assert.ok((await page.getByRole('status').innerText()).includes(run.loggedOut));
      assert.equal(await page.getByRole('button', { name: run.logout }).count(), 0);
      await assertLanguage(page, run);
    });

    test('a wrong password shows a readable error', async () => {
      await page.goto('/login');
      await page.getByLabel(run.email).fill(email);
      await page.getByLabel(run.password).fill('not the password at all');
      const [response] = await Promise.all([
        page.waitForResponse((r) => r.url().endsWith('/login') && r.request().method() === 'POST'),
        page.getByRole('button', { name: run.logIn }).click(),
      ]);
      assert.equal(response.status(), 401);
      const alert = page.getByRole('alert');
      assert.ok((await alert.innerText()).includes(run.wrongPassword));
      assert.equal(await page.getByLabel(run.email).inputValue(), email, 'the address is kept');
      await assertLanguage(page, run);
    });

    test('logs in again', async () => {
      await page.goto('/login');
      await page.getByLabel(run.email).fill(email);
      await page.getByLabel(run.password).fill(PASSWORD);
      await page.getByRole('button', { name: run.logIn }).click();
      await page.waitForURL(`${BASE}/`);
      assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), `${run.hello}, ${displayName}`);
    });

    test('creates an API token, shows its secret once and lists it', async () => {
      await page.getByRole('navigation').getByRole('link', { name: run.tokens }).click();
      await page.waitForURL(/\/tokens$/);
      await assertLanguage(page, run);
      await page.getByLabel(run.tokenName).fill('e2e token');
      await page.getByRole('button', { name: run.createToken }).click();
      const secret = await page.locator('#new-secret').innerText();
      assert.match(secret, /^nuage_[a-z2-7]{40,}$/);
      assert.ok((await visibleText(page)).includes(run.shownOnce));
      assert.ok(await page.getByRole('rowheader', { name: 'e2e token' }).isVisible());

      await page.goto('/tokens');
      assert.equal(await page.locator('#new-secret').count(), 0, 'the secret is not shown again');
      assert.ok(!(await page.content()).includes(secret), 'the secret is nowhere on the page');
      assert.ok(await page.getByRole('rowheader', { name: 'e2e token' }).isVisible());
    });

    test('a forged form is refused and changes nothing', async () => {
      const response = await context.request.post('/tokens', {
        form: { csrf: 'forged', name: 'forged token' },
        maxRedirects: 0,
      });
      assert.equal(response.status(), 403);
      await page.goto('/tokens');
      assert.equal(await page.getByRole('rowheader', { name: 'forged token' }).count(), 0);
    });

    test('an unknown page is a 404 in the same language', async () => {
      const response = await page.goto('/no-such-page');
      assert.equal(response.status(), 404);
      assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), run.notFound);
      await assertLanguage(page, run);
    });

    test('the language switch changes the language and comes back', async () => {
      await page.goto('/tokens');
      await page.getByRole('link', { name: run.otherLanguage }).click();
      await page.waitForURL(/\/tokens$/);
      const other = RUNS.find((r) => r.lang !== run.lang);
      await assertLanguage(page, other);
      await page.getByRole('link', { name: other.otherLanguage }).click();
      await page.waitForURL(/\/tokens$/);
      await assertLanguage(page, run);
    });
  });
}
