// Forms with files (class "upload-form") are sent with XMLHttpRequest, whose upload events
// give the progress bar (fetch has no upload progress). The server answers as it does to a
// plain submit: a redirect when stored (followed here), or the page again with status 400 and
// every error next to its field, whose form replaces this one. Without this script the forms
// still work as plain forms.

function show(form, fraction, text) {
  const box = form.querySelector(".upload-progress");
  if (!box) return;
  box.hidden = false;
  const bar = box.querySelector("progress");
  if (fraction === null) bar.removeAttribute("value");
  else bar.value = Math.round(fraction * 100);
  box.querySelector(".upload-status").textContent = text;
}

function send(form) {
  const request = new XMLHttpRequest();
  const button = form.querySelector("button[type=submit]");
  request.open("POST", form.action || window.location.href);
  request.upload.addEventListener("progress", (event) => {
    if (event.lengthComputable) {
      const mb = (n) => (n / 1e6).toFixed(1);
      show(form, event.loaded / event.total,
        `Uploading: ${mb(event.loaded)} of ${mb(event.total)} MB`);
    }
  });
  request.upload.addEventListener("load", () => {
    form.dataset.uploaded = "1";  // the whole body was sent (the bar's end)
    show(form, null, "Uploaded; checking every file…");
  });
  request.addEventListener("load", () => {
    if (request.status === 400) {
      const page = new DOMParser().parseFromString(request.responseText, "text/html");
      const fresh = page.getElementById(form.id);
      if (fresh) {
        form.replaceChildren(...fresh.childNodes);
        form.dataset.state = "refused";
        return;
      }
    }
    if (request.status >= 200 && request.status < 300) {
      form.dataset.state = "stored";
      window.location.assign(request.responseURL);
      return;
    }
    show(form, 0, `The server answered ${request.status}: nothing was stored.`);
    if (button) button.disabled = false;
  });
  request.addEventListener("error", () => {
    show(form, 0, "The upload was interrupted: nothing was stored. Send it again.");
    if (button) button.disabled = false;
  });
  if (button) button.disabled = true;
  show(form, 0, "Uploading…");
  request.send(new FormData(form));
}

for (const form of document.querySelectorAll("form.upload-form")) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send(form);
  });
}
