// Ferry console: two small conveniences. Every page works without them.
"use strict";

// A button with data-copy="ID" copies the value of element ID and says so in ID-status.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  const status = document.getElementById(button.dataset.copy + "-status");
  const say = (text) => { if (status) status.textContent = text; };
  source.focus();
  source.select();
  const fallback = () => say(document.execCommand("copy") ? "Copied" : "Select the code and copy it");
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(source.value).then(() => say("Copied"), fallback);
  } else {
    fallback();
  }
});

// A file input with data-into="ID" puts the text of the chosen file into textarea ID.
const LARGEST_TEXT_FILE = 64 * 1024;
document.addEventListener("change", (event) => {
  const input = event.target;
  if (!input.matches || !input.matches("input[type=file][data-into]")) return;
  const file = input.files[0];
  const target = document.getElementById(input.dataset.into);
  if (!file || !target) return;
  if (file.size > LARGEST_TEXT_FILE) {
    input.setCustomValidity("This file is too large to be a response file.");
    input.reportValidity();
    return;
  }
  input.setCustomValidity("");
  file.text().then((text) => { target.value = text.trim(); });
});

// A table with data-live="URL" follows runs: while a row's run is submitted or running, or the
// run this page submitted has not finished, it asks URL every second for each link's status.
const live = document.querySelector("[data-live]");
if (live) {
  const submitted = document.getElementById("run-submitted");
  let waitingFor = submitted ? submitted.dataset.run : null;
  const busy = () => [...live.querySelectorAll(".run-status")]
    .some((cell) => ["running", "submitted"].includes(cell.textContent.trim()));
  const follow = () => {
    fetch(live.dataset.live, { credentials: "same-origin" })
      .then((answer) => answer.ok ? answer.json() : [])
      .then((links) => {
        for (const link of links) {
          const row = [...live.querySelectorAll("tr[data-link]")].find((r) => r.dataset.link === link.link);
          if (!row) continue;
          const status = row.querySelector(".run-status");
          status.textContent = link.status;
          status.dataset.status = link.status;
          row.querySelector(".run-detail").textContent = link.detail;
          row.querySelector(".lag").textContent = link.lag;
          if (link.run === waitingFor && !["running", "submitted"].includes(link.status)) {
            waitingFor = null;
            submitted.textContent = "Run " + link.run + ": " + link.status + ".";
          }
        }
        if (busy() || waitingFor) setTimeout(follow, 1000);
      })
      .catch(() => setTimeout(follow, 3000));
  };
  if (busy() || waitingFor) setTimeout(follow, 300);
}

// A section with data-upload="URL" imports a dropped or chosen file: the file is the body of a
// POST to URL (its type from its name, as the CLI does), with a progress bar, then the item or
// the refusal with its code.
const upload = document.querySelector("[data-upload]");
if (upload) {
  const input = upload.querySelector("input[type=file]");
  const bar = upload.querySelector("progress");
  const status = upload.querySelector("[role=status]");
  const zone = upload.querySelector(".dropzone");
  const typeOf = (name) => {
    const lower = name.toLowerCase();
    if (lower.endsWith(".geojson") || lower.endsWith(".json")) return "application/geo+json";
    if (lower.endsWith(".csv")) return "text/csv";
    if (lower.endsWith(".ndjson") || lower.endsWith(".jsonl")) return "application/x-ndjson";
    return "application/octet-stream";
  };
  const send = (file) => {
    const query = new URLSearchParams({ title: file.name.replace(/\.[^.]*$/, "") || file.name, file_name: file.name });
    const request = new XMLHttpRequest();
    request.open("POST", upload.dataset.upload + "?" + query);
    request.setRequestHeader("content-type", typeOf(file.name));
    request.setRequestHeader("x-csrf-token", upload.dataset.csrf);
    bar.hidden = false;
    bar.value = 0;
    status.className = "";
    status.textContent = "Uploading " + file.name + "…";
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) bar.value = Math.round(100 * event.loaded / event.total);
    };
    request.onload = () => {
      let answer = {};
      try { answer = JSON.parse(request.responseText); } catch (_) { /* not JSON: said below */ }
      status.textContent = "";
      if (request.status === 201) {
        bar.value = 100;
        const link = document.createElement("a");
        link.href = "/items/" + answer.id;
        link.id = "uploaded";
        link.textContent = answer.title;
        status.append("Imported ", link, " (" + answer.row_count + " rows).");
      } else {
        status.className = "error";
        status.textContent = (answer.message || request.statusText) + " (code: " + (answer.code || request.status) + ")";
      }
    };
    request.onerror = () => {
      status.className = "error";
      status.textContent = "The upload stopped: the connection to the instance was lost.";
    };
    request.send(file);
  };
  input.addEventListener("change", () => { if (input.files[0]) send(input.files[0]); });
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer.files[0]) send(event.dataTransfer.files[0]);
  });
}
