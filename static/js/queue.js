// Queue labeling: only Ctrl+Enter (Cmd+Enter on macOS) submits the answer and opens the next
// item, from anywhere on the page, including while typing a rationale. Inside the skip form
// it skips instead, keeping the reason. A plain Enter does what it does elsewhere: it
// follows a link, presses a button, starts a new line; it never submits the answer from
// one of its fields.
(function () {
  "use strict";

  const form = document.querySelector("form[data-submit-shortcut]");
  if (!form) return;

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter") return;
    const target = event.target;
    if (event.ctrlKey || event.metaKey) {
      event.preventDefault();
      const skip = target instanceof Element ? target.closest("form[data-skip-form]") : null;
      (skip || form).requestSubmit();
    } else if (target instanceof HTMLInputElement && target.form === form) {
      event.preventDefault();
    }
  });

  // The tree's tools (Next error, Find, Expand all) open the item again: the answers given
  // but not yet submitted are kept in this tab meanwhile, and put back when it opens, unless
  // the server has just refused them (it shows them itself). Submitting drops them.
  const draftKey = "tracemark:answers:" + window.location.pathname;
  let submitting = false;
  let changed = false;

  // A radio button or checkbox is kept by whether it is ticked, under its name and value.
  function isChoice(field) {
    return field.type === "radio" || field.type === "checkbox";
  }

  function fieldKey(field) {
    return isChoice(field) ? field.name + "=" + field.value : field.name;
  }

  function answerFields() {
    return Array.from(form.elements).filter(function (field) {
      return field.name && field.name !== "csrfmiddlewaretoken" && !["hidden", "submit", "button"].includes(field.type);
    });
  }

  form.addEventListener("input", function () {
    changed = true;
  });
  form.addEventListener("change", function () {
    changed = true;
  });
  form.addEventListener("submit", function () {
    submitting = true;
    sessionStorage.removeItem(draftKey);
  });
  window.addEventListener("pagehide", function () {
    if (submitting || !changed) return;
    const draft = answerFields().map(function (field) {
      return [fieldKey(field), isChoice(field) ? field.checked : field.value];
    });
    try {
      sessionStorage.setItem(draftKey, JSON.stringify(draft));
    } catch (error) {
      // Storage full or disabled: the answers go as they did before.
    }
  });

  const kept = sessionStorage.getItem(draftKey);
  if (kept && !form.querySelector('[role="alert"]')) {
    const values = new Map(JSON.parse(kept));
    answerFields().forEach(function (field) {
      const key = fieldKey(field);
      if (!values.has(key)) return;
      if (isChoice(field)) field.checked = values.get(key);
      else field.value = values.get(key);
    });
    changed = true;
  } else if (kept) {
    sessionStorage.removeItem(draftKey);
  }

  if (window.Tracemark && window.Tracemark.shortcuts) {
    // Listed in the "?" help only: the handler above owns the key.
    window.Tracemark.shortcuts.add({
      display: "Ctrl+Enter",
      group: "Queue item",
      label: "Submit and go to the next item",
    });
  }
})();
