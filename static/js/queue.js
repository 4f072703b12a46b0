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

  if (window.Tracemark && window.Tracemark.shortcuts) {
    // Listed in the "?" help only: the handler above owns the key.
    window.Tracemark.shortcuts.add({
      display: "Ctrl+Enter",
      group: "Queue",
      label: "Submit and go to the next item",
    });
  }
})();
