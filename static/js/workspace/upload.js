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

// The refused form (the server's, every error next to its field) in place of this one's
// contents. Without more, the focus would fall to <body> with the button it was on, and the
// refusal would go unsaid: the status live region of this form is kept (a region just put in
// the page is not reliably announced) and says the refusal, and the focus moves to the first
// field to fix, whose aria-describedby reads its errors out (or to the form-wide errors).
function refused(form, fresh) {
  const status = form.querySelector(".upload-progress");
  form.replaceChildren(...fresh.childNodes);
  const box = form.querySelector(".upload-progress");
  if (status && box) box.replaceWith(status);
  form.dataset.state = "refused";
  const fields = form.querySelectorAll(".field.has-error").length;
  show(form, 0, fields
    ? `The upload was refused: ${fields} ${fields === 1 ? "field" : "fields"} to fix; nothing was stored.`
    : "The upload was refused; nothing was stored.");
  let first = form.querySelector('[aria-invalid="true"]');
  if (!first) {
    first = form.querySelector(".form-errors, .field-errors");
    if (first) first.tabIndex = -1;  // a list takes the focus only when told to
  }
  if (first) first.focus();
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
        refused(form, fresh);
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
