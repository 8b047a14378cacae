// The drive's uploads: every file is sent on its own (PUT to the zone's
// data-endpoint: /drive/content, or a shared folder's /drive/shared/ID/content),
// with its progress; folders keep their tree (the input's relative paths,
// or the dropped folders' entries). The page reloads once all are done.
// On a share link's drop box (data-token), files go to PUT /s/{token}/upload
// and the page stays, listing what was sent.
(() => {
  "use strict";
  const zone = document.getElementById("drop-zone");
  if (!zone) return;
  const progress = document.getElementById("upload-progress");
  const folder = zone.dataset.folder;
  const token = zone.dataset.token;

  const target = (relative) => (folder ? `${folder}/${relative}` : relative);
  const address = (relative) =>
    token
      ? `/s/${token}/upload?path=${encodeURIComponent(relative.split("/").pop())}`
      : `${zone.dataset.endpoint}?path=${encodeURIComponent(target(relative))}`;

  const send = (file, relative) =>
    new Promise((resolve) => {
      const item = document.createElement("li");
      const label = document.createElement("span");
      label.textContent = `${relative} `;
      const bar = document.createElement("progress");
      bar.max = 100;
      bar.value = 0;
      item.append(label, bar);
      progress.append(item);
      const xhr = new XMLHttpRequest();
      xhr.open("PUT", address(relative));
      if (token) xhr.setRequestHeader("x-nuage-share", "1");
      else xhr.setRequestHeader("x-csrf-token", zone.dataset.csrf);
      if (file.type) xhr.setRequestHeader("content-type", file.type);
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total);
      };
      xhr.onload = () => {
        let detail = "";
        if (xhr.status !== 201) {
          try {
            const body = JSON.parse(xhr.responseText);
            detail = ` — ${body.title || ""}${body.detail ? " : " + body.detail : ""}`;
          } catch (_) {}
        }
        bar.value = 100;
        const status = document.createElement("span");
        status.className = xhr.status === 201 ? "upload-ok" : "upload-failed";
        status.textContent = ` ${xhr.status === 201 ? zone.dataset.done : zone.dataset.failed}${detail}`;
        item.append(status);
        resolve(xhr.status === 201);
      };
      xhr.onerror = () => {
        item.append(` ${zone.dataset.failed}`);
        resolve(false);
      };
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
