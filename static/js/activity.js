// Queue items: tell the server the page is in use, every 15 s while the tab is visible and
// someone typed, clicked or scrolled in the last minute, so idle or hidden tabs add no
// active time to the item (see annotation.quality).
(function () {
  "use strict";

  const source = document.querySelector("[data-activity-url]");
  if (!source) return;
  const url = source.dataset.activityUrl;
  const token = document.querySelector("[name=csrfmiddlewaretoken]");
  const INTERVAL_MS = 15000;
  const IDLE_MS = 60000;
  let lastInput = Date.now();

  ["keydown", "pointerdown", "pointermove", "wheel", "scroll"].forEach(function (type) {
    document.addEventListener(
      type,
      function () {
        lastInput = Date.now();
      },
      { passive: true, capture: true },
    );
  });

  window.setInterval(function () {
    if (document.visibilityState !== "visible" || Date.now() - lastInput > IDLE_MS) return;
    fetch(url, {
      method: "POST",
      headers: { "X-CSRFToken": token ? token.value : "" },
      credentials: "same-origin",
    }).catch(function () {});
  }, INTERVAL_MS);
})();
