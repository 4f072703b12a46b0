// The label schema form: a fieldset marked data-shown-when="<field>" data-shown-for="<values>"
// shows only while that field has one of those values. Without JavaScript every fieldset
// shows, and saving empties the fields that do not apply to the chosen type.
(function () {
  "use strict";

  function update(form) {
    for (const fieldset of form.querySelectorAll("fieldset[data-shown-when]")) {
      const control = form.elements.namedItem(fieldset.dataset.shownWhen);
      if (!control) continue;
      fieldset.hidden = !fieldset.dataset.shownFor.split(" ").includes(control.value);
    }
  }

  for (const form of document.querySelectorAll("form[data-schema-form]")) {
    form.addEventListener("change", function () { update(form); });
    update(form);
  }
})();
