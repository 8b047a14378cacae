// End-to-end test of the drive in headless Chromium, in French and in
// English: an owner uploads a whole folder (the files' progress shown), opens
// it, previews a text file from its page, moves a file to the trash and restores it, is
// told readably why a bad folder name is refused, makes an app password,
// then publishes the drive's bucket as a website and loads the page in the
// browser (on the website listener, `<bucket>.sites.localhost`). A large
// file goes in parts: a cut connection stops it, and choosing the file
// again sends only the part that was missing. On the Websites page, a
// domain of the owner's is claimed (its TXT record shown) and removed.
//
// Run against a running server started with --website-listen:
//   NUAGE_CONSOLE_URL=http://127.0.0.1:PORT NUAGE_E2E_ROOT_TOKEN=… node --test tests/e2e/drive.spec.mjs

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = (process.env.NUAGE_CONSOLE_URL || '').replace(/\/+$/, '');
const ROOT = process.env.NUAGE_E2E_ROOT_TOKEN || '';
if (!BASE || !ROOT) {
  console.error('set NUAGE_CONSOLE_URL and NUAGE_E2E_ROOT_TOKEN');
  process.exit(2);
}
const PASSWORD = 'drive passphrase for the e2e run';

const RUNS = [
  {
    locale: 'fr-FR', lang: 'fr', email: 'Adresse e-mail', password: /^Mot de passe/, logIn: 'Se connecter',
    nav: 'Espace de fichiers', uploadFolder: 'Déposer un dossier',
    actions: 'Actions', toTrash: 'Mettre à la corbeille', trashed: 'Mis à la corbeille.', trash: 'Corbeille',
    restore: 'Restaurer', restored: 'Restauré.', preview: 'Aperçu', newFolder: 'Nom', create: 'Créer',
    invalid: 'Certaines informations ne sont pas valides.', connect: 'Connecter un ordinateur',
    deviceName: "Nom de l'appareil", createPassword: "Créer un mot de passe d'application",
    websites: 'Sites web', publish: 'Publier', unpublish: 'Retirer le site',
    share: 'Partager', sharePassword: 'Mot de passe (facultatif)', createLink: 'Créer le lien',
    linkCreated: 'Lien créé.', locked: 'protégé par un mot de passe', visitorPassword: 'Mot de passe',
    open: 'Ouvrir', wrongPassword: 'Mot de passe incorrect.', zip: 'Tout télécharger (ZIP)',
    revoke: 'Révoquer le lien', gone: 'Ce lien a expiré ou a été révoqué.',
    resume: 'choisissez de nouveau le fichier',
    domain: 'Domaine', addDomain: 'Ajouter le domaine', pending: "En attente de l'enregistrement TXT", removeDomain: 'Retirer',
    foreignWords: ['Upload a folder', 'Move to trash', 'Drive'],
  },
  {
    locale: 'en-US', lang: 'en', email: 'E-mail address', password: /^Password/, logIn: 'Log in',
    nav: 'Drive', uploadFolder: 'Upload a folder',
    actions: 'Actions', toTrash: 'Move to trash', trashed: 'Moved to the trash.', trash: 'Trash',
    restore: 'Restore', restored: 'Restored.', preview: 'Preview', newFolder: 'Name', create: 'Create',
    invalid: 'Some of the information is not valid.', connect: 'Connect a computer',
    deviceName: 'Device name', createPassword: 'Create an app password',
    websites: 'Websites', publish: 'Publish', unpublish: 'Take the site down',
    share: 'Share', sharePassword: 'Password (optional)', createLink: 'Create the link',
    linkCreated: 'Link created.', locked: 'protected by a password', visitorPassword: 'Password',
    open: 'Open', wrongPassword: 'Wrong password.', zip: 'Download everything (ZIP)',
    revoke: 'Revoke the link', gone: 'This link has expired or was revoked.',
    resume: 'choose the file again',
    domain: 'Domain', addDomain: 'Add the domain', pending: 'Waiting for the TXT record', removeDomain: 'Remove',
    foreignWords: ['Déposer un dossier', 'Mettre à la corbeille', 'Espace de fichiers'],
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
  describe(`the drive in ${run.locale}`, () => {
    const unique = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    const owner = `owner-${run.lang}-${unique}@drive.example`;
    const files = mkdtempSync(join(tmpdir(), 'nuage-drive-'));
    let context;
    let page;

    before(async () => {
      const org = await api('POST', '/orgs', { name: `Fichiers ${run.lang} ${unique}`, kind: 'company' });
      assert.equal(org.status, 201, JSON.stringify(org.body));
      const user = await api('POST', '/users', { org_id: org.body.id, email: owner, password: PASSWORD, role: 'owner' });
      assert.equal(user.status, 201, JSON.stringify(user.body));
      mkdirSync(join(files, 'Voyage', 'photos'), { recursive: true });
      writeFileSync(join(files, 'Voyage', 'programme.txt'), 'Jour 1 : arrivée à Lyon');
      writeFileSync(join(files, 'Voyage', 'photos', 'gare.txt'), 'la gare');
      writeFileSync(join(files, 'index.html'), `<!doctype html><title>Site</title><h1>Bonjour ${unique}</h1>`);
      context = await browser.newContext({ locale: run.locale, baseURL: BASE });
      page = await context.newPage();
      page.setDefaultTimeout(15_000);
      await page.goto('/login');
      await page.getByLabel(run.email).fill(owner);
      await page.getByLabel(run.password).fill(PASSWORD);
      await page.getByRole('button', { name: run.logIn }).click();
      await page.waitForURL(`${BASE}/`);
    });

    after(async () => {
      await context?.close();
      rmSync(files, { recursive: true, force: true });
    });

    test('uploads a folder, previews a file, trashes and restores it', async () => {
      await page.getByRole('navigation').getByRole('link', { name: run.nav, exact: true }).click();
      await page.waitForURL(/\/drive$/);
      await page.getByLabel(run.uploadFolder).setInputFiles(join(files, 'Voyage'));
      // Every file is listed with its progress, then the page reloads.
      await page.getByRole('link', { name: '📁 Voyage' }).click();
      await page.waitForURL(/path=Voyage/);
      const listed = await page.locator('#drive-files').innerText();
      assert.ok(listed.includes('programme.txt') && listed.includes('photos'), listed);
      const text = await page.locator('body').innerText();
      for (const word of run.foreignWords) assert.ok(!text.includes(word), `"${word}" is not ${run.lang}`);

      // The file's page: a preview opens in a new tab, as plain text.
      await page.getByRole('link', { name: `${run.actions} — programme.txt` }).click();
      await page.waitForURL(/\/drive\/item\?path=Voyage/);
      const [preview] = await Promise.all([
        context.waitForEvent('page'),
        page.getByRole('link', { name: run.preview }).click(),
      ]);
      await preview.waitForLoadState();
      assert.ok((await preview.locator('body').innerText()).includes('arrivée à Lyon'));
      await preview.close();

      await page.getByRole('button', { name: run.toTrash }).click();
      await page.waitForURL(/notice=trashed/);
      assert.ok((await page.getByRole('status').first().innerText()).includes(run.trashed));
      assert.ok(!(await page.locator('#drive-files').innerText()).includes('programme.txt'));

      await page.getByRole('link', { name: run.trash, exact: true }).click();
      await page.getByRole('button', { name: `${run.restore} — programme.txt` }).click();
      await page.waitForURL(/notice=restored/);
      assert.ok((await page.getByRole('status').first().innerText()).includes(run.restored));
      assert.ok((await page.locator('#drive-files').innerText()).includes('programme.txt'));
    });

    test('shares a folder with a password; a visitor opens it, then it is revoked', async () => {
      await page.goto('/drive');
      await page.getByRole('link', { name: `${run.actions} — Voyage` }).click();
      const form = page.locator('form.share-form');
      await form.getByLabel(run.sharePassword).fill('mot de passe du voyage');
      await form.getByRole('button', { name: run.createLink }).click();
      await page.waitForURL(/notice=link_created/);
      assert.ok((await page.getByRole('status').first().innerText()).includes(run.linkCreated));
      const link = await page.locator('a.share-url').first().getAttribute('href');

      // The visitor has no account, and the page is in its language.
      const visitor = await browser.newContext({ locale: run.locale });
      const guest = await visitor.newPage();
      guest.setDefaultTimeout(15_000);
      await guest.goto(link);
      assert.ok((await guest.locator('body').innerText()).includes(run.locked));
      await guest.getByLabel(run.visitorPassword).fill('wrong');
      await guest.getByRole('button', { name: run.open }).click();
      assert.ok((await guest.getByRole('alert').innerText()).includes(run.wrongPassword));
      await guest.getByLabel(run.visitorPassword).fill('mot de passe du voyage');
      await guest.getByRole('button', { name: run.open }).click();
      await guest.locator('#shared-files').waitFor();
      const listed = await guest.locator('#shared-files').innerText();
      assert.ok(listed.includes('programme.txt') && listed.includes('photos'), listed);
      const [download] = await Promise.all([
        guest.waitForEvent('download'),
        guest.getByRole('link', { name: run.zip }).click(),
      ]);
      assert.equal(download.suggestedFilename(), 'Voyage.zip');

      await page.getByRole('button', { name: `${run.revoke} — /Voyage` }).click();
      await page.waitForURL(/notice=link_revoked/);
      await guest.reload();
      assert.ok((await guest.getByRole('alert').innerText()).includes(run.gone));
      await visitor.close();
    });

    test('refuses a bad folder name readably, and makes an app password', async () => {
      await page.goto('/drive');
      await page.getByLabel(run.newFolder, { exact: true }).fill('..');
      await page.getByRole('button', { name: run.create }).click();
      assert.ok((await page.getByRole('alert').innerText()).includes(run.invalid));

      await page.getByRole('link', { name: run.connect }).click();
      await page.getByLabel(run.deviceName).fill('ordinateur portable');
      await page.getByRole('button', { name: run.createPassword }).click();
      const secret = await page.locator('#new-app-password').innerText();
      assert.match(secret, /^([a-z2-7]{4}-){5}[a-z2-7]{4}$/);
      const address = await page.locator('#dav-address').innerText();
      const listing = await fetch(address, {
        method: 'PROPFIND',
        headers: { depth: '1', authorization: `Basic ${Buffer.from(`${owner}:${secret}`).toString('base64')}` },
      });
      assert.equal(listing.status, 207);
      assert.ok((await listing.text()).includes('Voyage'));
    });

    test('sends a large file in parts and resumes it after a cut connection', async () => {
      const size = 9 * 1024 * 1024 + 1000;
      const big = join(files, 'film.bin');
      writeFileSync(big, Buffer.alloc(size, 7));
      await page.goto('/drive');
      // Every try of the second part is cut: the upload stops, saying how to resume.
      const secondPart = (url) => /\/drive\/uploads\/[^/]+\/2$/.test(url.pathname);
      let cuts = 0;
      const cut = (route) => { cuts += 1; return route.abort('connectionreset'); };
      await page.route(secondPart, cut);
      await page.locator('#upload-files').setInputFiles(big);
      await page.locator('#upload-progress .upload-failed').waitFor({ timeout: 30_000 });
      assert.equal(cuts, 3, 'the part is tried three times');
      assert.ok((await page.locator('#upload-progress').innerText()).includes(run.resume));
      await page.unroute(secondPart, cut);

      // Chosen again: only the missing part is sent, and the file shows whole.
      const sent = [];
      const watch = (request) => {
        if (request.method() === 'PUT' && request.url().includes('/drive/uploads/')) {
          sent.push(new URL(request.url()).pathname.split('/').pop());
        }
      };
      page.on('request', watch);
      await page.locator('#upload-files').setInputFiles([]);
      await page.locator('#upload-files').setInputFiles(big);
      await page.locator('#drive-files', { hasText: 'film.bin' }).waitFor({ timeout: 30_000 });
      page.off('request', watch);
      assert.deepEqual(sent, ['2']);
      const download = await page.request.get('/drive/file?path=film.bin');
      assert.equal(download.status(), 200);
      assert.equal((await download.body()).length, size);
    });

    test('publishes the drive as a website and loads it', async () => {
      await page.goto('/drive');
      await page.locator('#upload-files').setInputFiles(join(files, 'index.html'));
      await page.locator('#drive-files', { hasText: 'index.html' }).waitFor();
      await page.getByRole('navigation').getByRole('link', { name: run.websites, exact: true }).click();
      const form = page.locator('form[id^="site-drive-"]');
      await form.getByRole('button', { name: run.publish }).click();
      await page.waitForURL(/notice=setting_saved/);
      const address = await page.locator('#websites a[href*=".sites.localhost"]').first().getAttribute('href');
      const site = await context.newPage();
      await site.goto(address);
      assert.equal(await site.getByRole('heading', { level: 1 }).innerText(), `Bonjour ${unique}`);
      await site.close();

      // A domain of the owner's: claimed, it shows the TXT record that will
      // prove it; then removed.
      const domains = page.locator('section[id^="domains-drive-"]');
      await domains.getByLabel(run.domain).fill(`WWW.${unique}.Example.`);
      await domains.getByRole('button', { name: run.addDomain }).click();
      await page.waitForURL(/notice=setting_saved/);
      const claim = await domains.locator('table').innerText();
      assert.ok(claim.includes(`www.${unique}.example`), claim);
      assert.ok(claim.includes(`_nuage-challenge.www.${unique}.example`), claim);
      assert.ok(claim.includes('nuage-site-verification='), claim);
      assert.ok(claim.includes(run.pending), claim);
      await domains.getByLabel(run.domain).fill('localhost');
      await domains.getByRole('button', { name: run.addDomain }).click();
      assert.ok((await page.getByRole('alert').first().innerText()).includes(run.invalid));
      await domains.locator('table').getByRole('button', { name: run.removeDomain }).click();
      await page.waitForURL(/notice=setting_saved/);
      assert.equal(await domains.locator('table').count(), 0);

      await page.locator('form[id^="site-drive-"]').getByRole('button', { name: run.unpublish }).click();
      await page.waitForURL(/notice=setting_saved/);
    });
  });
}
