// The drive's uploads: every file is sent on its own (PUT to the zone's
// data-endpoint: /drive/content, or a shared folder's /drive/shared/ID/content),
// with its progress; folders keep their tree (the input's relative paths,
// or the dropped folders' entries). The page reloads once all are done.
// On a share link's drop box (data-token), files go to PUT /s/{token}/upload
// and the page stays, listing what was sent.
//
// In the owner's drive (data-resumable), a large file goes in parts of
// 8 MiB (/drive/uploads): a part that fails is sent again (three tries,
// waiting longer each time), and the upload's id is kept in localStorage,
// so that choosing the same file again in the same folder — after a cut
// connection or a closed tab — sends only the parts still missing.
(() => {
  "use strict";
  const zone = document.getElementById("drop-zone");
  if (!zone) return;
  const progress = document.getElementById("upload-progress");
  const folder = zone.dataset.folder;
  const token = zone.dataset.token;
  const PART = Number(zone.dataset.partBytes || 8 * 1024 * 1024);

  const target = (relative) => (folder ? `${folder}/${relative}` : relative);
  const address = (relative) =>
    token
      ? `/s/${token}/upload?path=${encodeURIComponent(relative.split("/").pop())}`
      : `${zone.dataset.endpoint}?path=${encodeURIComponent(target(relative))}`;

  const row = (relative) => {
    const item = document.createElement("li");
    const label = document.createElement("span");
    label.textContent = `${relative} `;
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    item.append(label, bar);
    progress.append(item);
    return [item, bar];
  };

  const finished = (item, bar, ok, detail) => {
    bar.value = 100;
    const status = document.createElement("span");
    status.className = ok ? "upload-ok" : "upload-failed";
    status.textContent = ` ${ok ? zone.dataset.done : zone.dataset.failed}${detail || ""}`;
    item.append(status);
    return ok;
  };

  const problemOf = (xhr) => {
    try {
      const body = JSON.parse(xhr.responseText);
      return ` — ${body.title || ""}${body.detail ? " : " + body.detail : ""}`;
    } catch (_) {
      return "";
    }
  };

  // One call of the resumable protocol; resolves with the XHR once done.
  const call = (method, url, body, onProgress) =>
    new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.setRequestHeader("x-csrf-token", zone.dataset.csrf);
      if (onProgress) xhr.upload.onprogress = onProgress;
      xhr.onload = () => resolve(xhr);
      xhr.onerror = () => resolve(xhr);
      xhr.send(body);
    });
  const json = (xhr) => {
    try {
      return JSON.parse(xhr.responseText);
    } catch (_) {
      return {};
    }
  };
  const pause = (ms) => new Promise((r) => setTimeout(r, ms));

  const sendInParts = async (file, relative) => {
    const [item, bar] = row(relative);
    const path = encodeURIComponent(target(relative));
    const memo = `nuage-upload:${target(relative)}:${file.size}:${file.lastModified}`;
    let id = localStorage.getItem(memo);
    let have = new Map();
    if (id) {
      const xhr = await call("GET", `/drive/uploads/${encodeURIComponent(id)}?path=${path}`);
      if (xhr.status === 200) for (const p of json(xhr).parts || []) have.set(p.part, p.size);
      else id = null;
    }
    if (!id) {
      const xhr = await call("POST", `/drive/uploads?path=${path}`, null);
      if (xhr.status !== 201) return finished(item, bar, false, problemOf(xhr));
      id = json(xhr).upload;
      localStorage.setItem(memo, id);
      have = new Map();
    }
    const count = Math.max(1, Math.ceil(file.size / PART));
    const sizeOf = (n) => Math.min(PART, file.size - (n - 1) * PART);
    let done = 0;
    for (let n = 1; n <= count; n++) if (have.get(n) === sizeOf(n)) done += sizeOf(n);
    bar.value = Math.round((100 * done) / Math.max(1, file.size));
    for (let n = 1; n <= count; n++) {
      if (have.get(n) === sizeOf(n)) continue;
      const chunk = file.slice((n - 1) * PART, (n - 1) * PART + sizeOf(n));
      let sent = false;
      for (let attempt = 0; attempt < 3 && !sent; attempt++) {
        if (attempt) await pause(1000 * 3 ** (attempt - 1));
        const xhr = await call("PUT", `/drive/uploads/${encodeURIComponent(id)}/${n}?path=${path}`, chunk, (e) => {
          if (e.lengthComputable) bar.value = Math.round((100 * (done + e.loaded)) / file.size);
        });
        if (xhr.status === 200) sent = true;
        else if (xhr.status >= 400 && xhr.status < 500) return finished(item, bar, false, problemOf(xhr));
      }
      if (!sent) return finished(item, bar, false, ` — ${zone.dataset.resume || ""}`);
      done += sizeOf(n);
    }
    const xhr = await call("POST", `/drive/uploads/${encodeURIComponent(id)}?path=${path}`, null);
    if (xhr.status !== 201) return finished(item, bar, false, problemOf(xhr));
    localStorage.removeItem(memo);
    return finished(item, bar, true);
  };

  const send = (file, relative) =>
    token || !zone.dataset.resumable || file.size <= PART
      ? sendWhole(file, relative)
      : sendInParts(file, relative);

  const sendWhole = (file, relative) =>
    new Promise((resolve) => {
      const [item, bar] = row(relative);
      const xhr = new XMLHttpRequest();
      xhr.open("PUT", address(relative));
      if (token) xhr.setRequestHeader("x-nuage-share", "1");
      else xhr.setRequestHeader("x-csrf-token", zone.dataset.csrf);
      if (file.type) xhr.setRequestHeader("content-type", file.type);
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total);
      };
      xhr.onload = () =>
        resolve(finished(item, bar, xhr.status === 201, xhr.status === 201 ? "" : problemOf(xhr)));
      xhr.onerror = () => resolve(finished(item, bar, false));
      xhr.send(file);
    });

  const sendAll = async (pairs) => {
    let ok = true;
    for (const [file, relative] of pairs) ok = (await send(file, relative)) && ok;
    if (ok && !token) window.location.reload();
  };

  document.getElementById("upload-files").addEventListener("change", (e) => {
    sendAll([...e.target.files].map((f) => [f, f.name]));
  });
  const folderInput = document.getElementById("upload-folder");
  if (folderInput) {
    folderInput.addEventListener("change", (e) => {
      sendAll([...e.target.files].map((f) => [f, f.webkitRelativePath || f.name]));
    });
  }

  // Dropped folders are walked through their entries.
  const walk = (entry, prefix) =>
    new Promise((resolve) => {
      if (entry.isFile) {
        entry.file((f) => resolve([[f, prefix + f.name]]), () => resolve([]));
      } else if (entry.isDirectory) {
        const reader = entry.createReader();
        const all = [];
        const next = () =>
          reader.readEntries(async (entries) => {
            if (!entries.length) {
              const nested = await Promise.all(all.map((e) => walk(e, `${prefix}${entry.name}/`)));
              resolve(nested.flat());
            } else {
              all.push(...entries);
              next();
            }
          }, () => resolve([]));
        next();
      } else resolve([]);
    });

  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", async (e) => {
    e.preventDefault();
    zone.classList.remove("dragging");
    const entries = [...e.dataTransfer.items]
      .map((i) => (i.webkitGetAsEntry ? i.webkitGetAsEntry() : null))
      .filter(Boolean);
    const pairs = entries.length
      ? (await Promise.all(entries.map((en) => walk(en, "")))).flat()
      : [...e.dataTransfer.files].map((f) => [f, f.name]);
    sendAll(pairs);
  });
})();
