/* The flow editor: CodeMirror (vendored, served from our static files) on the script field.
   Python highlighting, 4-space indentation kept on Enter, Tab indents with spaces. */
(function () {
  "use strict";
  function init() {
    var area = document.querySelector("textarea.flow-script");
    if (!area || typeof CodeMirror === "undefined" || area.dataset.editor) { return; }
    area.dataset.editor = "codemirror";
    var editor = CodeMirror.fromTextArea(area, {
      mode: { name: "python", version: 3, singleLineStringErrors: false },
      lineNumbers: true,
      indentUnit: 4,
      tabSize: 4,
      indentWithTabs: false,
      smartIndent: true,
      electricChars: true,
      matchBrackets: true,
      styleActiveLine: true,
      viewportMargin: Infinity,
      extraKeys: {
        Tab: function (cm) {
          if (cm.somethingSelected()) { cm.indentSelection("add"); }
          else { cm.replaceSelection("    ", "end"); }
        },
        "Shift-Tab": function (cm) { cm.indentSelection("subtract"); },
        "Ctrl-S": function () { submitWith("_continue"); },
        "Cmd-S": function () { submitWith("_continue"); }
      }
    });
    // Keep the textarea current too, so nothing depends on CodeMirror's submit hook.
    editor.on("change", function () { editor.save(); });
    // An error from the server names the line: show it in the editor.
    var errors = document.querySelectorAll(".field-script .errorlist li");
    errors.forEach(function (li) {
      var m = /line (\d+)/.exec(li.textContent);
      if (m) {
        var line = parseInt(m[1], 10) - 1;
        editor.addLineClass(line, "background", "cm-error-line");
        editor.scrollIntoView({ line: line, ch: 0 }, 80);
      }
    });
    window.flowEditor = editor;
  }
  function submitWith(name) {
    var button = document.querySelector('#flow_form input[name="' + name + '"]');
    if (button) { button.click(); }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); }
  else { init(); }
})();
