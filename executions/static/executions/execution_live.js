/* The execution page keeps itself current while the execution runs: it asks a small admin
   JSON view about once a second for what changed (status, output, new log entries,
   children, open forms) since its last answer, and
   stops when the execution has ended (or after an hour, or after repeated errors). */
(function () {
  "use strict";
  var INTERVAL = 1000, MAX_POLLS = 3600, MAX_FAILURES = 20;

  document.addEventListener("click", function (event) {
    var el = event.target.closest("[data-confirm]");
    if (el && !window.confirm(el.dataset.confirm)) { event.preventDefault(); }
  });

  function badge(status) {
    var span = document.createElement("span");
    span.className = "status status-" + status;
    span.title = status;
    var label = status.replace("ENDED_", "").toLowerCase();
    span.textContent = label.charAt(0).toUpperCase() + label.slice(1);
    return span;
  }
  function text(id, value) {
    var el = document.getElementById(id);
    if (el && el.textContent !== value) { el.textContent = value; }
  }

  function start() {
    var root = document.getElementById("execution-live");
    if (!root || root.dataset.ended === "true") { return; }
    var url = root.dataset.liveUrl, after = parseInt(root.dataset.lastLog || "0", 10);
    var polls = 0, failures = 0, lastStatus = null, version = root.dataset.version || "";
    var formsBox = document.getElementById("execution-forms");
    var logBody = document.querySelector("#execution-log tbody");

    function addLogs(entries) {
      entries.forEach(function (entry) {
        var row = document.createElement("tr");
        row.className = "log-" + entry.level.toLowerCase();
        row.dataset.id = entry.id;
        [entry.time, entry.level].forEach(function (value, i) {
          var td = document.createElement("td");
          td.className = i === 0 ? "log-time" : "log-level";
          td.textContent = value;
          row.appendChild(td);
        });
        var td = document.createElement("td");
        td.className = "log-text";
        var whole = td;
        if (entry.summary) {  // a long entry: its first line, the rest behind "show all"
          var details = document.createElement("details");
          details.className = "log-fold";
          var summary = document.createElement("summary");
          summary.textContent = entry.summary + " ";
          var more = document.createElement("span");
          more.className = "show-all";
          more.textContent = "show all";
          summary.appendChild(more);
          whole = document.createElement("div");
          whole.className = "log-whole";
          details.appendChild(summary);
          details.appendChild(whole);
          td.appendChild(details);
        }
        whole.appendChild(document.createTextNode(entry.text));
        if (entry.data_text) {
          var code = document.createElement("code");
          code.textContent = entry.data_text;
          whole.appendChild(document.createTextNode(" "));
          whole.appendChild(code);
        }
        row.appendChild(td);
        logBody.appendChild(row);
        after = Math.max(after, entry.id);
      });
      if (entries.length) { document.getElementById("no-log").hidden = true; }
    }

    // Each answer carries only what changed since the `version` we send back (see
    // executions/admin/views.py live_payload): a part that is absent is unchanged.
    function apply(data) {
      version = data.version;
      var ex = data.execution;
      if (ex) {
        if (ex.status !== lastStatus) {
          var holder = document.getElementById("execution-status");
          holder.replaceChildren(badge(ex.status));
          lastStatus = ex.status;
        }
        text("execution-started", ex.started_text);
        text("execution-ended", ex.ended_text);
        var box = document.getElementById("execution-message-box");
        box.hidden = !ex.message;
        box.classList.toggle("is-error", ex.status === "ENDED_ERROR");
        text("execution-message-label", ex.status === "ENDED_ERROR" ? "Error" : "Message");
        text("execution-message", ex.message);
      }
      text("execution-duration", data.duration || "—");
      if (data.output_json !== undefined) { text("execution-output", data.output_json); }
      addLogs(data.logs);
      if (data.children_html !== undefined) {
        document.getElementById("execution-children").innerHTML = data.children_html;
        document.getElementById("no-children").hidden = data.children_html.trim() !== "";
      }
      // Open message forms: replaced only when the set changes, so typing is not lost.
      if (formsBox && data.open_forms !== undefined && data.open_forms !== formsBox.dataset.openForms) {
        formsBox.innerHTML = data.forms_html;
        formsBox.dataset.openForms = data.open_forms;
      }
      if (data.ended) {
        root.dataset.ended = "true";
        document.querySelectorAll("#execution-live .when-active").forEach(function (el) { el.hidden = true; });
        text("live-note", "");
        text("no-log", "No log entries.");  // not "yet": nothing more will come
      }
    }

    function stop(note) { text("live-note", note); }

    function poll() {
      polls += 1;
      fetch(url + "?after=" + after + "&version=" + encodeURIComponent(version), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.json();
        })
        .then(function (data) {
          failures = 0;
          apply(data);
          if (data.ended && !data.more_logs) { return; }
          if (polls >= MAX_POLLS) { stop("live updates stopped: reload the page to see more"); return; }
          setTimeout(poll, data.more_logs ? 0 : INTERVAL);
        })
        .catch(function () {
          failures += 1;
          if (failures >= MAX_FAILURES || polls >= MAX_POLLS) {
            stop("live updates stopped: reload the page to see more");
            return;
          }
          setTimeout(poll, Math.min(INTERVAL * Math.pow(2, failures), 15000));
        });
    }
    setTimeout(poll, INTERVAL);
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); }
  else { start(); }
})();
