// Queue items: tell the server when the page is in use, so that only that time counts as
// the item's active time (see annotation.quality.record_activity). Every 15 s while the tab
// is visible and someone typed, clicked or scrolled in the last minute, a heartbeat; when
// the tab is hidden, or a minute passes without input, a sign that closes the stretch; when
// the tab is shown or used again, a sign that opens a new one without counting the gap.
(function () {
  "use strict";

  const source = document.querySelector("[data-activity-url]");
  if (!source) return;
  const url = source.dataset.activityUrl;
  const token = document.querySelector("[name=csrfmiddlewaretoken]");
  const INTERVAL_MS = 15000;
  const IDLE_MS = 60000;
  let lastInput = Date.now();
  let open = document.visibilityState === "visible";

  function send(state) {
    const body = new URLSearchParams({ state: state });
    // keepalive: the sign that the tab is hidden must survive the page being left.
    fetch(url, {
      method: "POST",
      headers: { "X-CSRFToken": token ? token.value : "" },
      body: body,
      credentials: "same-origin",
      keepalive: true,
    }).catch(function () {});
  }

  function resume() {
    if (open || document.visibilityState !== "visible") return;
    open = true;
    send("resumed");
  }

  ["keydown", "pointerdown", "pointermove", "wheel", "scroll"].forEach(function (type) {
    document.addEventListener(
      type,
      function () {
        lastInput = Date.now();
        resume();
      },
      { passive: true, capture: true },
    );
  });

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      lastInput = Date.now();
      resume();
    } else if (open) {
      open = false;
      send("hidden");
    }
  });

  window.setInterval(function () {
    if (!open) return;
    if (Date.now() - lastInput > IDLE_MS) {
      open = false;
      send("idle");
    } else {
      send("active");
    }
  }, INTERVAL_MS);
})();
