// docket's dashboard: live updates and selection. No framework, no build step.
// A live page (its <main> names an event stream in data-events) fetches itself again
// when the stream says something changed, at most a few times a second, and swaps in
// the new <main> unless the operator is in the middle of something on it.
(function () {
  "use strict";

  var main = document.getElementById("main");
  if (!main) return;

  // Select-all boxes.
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (box.matches && box.matches("[data-select-all]")) {
      var table = box.closest("table");
      if (!table) return;
      table.querySelectorAll('input[name="key"]').forEach(function (other) {
        other.checked = box.checked;
      });
    }
  });

  var stream = main.getAttribute("data-events");
  if (!stream || !window.EventSource || !window.fetch) return;

  var MIN_GAP = 400;
  var last = 0;
  var timer = null;
  var fetching = false;

  // The operator is selecting, typing or choosing: leave the page as it is.
  function busy() {
    var active = document.activeElement;
    if (active && main.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName) &&
        active.type !== "submit") {
      return true;
    }
    return main.querySelector('input[name="key"]:checked') !== null;
  }

  function refresh() {
    timer = null;
    if (fetching) { schedule(); return; }
    if (busy()) { schedule(1000); return; }
    fetching = true;
    last = Date.now();
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Docket-Live": "1" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (text) {
        if (text === null || busy()) return;
        var fresh = new DOMParser().parseFromString(text, "text/html").getElementById("main");
        if (fresh) main.innerHTML = fresh.innerHTML;
      })
      .catch(function () {})
      .then(function () { fetching = false; });
  }

  function schedule(delay) {
    if (timer !== null) return;
    var wait = delay !== undefined ? delay : Math.max(0, MIN_GAP - (Date.now() - last));
    timer = setTimeout(refresh, wait);
  }

  var source = new EventSource(stream);
  source.addEventListener("changed", function () { schedule(); });
  source.addEventListener("open", function () {
    document.documentElement.setAttribute("data-live", "connected");
  });
})();
