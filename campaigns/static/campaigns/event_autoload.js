// Choosing an event in the "event" select loads its fields at once, by clicking the page's
// "Use this event" button (the script tag's data-button); without script the button does the same.
// A file, not an inline script, because the Content-Security-Policy runs scripts only from files.
(function () {
  "use strict";
  var button = document.currentScript.dataset.button;
  document.getElementById("id_event").addEventListener("change", function () {
    document.getElementById(button).click();
  });
})();
