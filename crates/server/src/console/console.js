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
