// Keyboard shortcuts shared by every page, the "?" help that lists them, and where
// focus starts on a page that opens with a message.
//
// Pages add their own with
//   Tracemark.shortcuts.add({key: "j", group: "Trace list", label: "Next trace", run: fn})
// `key` is KeyboardEvent.key ("j", "Enter", "ArrowDown", "?"); an optional `when()` limits
// it, and its line in the help, to pages or states where it applies; `run(event)`
// returning false lets the key through.
// Keys are ignored while typing in a field or with Ctrl/Alt/Meta held. An entry without
// `key` (a chord a page handles itself, such as Ctrl+Enter) is only listed in the help.
// base.html loads this file at the end of <body>, before the page's own scripts.
(function () {
  "use strict";

  const registered = [];

  function add(shortcut) {
    registered.push(shortcut);
  }

  function isTyping(target) {
    return (
      target instanceof HTMLElement &&
      (target.isContentEditable || target.closest("input, textarea, select") !== null)
    );
  }

  function renderHelp(container) {
    const groups = new Map();
    for (const shortcut of registered) {
      if (shortcut.when && !shortcut.when()) continue;
      const group = shortcut.group || "Everywhere";
      if (!groups.has(group)) groups.set(group, []);
      groups.get(group).push(shortcut);
    }
    const sections = [];
    for (const [group, shortcuts] of groups) {
      const heading = document.createElement("h3");
      heading.textContent = group;
      const list = document.createElement("dl");
      for (const shortcut of shortcuts) {
        const term = document.createElement("dt");
        const kbd = document.createElement("kbd");
        kbd.textContent = shortcut.display || shortcut.key;
        term.append(kbd);
        const description = document.createElement("dd");
        description.textContent = shortcut.label;
        list.append(term, description);
      }
      sections.push(heading, list);
    }
    container.replaceChildren(...sections);
  }

  function showHelp() {
    const dialog = document.getElementById("shortcut-help");
    if (!dialog || dialog.open) return;
    renderHelp(dialog.querySelector("[data-shortcut-list]"));
    dialog.showModal();
  }

  add({ key: "?", label: "Show these shortcuts", run: showHelp });

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (isTyping(event.target)) return;
    if (document.querySelector("dialog[open]")) return;
    const shortcut = registered.find(function (s) {
      return s.key === event.key && (!s.when || s.when());
    });
    if (shortcut && shortcut.run(event) !== false) event.preventDefault();
  });

  document.addEventListener("click", function (event) {
    if (event.target instanceof Element && event.target.closest("[data-shortcut-help]")) {
      showHelp();
    }
  });

  // A page that opens with a message (after a save, a submit, the last item of a queue)
  // starts there, so the keyboard goes on from what just happened, not from the top. A
  // page's own script may then focus something else (the first question of an item).
  const flash = document.getElementById("messages");
  if (flash && document.activeElement === document.body) flash.focus();

  window.Tracemark = window.Tracemark || {};
  window.Tracemark.shortcuts = { add: add, showHelp: showHelp, isTyping: isTyping };
})();
