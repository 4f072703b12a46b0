// The trace list: j / k move between rows, Enter opens the row's trace, / jumps to search.
// Moving focuses the row's trace link, so Enter is the browser's own link activation and
// focus stays visible; the list keeps no state of its own across htmx swaps.
(function () {
  "use strict";

  function rowLinks() {
    return Array.from(document.querySelectorAll("#trace-rows a[data-trace-link]"));
  }

  function move(step) {
    const links = rowLinks();
    if (links.length === 0) return;
    const row = document.activeElement && document.activeElement.closest("#trace-rows tr");
    const current = row ? links.indexOf(row.querySelector("a[data-trace-link]")) : -1;
    const next = current === -1 ? (step > 0 ? 0 : links.length - 1) : current + step;
    const link = links[Math.max(0, Math.min(links.length - 1, next))];
    link.focus();
    link.closest("tr").scrollIntoView({ block: "nearest" });
  }

  function onList() {
    return document.getElementById("trace-rows") !== null;
  }

  const shortcuts = window.Tracemark.shortcuts;
  shortcuts.add({ key: "j", group: "Trace list", label: "Next trace", when: onList, run: function () { move(1); } });
  shortcuts.add({ key: "k", group: "Trace list", label: "Previous trace", when: onList, run: function () { move(-1); } });
  shortcuts.add({
    key: "Enter",
    group: "Trace list",
    label: "Open the selected trace",
    when: onList,
    run: function () {
      const row = document.activeElement && document.activeElement.closest("#trace-rows tr");
      if (!row || document.activeElement.matches("a, button, summary")) return false;
      row.querySelector("a[data-trace-link]").click();
    },
  });
  shortcuts.add({
    key: "/",
    group: "Trace list",
    label: "Search traces",
    when: function () { return document.getElementById("id_q") !== null; },
    run: function () { document.getElementById("id_q").focus(); },
  });

  // htmx keeps each page of its history as HTML, and the back button puts that HTML back.
  // Typed values live in properties, not attributes, so after each pushed URL the filter
  // form's attributes are set from that URL: the saved page then shows the filters that
  // produced it, while what the reader is typing stays untouched.
  document.addEventListener("htmx:pushedIntoHistory", function (event) {
    const form = document.getElementById("trace-filters");
    if (!form) return;
    const params = new URL(event.detail.path, location.href).searchParams;
    for (const field of form.querySelectorAll("input[name], select[name]")) {
      const value = params.get(field.name) || "";
      if (field instanceof HTMLSelectElement) {
        const options = Array.from(field.options);
        const chosen = options.find(function (o) { return o.value === value; }) || options[0];
        for (const option of options) option.toggleAttribute("selected", option === chosen);
        field.value = chosen.value;
      } else {
        field.setAttribute("value", value);
      }
    }
  });
})();
