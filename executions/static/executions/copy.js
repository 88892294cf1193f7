/* "Copy" buttons: copy the text of the element named by data-copy to the clipboard. */
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) { return; }
    var source = document.querySelector(button.dataset.copy);
    if (!source) { return; }
    var done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(source.textContent).then(done);
    } else {  // plain http: select the text so the user can press Ctrl+C
      var range = document.createRange();
      range.selectNodeContents(source);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      button.textContent = "Selected: press Ctrl+C";
    }
  });
  document.addEventListener("click", function (event) {
    var el = event.target.closest("form [data-confirm]");
    if (el && !document.querySelector("#execution-live") && !window.confirm(el.dataset.confirm)) {
      event.preventDefault();
    }
  });
})();
