// The trace review page: the span tree as an ARIA tree (arrow keys, roving tabindex,
// children loaded on demand), the review shortcuts (j/k, q between questions, y/n, digits
// and letters, e) registered with the "?" help from shortcuts.js, and focus kept in place
// when htmx swaps a feedback region.
// Everything here is an enhancement: links and forms work without it.
(function () {
  "use strict";

  const tree = document.getElementById("span-tree");
  const status = document.getElementById("review-status");
  let quiet = null;

  // The status line says what a key or a save just did, read out and shown for a moment.
  function say(text) {
    if (!status) return;
    status.textContent = text;
    clearTimeout(quiet);
    if (text) quiet = setTimeout(function () { status.textContent = ""; }, 5000);
  }

  // ---- Span tree -------------------------------------------------------------------

  // Each treeitem is a row; its children's group is the row's next sibling, which it owns.
  function parentOf(item) {
    const group = item.closest('[role="group"]');
    return group ? group.previousElementSibling : null;
  }

  // Content swapped in a moment ago is wired to htmx only when the swap settles (~20 ms
  // later); a key in between would follow a link or post a form the plain way and reload
  // the page. Wiring it first is harmless when htmx already has.
  function press(element) {
    if (window.htmx) htmx.process(element.closest("form") || element);
    element.click();
  }

  function groupOf(item) {
    const next = item.nextElementSibling;
    return next && next.matches('[role="group"]') ? next : null;
  }

  function items() {
    return Array.from(tree.querySelectorAll('[role="treeitem"]')).filter(isVisible);
  }

  function isVisible(item) {
    for (let parent = parentOf(item); parent; parent = parentOf(parent)) {
      if (parent.getAttribute("aria-expanded") !== "true") return false;
    }
    return true;
  }

  function focusItem(item) {
    if (!item) return;
    tree.querySelectorAll('[role="treeitem"][tabindex="0"]').forEach(function (other) {
      other.setAttribute("tabindex", "-1");
    });
    item.setAttribute("tabindex", "0");
    item.focus();
  }

  function expand(item) {
    if (!item.hasAttribute("aria-expanded")) return;
    item.setAttribute("aria-expanded", "true");
    if (!item.hasAttribute("data-loaded") && window.htmx) {
      item.setAttribute("data-loaded", "");
      htmx.ajax("GET", item.dataset.childrenUrl, { target: groupOf(item), swap: "outerHTML" });
    }
  }

  function collapse(item) {
    if (item.getAttribute("aria-expanded") === "true") item.setAttribute("aria-expanded", "false");
  }

  function select(item) {
    tree.querySelectorAll('[aria-selected="true"]').forEach(function (other) {
      other.setAttribute("aria-selected", "false");
    });
    item.setAttribute("aria-selected", "true");
  }

  function onTreeKey(event) {
    const item = event.target.closest('[role="treeitem"]');
    if (!item || event.ctrlKey || event.metaKey || event.altKey) return;
    const visible = items();
    const index = visible.indexOf(item);
    const parent = parentOf(item);
    switch (event.key) {
      case "ArrowDown":
        focusItem(visible[index + 1]);
        break;
      case "ArrowUp":
        focusItem(visible[index - 1]);
        break;
      case "Home":
        focusItem(visible[0]);
        break;
      case "End":
        focusItem(visible[visible.length - 1]);
        break;
      case "ArrowRight":
        if (item.getAttribute("aria-expanded") === "false") expand(item);
        else if (item.getAttribute("aria-expanded") === "true") {
          focusItem(groupOf(item).querySelector('[role="treeitem"]'));
        }
        break;
      case "ArrowLeft":
        if (item.getAttribute("aria-expanded") === "true") collapse(item);
        else focusItem(parent);
        break;
      case "Enter":
      case " ":
        press(item.querySelector(".node-link"));
        break;
      default:
        return;
    }
    event.preventDefault();
  }

  function onTreeClick(event) {
    const item = event.target.closest('[role="treeitem"]');
    if (!item) return;
    if (event.target.closest(".twisty")) {
      if (item.getAttribute("aria-expanded") === "true") collapse(item);
      else expand(item);
    } else if (event.target.closest(".node-link")) {
      select(item);
      if (item.getAttribute("aria-expanded") === "false") expand(item);
    }
    focusItem(item);
  }

  if (tree) {
    const start = tree.querySelector('[aria-selected="true"]') || tree.querySelector('[role="treeitem"]');
    if (start) start.setAttribute("tabindex", "0");
    tree.addEventListener("keydown", onTreeKey);
    tree.addEventListener("click", onTreeClick);
  }

  // ---- The selected span's detail --------------------------------------------------

  // Side by side (wide screens) the detail pane scrolls to the span and focus stays in the
  // tree, so arrows keep walking it; stacked (narrow screens, zoom) the page scrolls to the
  // detail and focus follows, with "Back to the span tree" to return.
  const stacked = window.matchMedia("(max-width: 60rem)");
  let revealPending = false;

  function revealSpan(moveFocus, block) {
    const panel = document.getElementById("span-panel");
    if (!panel || !panel.querySelector(".span-detail")) return;
    panel.scrollIntoView({ block: block || "start" });
    const title = document.getElementById("span-title");
    if (moveFocus && title) title.focus({ preventScroll: true });
  }

  function selectedItem() {
    return tree && tree.querySelector('[aria-selected="true"]');
  }

  if (tree) {
    tree.addEventListener("click", function (event) {
      if (event.target.closest(".node-link")) revealPending = true;
    });
    // Selecting a collapsed span also asks for its children; whichever reply lands first,
    // only the detail's arrival reveals it.
    document.body.addEventListener("htmx:afterSettle", function (event) {
      const settled = event.target instanceof Element && event.target.closest("#span-panel");
      if (!revealPending || !settled) return;
      revealPending = false;
      revealSpan(stacked.matches);
    });
  }

  // ---- Tree tools: find, collapse all, next error ---------------------------------

  function findSpan() {
    const field = document.getElementById("span-find");
    if (!field) return false;
    field.focus();
    field.select();
  }

  // The next failing span after the selected one, as the server orders them.
  function nextError() {
    if (!tree) return false;
    const params = new URLSearchParams(window.location.search);
    const item = selectedItem();
    if (item) params.set("span", item.dataset.spanId);
    params.set("next_error", "1");
    window.location.assign("?" + params.toString());
  }

  // Straight to the span tree from anywhere on the page, at the span selected.
  function goToTree() {
    if (!tree) return false;
    const item = selectedItem() || tree.querySelector('[role="treeitem"][tabindex="0"]');
    if (!item) return false;
    item.scrollIntoView({ block: "nearest" });
    focusItem(item);
  }

  function collapseAll() {
    if (!tree) return;
    tree.querySelectorAll('[role="treeitem"][aria-expanded="true"]').forEach(collapse);
    focusItem(tree.querySelector('[role="treeitem"]'));
  }

  document.addEventListener("click", function (event) {
    if (!(event.target instanceof Element)) return;
    if (event.target.closest("button[data-collapse-all]")) collapseAll();
    else if (event.target.closest("a[data-next-error]")) {
      event.preventDefault();
      nextError();
    }
  });

  document.addEventListener("click", function (event) {
    const back = event.target instanceof Element && event.target.closest("[data-back-to-tree]");
    const item = back && selectedItem();
    if (!item) return;
    event.preventDefault();
    item.scrollIntoView({ block: "nearest" });
    focusItem(item);
  });

  // ---- Shortcuts -------------------------------------------------------------------

  // The region the labelling keys act on: the one holding focus, else the selected span's
  // when focus is in the tree or span panel, else the trace's.
  function activeRegion() {
    const focused = document.activeElement;
    const inside = focused && focused.closest("[data-region]");
    if (inside) return inside;
    const spanRegion = document.querySelector("#span-panel [data-region]");
    if (spanRegion && focused && focused.closest("#span-tree, #span-panel")) return spanRegion;
    return document.getElementById("assessments-trace") || document.querySelector("[data-region]");
  }

  // ---- Questions: q moves between them, y/n, digits and letters answer one ----------

  function questions() {
    return Array.from(document.querySelectorAll("[data-question]"));
  }

  // On a short screen the focused question may sit below the fold; bring it and its
  // options into view so the keys answer something the reviewer can see.
  const calm = window.matchMedia("(prefers-reduced-motion: reduce)");
  function reveal(question, instantly) {
    const behavior = instantly || calm.matches ? "auto" : "smooth";
    question.scrollIntoView({ block: "nearest", behavior: behavior });
  }

  function focusQuestion(question, instantly) {
    question.focus({ preventScroll: true });
    reveal(question, instantly);
  }

  function focusedQuestion() {
    const focused = document.activeElement;
    return focused && focused.closest ? focused.closest("[data-question]") : null;
  }

  function moveQuestion(step) {
    return function () {
      const all = questions();
      if (!all.length) return false;
      const index = all.indexOf(focusedQuestion());
      const next = index < 0 ? (step > 0 ? 0 : all.length - 1) : (index + step + all.length) % all.length;
      focusQuestion(all[next]);
    };
  }

  function isAnswered(question) {
    if (question.querySelector('button[aria-pressed="true"]')) return true;
    const fields = question.querySelectorAll('input[name$="value"], select[name$="value"], textarea[name$="value"]');
    return Array.from(fields).some(function (field) {
      return field.type === "radio" || field.type === "checkbox" ? field.checked : field.value.trim() !== "";
    });
  }

  // The focused question answers when it has the key. A key it does not have answers the
  // first question in the active region that has it and is still unanswered, and focus
  // goes there, so it comes back there after the save. An answer already given changes
  // only with its own question focused: never out of sight.
  function answer(key) {
    const question = focusedQuestion();
    const selector = '[data-key="' + key + '"]';
    let option = question && question.querySelector(selector);
    if (!option) {
      let region = activeRegion();
      // A span no question of which takes the key leaves it to the trace's questions.
      const traceRegion = document.getElementById("assessments-trace");
      if (region && traceRegion && !region.querySelector(selector)) region = traceRegion;
      const target =
        region &&
        Array.from(region.querySelectorAll("[data-question]")).find(function (other) {
          return other !== question && other.querySelector(selector) && !isAnswered(other);
        });
      option = target && target.querySelector(selector);
      if (!option && region && region.querySelector(selector)) {
        say("Already answered: press q to reach the question and change it.");
      }
    }
    if (!option) return false;
    say("");
    const target = option.closest("[data-question]");
    if (target && target !== question) target.focus({ preventScroll: true });
    if (target) reveal(target);
    press(option);
    if (labelForm && target && option.type === "radio") moveOn(target);
  }

  // On a queue item the answers are a form filled in until the submit, so a key's answer
  // moves on to the next question still unanswered (a multi-select question stays, for
  // more options). On the review page each answer saves and focus stays with it.
  function moveOn(question) {
    const all = questions();
    const after = all.slice(all.indexOf(question) + 1).concat(all);
    const next = after.find(function (other) {
      return other !== question && !isAnswered(other);
    });
    if (next) focusQuestion(next);
  }

  // A queue item opens with its first question focused, ready for a key; after a submit
  // the server refused (shown in an alert), with the first required one still unanswered.
  const labelForm = document.querySelector("[data-autofocus-question]");
  if (labelForm) {
    const refused = labelForm.querySelector('[role="alert"]');
    const missing = refused
      ? Array.from(labelForm.querySelectorAll("[data-question][data-required]")).find(function (q) {
          return !isAnswered(q);
        })
      : null;
    const firstQuestion = missing || labelForm.querySelector("[data-question]");
    if (firstQuestion) focusQuestion(firstQuestion, true);
  }
  // A page opened at a span (a deep link, an Error trace at its failing span) shows it; a
  // queue item's form shares its pane, so there the span comes into view as little as
  // needed, after the question, and keeps the error on screen.
  if (selectedItem()) revealSpan(false, labelForm ? "nearest" : "start");

  function follow(rel) {
    return function () {
      const link = document.querySelector('.trace-nav a[rel="' + rel + '"]');
      if (!link) return false;
      link.click();
    };
  }

  function edit() {
    const region = activeRegion();
    if (!region) return false;
    // Only your own entry: others' are theirs to change (the server refuses it too).
    const details = region.querySelector("[data-mine] details.edit");
    if (!details) return false;
    details.open = true;
    const field = details.querySelector("input:not([type=hidden]), select, textarea");
    if (field) field.focus();
  }

  // Labelling keys are listed only where the reader has questions to answer.
  function canLabel() {
    return document.querySelector("[data-question]") !== null;
  }

  // Moving between traces and editing saved feedback belong to the review page; a queue
  // item has neither (its answer is edited in place until submitted).
  function onReviewPage() {
    return document.querySelector("[data-review]") !== null;
  }

  function canEdit() {
    return canLabel() && onReviewPage();
  }

  const shortcuts = [
    { key: "j", label: "Next trace", run: follow("next"), when: onReviewPage },
    { key: "k", label: "Previous trace", run: follow("prev"), when: onReviewPage },
    { key: "q", label: "Next question", run: moveQuestion(1), when: canLabel },
    { key: "Q", display: "Shift+q", label: "Previous question", run: moveQuestion(-1), when: canLabel },
    { key: "e", label: "Edit your feedback", run: edit, when: canEdit },
    { key: "T", display: "Shift+t", label: "Go to the span tree", run: goToTree },
    { key: "E", display: "Shift+e", label: "Next failing span", run: nextError },
    { key: "/", label: "Find a span", run: findSpan },
  ];
  // Listed once in the help; the keys themselves are handled below (their run lets the
  // key through to that handler).
  const passOn = function () {
    return false;
  };
  const helpOnly = [
    { key: "y", label: "Yes (the focused question, else the first yes/no unanswered)", run: passOn, when: canLabel },
    { key: "n", label: "No (likewise)", run: passOn, when: canLabel },
    { key: "1-9", display: "1 – 9", label: "Rate (likewise)", run: passOn, when: canLabel },
    { key: "letters", display: "a b c …", label: "Pick the category shown on the option (likewise)", run: passOn, when: canLabel },
    { key: "arrows", display: "↑ ↓ ← →", label: "Move in the span tree (Enter selects)", run: passOn },
  ];

  const registry = window.Tracemark && window.Tracemark.shortcuts;
  if (registry) {
    shortcuts.concat(helpOnly).forEach(function (shortcut) {
      registry.add(Object.assign({ group: onReviewPage() ? "Review page" : "Queue item" }, shortcut));
    });
  }

  function isTyping(target) {
    if (registry) return registry.isTyping(target);
    return target instanceof Element && target.closest("input, textarea, select") !== null;
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (isTyping(event.target) || document.querySelector("dialog[open]")) return;
    let run = null;
    if (event.key.length === 1 && /[a-z0-9]/.test(event.key) && event.key !== "q") {
      run = function () {
        return answer(event.key);
      };
    }
    // Keys no option claims fall through to the page's shortcuts.
    if (run && run() !== false) {
      event.preventDefault();
      return;
    }
    if (!registry) {
      // Without the shared help overlay the other keys still work.
      const shortcut = shortcuts.find(function (s) {
        return s.key === event.key;
      });
      if (shortcut && shortcut.run(event) !== false) event.preventDefault();
    }
  });

  // ---- Focus and announcements around htmx swaps -----------------------------------

  let remembered = null;

  document.body.addEventListener("htmx:beforeSwap", function (event) {
    const focused = document.activeElement;
    const region = focused && focused.closest("[data-region]");
    if (region && event.detail.target === region) {
      const question = focused.closest("[data-question]");
      remembered = {
        region: region.id,
        id: focused.id,
        question: question && question.id,
        key: focused.dataset.key,
      };
    }
  });

  document.body.addEventListener("htmx:afterSettle", function () {
    const alert = document.querySelector("[data-autofocus]");
    if (alert) {
      alert.removeAttribute("data-autofocus");
      alert.focus();
      return;
    }
    // Other regions (the span summary) may settle in between; wait for this one.
    const region = remembered && document.getElementById(remembered.region);
    if (!region || region.classList.contains("htmx-settling")) return;
    // htmx may have put focus back already (same id, without scrolling); else restore it.
    if (document.activeElement === document.body || !document.activeElement.isConnected) {
      const question = remembered.question && document.getElementById(remembered.question);
      const scope = question || region;
      const again =
        (remembered.id && document.getElementById(remembered.id)) ||
        (remembered.key && scope.querySelector('[data-key="' + remembered.key + '"]')) ||
        question ||
        region.querySelector("h3");
      if (again) again.focus({ preventScroll: true });
    }
    remembered = null;
    // An entry's own forms (Edit, Override, Delete, Restore) are gone with the swap: focus
    // its first control now, Restore after a delete, Edit otherwise.
    const entry = savedEntry && document.getElementById(savedEntry);
    savedEntry = null;
    if (entry && (document.activeElement === document.body || !document.activeElement.isConnected)) {
      const control = entry.querySelector(".actions summary, .actions button");
      control.focus({ preventScroll: true });
      control.scrollIntoView({ block: "nearest" });
    }
    const answered = focusedQuestion();
    if (answered) reveal(answered);
  });

  const said = { delete: "Deleted.", restore: "Restored.", override: "Overridden." };
  let savedEntry = null;

  // htmx fires this on receiving the reply, before the swap it settles after.
  document.body.addEventListener("assessment-saved", function (event) {
    const detail = event.detail || {};
    savedEntry = detail.assessment_id || null;
    say(said[detail.action] || "Saved.");
  });
})();
