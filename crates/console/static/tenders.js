// Calls for tender in the console: dates typed in the browser's time zone,
// a call's opening key made in the buyer's browser, and bids sealed in the
// bidder's browser with age (age-encryption.js) before they are sent. The
// server never sees the opening key nor a bid in the clear.
(function () {
  "use strict";

  const pad = (n) => String(n).padStart(2, "0");

  // A datetime-local field shows local time; its hidden twin carries the
  // instant in ms since the epoch, changed only when the field is.
  for (const input of document.querySelectorAll("input[data-ms]")) {
    const hidden = document.getElementById(input.dataset.ms);
    if (!hidden) continue;
    if (hidden.value) {
      const d = new Date(Number(hidden.value));
      input.value = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    }
    const sync = () => {
      hidden.value = input.value ? String(new Date(input.value).getTime()) : "";
    };
    input.addEventListener("input", sync);
    input.addEventListener("change", sync);
  }

  // Key and share files are read into the field they fill.
  for (const file of document.querySelectorAll("input[type=file][data-fills]")) {
    file.addEventListener("change", async () => {
      const texts = [];
      for (const f of file.files) texts.push((await f.text()).trim());
      document.getElementById(file.dataset.fills).value = texts.join("\n");
    });
  }

  // A draft's documents are sent one by one, as they are.
  const documents = document.getElementById("document-form");
  if (documents) {
    documents.addEventListener("submit", async (event) => {
      event.preventDefault();
      const status = document.getElementById("document-status");
      for (const file of document.getElementById("document-files").files) {
        const response = await fetch(
          `/tenders/${documents.dataset.tender}/documents?name=${encodeURIComponent(file.name)}`,
          {
            method: "POST",
            credentials: "same-origin",
            headers: {
              "content-type": file.type || "application/octet-stream",
              "x-csrf-token": documents.dataset.csrf,
            },
            body: file,
          },
        );
        if (!response.ok) {
          const body = await response.json().catch(() => ({}));
          status.textContent = `${file.name} : ${body.title || documents.dataset.msgFailed}${body.detail ? " — " + body.detail : ""}`;
          return;
        }
      }
      window.location.assign(`/tenders/${documents.dataset.tender}?notice=document_added`);
    });
  }

  const age = window.NuageAge;

  // Publication: the opening key is made here and only its public half is
  // sent; the private half is downloaded, in the CLI's key-file format.
  const make = document.getElementById("make-key");
  if (make && age) {
    document.getElementById("keygen").hidden = false;
    make.addEventListener("click", async () => {
      const identity = await age.generateX25519Identity();
      const recipient = await age.identityToRecipient(identity);
      const text = `# opening key of a call for tender; public key: ${recipient}\n${identity}\n`;
      const link = document.getElementById("key-download");
      link.href = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
      document.getElementById("key-made").hidden = false;
      document.getElementById("recipient").value = recipient;
      document.getElementById("key-saved-field").hidden = false;
      document.getElementById("key-saved").required = true;
      make.disabled = true;
    });
  }

  const form = document.getElementById("bid-form");
  if (!form || !age) return;
  const status = document.getElementById("bid-status");
  const say = (text) => {
    status.replaceChildren(document.createTextNode(text));
  };
  const base64 = async (file) => {
    const bytes = new Uint8Array(await file.arrayBuffer());
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    }
    return btoa(text);
  };
  const download = (label, name, blob) => {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    a.textContent = label;
    const p = document.createElement("p");
    p.append(a);
    return p;
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    const lots = [];
    for (const set of form.querySelectorAll("fieldset[data-lot]")) {
      const on = set.querySelector("input[name=on]");
      if (!on || !on.checked) continue;
      const price = (name) => set.querySelector(`[name=${name}]`).value.trim().replace(",", ".") || "0";
      const answers = {};
      for (const a of set.querySelectorAll("textarea[data-criterion]")) {
        if (a.value.trim()) answers[a.dataset.criterion] = a.value.trim();
      }
      lots.push({
        lot: Number(set.dataset.lot),
        offer_id: set.querySelector("select[name=offer]").value,
        prices: {
          monthly_fee: price("monthly_fee"),
          per_gb_month: price("per_gb_month"),
          per_1k_class_a: price("per_1k_class_a"),
          per_1k_class_b: price("per_1k_class_b"),
          per_gb_egress: price("per_gb_egress"),
        },
        answers,
      });
    }
    if (lots.length === 0) {
      say(form.dataset.msgNolot);
      return;
    }
    button.disabled = true;
    try {
      const documents = [];
      for (const f of document.getElementById("bid-documents").files) {
        documents.push({
          name: f.name,
          media_type: f.type || "application/octet-stream",
          content_base64: await base64(f),
        });
      }
      say(form.dataset.msgSealing);
      const bid = { tender_id: form.dataset.tender, lots, documents };
      const sealer = new age.Encrypter();
      sealer.addRecipient(form.dataset.recipient);
      const envelope = await sealer.encrypt(JSON.stringify(bid));
      const response = await fetch(`/tenders/${form.dataset.tender}/bid`, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "content-type": "application/octet-stream",
          "x-csrf-token": form.dataset.csrf,
        },
        body: envelope,
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) {
        say(`${body.title || form.dataset.msgFailed}${body.detail ? " — " + body.detail : ""}`);
        return;
      }
      const receipt = body.receipt;
      say(`${form.dataset.msgDone} ${receipt.bid_id} · SHA-256 ${receipt.sha256}`);
      status.append(
        download(form.dataset.msgEnvelope, `bid-${receipt.bid_id}.age`, new Blob([envelope])),
        download(
          form.dataset.msgReceipt,
          `receipt-${receipt.bid_id}.json`,
          new Blob([JSON.stringify(body, null, 2)], { type: "application/json" }),
        ),
      );
    } catch (error) {
      say(`${form.dataset.msgFailed} ${error.message || error}`);
    } finally {
      button.disabled = false;
    }
  });
})();
