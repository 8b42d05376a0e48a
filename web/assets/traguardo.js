// Traguardo: pages marked data-live="FILTER" refresh their #live region when the
// log advances on a stream whose name contains FILTER. Forms work without this.
(function () {
  "use strict";
  var first = document.getElementById("live");
  if (!first || !window.EventSource || !window.htmx) { return; }
  var filter = first.getAttribute("data-live") || "";
  var status = document.getElementById("live-status");
  var pending = null;
  var source = new EventSource("/eventi");
  source.addEventListener("avanzamento", function (e) {
    var live = document.getElementById("live");
    if (!live) { return; }
    if (filter && e.data.indexOf(filter) === -1) { return; }
    if (pending) { return; }
    // Never replace a form someone is filling in: they would lose what they typed.
    if (live.querySelector("details[open]") || (document.activeElement && live.contains(document.activeElement) && document.activeElement.form)) { return; }
    pending = setTimeout(function () {
      pending = null;
      window.htmx.ajax("GET", window.location.href, { target: "#live", select: "#live", swap: "outerHTML" })
        .then(function () {
          if (status) { status.textContent = "Aggiornato alle " + new Date().toLocaleTimeString("it-IT"); }
        });
    }, 100);
  });
})();
