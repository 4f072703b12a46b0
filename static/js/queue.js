// Queue labeling: Ctrl+Enter (Cmd+Enter on macOS) submits the answer and opens the next
// item, from anywhere on the page, including while typing a rationale.
(function () {
  "use strict";

  const form = document.querySelector("form[data-submit-shortcut]");
  if (!form) return;

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
    event.preventDefault();
    form.requestSubmit();
  });

  if (window.Tracemark && window.Tracemark.shortcuts) {
    window.Tracemark.shortcuts.add({
      key: "Enter",
      display: "Ctrl+Enter",
      group: "Queue",
      label: "Submit and go to the next item",
      run: function () {
        form.requestSubmit();
      },
    });
  }
})();
