/* The workflow editor's behaviour on the admin change page. Without it the page still
 * works (every config field shows, order follows the hidden positions); with it staff see
 * only the fields of the chosen step kind, reorder steps with ↑ ↓, pick branches that are
 * not saved yet, and insert references without typing paths. */
(function () {
  "use strict";

  var config = {};

  /* Words come from the page (the template translates them); English if it has none. */
  function word(key, english) {
    return (config.labels && config.labels[key]) || english;
  }

  function $all(root, selector) {
    return Array.prototype.slice.call(root.querySelectorAll(selector));
  }

  function stepForms() {
    return $all(document, "#steps-group .inline-related").filter(function (el) {
      return !el.classList.contains("empty-form") && el.id.indexOf("__prefix__") === -1;
    });
  }

  function field(form, name) {
    return form.querySelector('[name$="-' + name + '"]');
  }

  function isDeleted(form) {
    var del = field(form, "DELETE");
    return del && del.checked;
  }

  /* --- kind-dependent config fieldsets ------------------------------------------ */
  function showConfigFor(form) {
    var kind = field(form, "kind");
    var slug = kind ? kind.value.replace(/\./g, "_") : "";
    $all(form, "fieldset.kanri-config").forEach(function (fs) {
      fs.hidden = !fs.classList.contains("kanri-config-" + slug);
    });
  }

  /* --- ordering -------------------------------------------------------------------- */
  function renumber() {
    stepForms().forEach(function (form, index) {
      var position = field(form, "position");
      if (position) position.value = (index + 1) * 10;
    });
  }

  function addMoveButtons(form) {
    if (form.querySelector(".kanri-move") || !field(form, "position")) return;
    var bar = document.createElement("span");
    bar.className = "kanri-move";
    [["↑", -1, word("moveUp", "Move up")], ["↓", 1, word("moveDown", "Move down")]].forEach(function (spec) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = spec[0];
      button.title = spec[2];
      button.className = spec[1] < 0 ? "kanri-up" : "kanri-down";
      button.addEventListener("click", function () {
        var forms = stepForms();
        var i = forms.indexOf(form);
        var j = i + spec[1];
        if (j < 0 || j >= forms.length) return;
        if (spec[1] < 0) forms[j].parentNode.insertBefore(form, forms[j]);
        else forms[j].parentNode.insertBefore(forms[j], form);
        renumber();
        refreshAll();
      });
      bar.appendChild(button);
    });
    var heading = form.querySelector("h3") || form.firstChild;
    heading.appendChild(bar);
  }

  /* --- branches not saved yet -------------------------------------------------- */
  function branchNames() {
    return stepForms()
      .filter(function (form) {
        var kind = field(form, "kind");
        var name = field(form, "name");
        return !isDeleted(form) && kind && kind.value === "branch" && name && name.value;
      })
      .map(function (form) { return field(form, "name").value; });
  }

  function setOptions(select, options) {
    var current = select.value;
    select.innerHTML = "";
    options.forEach(function (pair) {
      var option = document.createElement("option");
      option.value = pair[0];
      option.textContent = pair[1];
      select.appendChild(option);
    });
    if (options.some(function (pair) { return pair[0] === current; })) select.value = current;
    else if (current) {
      var kept = document.createElement("option");
      kept.value = kept.textContent = current;
      select.appendChild(kept);
      select.value = current;
    }
  }

  function refreshBranches() {
    var names = branchNames();
    $all(document, 'select[name$="-placement"]').forEach(function (select) {
      var own = select.closest(".inline-related");
      var ownName = own && field(own, "name") ? field(own, "name").value : "";
      var options = [["", word("topLevel", "Top level")]];
      names.forEach(function (name) {
        if (name === ownName) return;
        options.push([name + ":then", name + " → " + word("then", "If")]);
        options.push([name + ":else", name + " → " + word("otherwise", "All other cases")]);
      });
      setOptions(select, options);
    });
    $all(document, 'select[name$="-scope"]').forEach(function (select) {
      var options = [["", word("theTrigger", "The trigger (whether a run starts)")]];
      names.forEach(function (name) { options.push([name, word("branch", "Branch %s").replace("%s", name)]); });
      setOptions(select, options);
    });
  }

  /* --- the field catalog, from the server ---------------------------------------
   * The server answers what each step and each condition scope may reference, from the
   * one catalog and the same tree walk the validator uses: the menus never offer a field
   * the validator would refuse (such as a step inside a branch arm, after the branch). */
  var references = { steps: {}, scopes: {} };
  var pending = null;

  function triggerValue() {
    var select = document.getElementById("id_trigger");
    return select ? select.value : "";
  }

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function draftSteps() {
    return stepForms()
      .filter(function (form) { return !isDeleted(form); })
      .map(function (form) {
        var value = function (name) { var f = field(form, name); return f ? f.value : ""; };
        return {
          key: form.id, name: value("name"), kind: value("kind"),
          placement: value("placement"), position: value("position")
        };
      });
  }

  function fetchReferences() {
    if (!config.referencesUrl) return;
    if (pending) clearTimeout(pending);
    pending = setTimeout(function () {
      pending = null;
      var draft = scheduleValues();
      draft.trigger = triggerValue();
      draft.steps = draftSteps();
      var body = JSON.stringify(draft);
      fetch(config.referencesUrl, {
        method: "POST", credentials: "same-origin", body: body,
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() }
      })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (answer) {
          if (!answer) return;
          references = answer;
          refreshConditionFields();
          refreshReferences();
        });
    }, 150);
  }

  function refreshConditionFields() {
    $all(document, 'select[name$="-field"]').forEach(function (select) {
      if (!select.closest("#conditions-group") || select.name.indexOf("__prefix__") !== -1) return;
      var scope = document.querySelector(
        'select[name="' + select.name.replace(/-field$/, "-scope") + '"]');
      var scopes = references.scopes || {};
      var fields = scopes[scope ? scope.value : ""] || scopes[""] || [];
      var options = [["", "---------"]];
      fields.forEach(function (f) { options.push([f[0], f[1] + " (" + f[0] + ")"]); });
      setOptions(select, options);
    });
  }

  /* --- "insert reference" helpers ------------------------------------------------ */
  function insertAtCursor(input, text) {
    var start = input.selectionStart == null ? input.value.length : input.selectionStart;
    var end = input.selectionEnd == null ? input.value.length : input.selectionEnd;
    input.value = input.value.slice(0, start) + text + input.value.slice(end);
    input.focus();
    input.selectionStart = input.selectionEnd = start + text.length;
    input.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function referenceOptions(form, input) {
    var options = [["", word("insertReference", "Insert reference…")]];
    var amount = input.getAttribute("data-kanri-references") === "amount";
    ((references.steps || {})[form.id] || []).forEach(function (f) {
      // A list that can be looped over comes with a ready loop (from the server) for text.
      if (f[3]) {
        if (!amount) options.push([f[3], f[1] + " (each)"]);
        return;
      }
      // An amount field takes the raw integer; text shows money with its currency.
      if (amount && f[2] !== "money" && f[2] !== "integer") return;
      var filter = !amount && f[2] === "money" ? " | money" : "";
      options.push(["{{" + f[0] + filter + "}}", f[1]]);
    });
    return options;
  }

  function addReferenceHelpers(form) {
    $all(form, "[data-kanri-references]").forEach(function (input) {
      if (input.name.indexOf("__prefix__") !== -1) return;
      var helper = input.parentNode.querySelector("select.kanri-insert-reference");
      if (!helper) {
        helper = document.createElement("select");
        helper.className = "kanri-insert-reference";
        helper.setAttribute("aria-label", "Insert a reference into " + input.name);
        helper.dataset.target = input.name;
        helper.addEventListener("change", function () {
          if (helper.value) insertAtCursor(input, helper.value);
          helper.value = "";
        });
        input.insertAdjacentElement("afterend", helper);
      }
      setOptions(helper, referenceOptions(form, input));
      helper.value = "";
    });
  }

  function refreshReferences() {
    stepForms().forEach(addReferenceHelpers);
  }

  /* --- a schedule trigger: its fields, and its next runs from the server ----------- */
  var SCHEDULE = ["filter", "every", "weekday", "at", "cron", "timezone"];
  var schedulePending = null;

  function scheduleInput(name) {
    return document.getElementById("id_schedule_" + name);
  }

  function scheduleValues() {
    var values = {};
    SCHEDULE.forEach(function (name) {
      var input = scheduleInput(name);
      if (input) values["schedule_" + name] = input.value;
    });
    return values;
  }

  function isSchedule() {
    return triggerValue().indexOf("schedule:") === 0;
  }

  function showSchedule() {
    var on = isSchedule();
    var every = scheduleInput("every") ? scheduleInput("every").value : "daily";
    var shown = {
      filter: on, every: on, timezone: on,
      weekday: on && every === "weekly",
      at: on && every !== "cron",
      cron: on && every === "cron"
    };
    SCHEDULE.forEach(function (name) {
      var row = document.querySelector(".form-row.field-schedule_" + name);
      if (row) row.hidden = !shown[name];
    });
    var box = document.getElementById("kanri-schedule-next");
    if (box) box.hidden = !on;
  }

  function showNextRuns(answer) {
    var times = document.getElementById("kanri-schedule-times");
    var problems = document.getElementById("kanri-schedule-problems");
    if (!times || !problems) return;
    times.innerHTML = "";
    problems.innerHTML = "";
    (answer.times || []).forEach(function (time) {
      var item = document.createElement("li");
      var element = document.createElement("time");
      element.setAttribute("datetime", time.iso);
      element.textContent = time.text;
      item.appendChild(element);
      times.appendChild(item);
    });
    (answer.problems || []).forEach(function (text) {
      var item = document.createElement("li");
      item.className = "errornote";
      item.textContent = text;
      problems.appendChild(item);
    });
  }

  function fetchSchedule() {
    if (!config.scheduleUrl || !isSchedule()) return;
    if (schedulePending) clearTimeout(schedulePending);
    schedulePending = setTimeout(function () {
      schedulePending = null;
      var query = new URLSearchParams(scheduleValues()).toString();
      fetch(config.scheduleUrl + "?" + query, { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (answer) { if (answer) showNextRuns(answer); });
    }, 200);
  }

  function refreshSchedule() {
    showSchedule();
    fetchSchedule();
  }

  /* --- a branch's conditions sit on the branch step -------------------------------
   * The conditions inline holds every condition (the form posts them all the same); each
   * row whose "Applies to" names a branch is shown inside that branch's step, with an
   * "Add a condition to this branch" button. Without the script they stay in one table. */
  var pendingScope = null;

  function conditionRows() {
    // Django's inlines.js marks rows "dynamic-conditions" only once it has started, which
    // may be after this script: rows are found by their place instead.
    var rows = $all(document, "#conditions-group tbody tr.form-row")
      .concat($all(document, ".kanri-branch-conditions tbody tr.form-row"));
    return rows.filter(function (row) {
      return row.id.indexOf("__prefix__") === -1 && !row.classList.contains("empty-form");
    });
  }

  function branchBox(form, name) {
    var box = form.querySelector(".kanri-branch-conditions");
    var source = document.querySelector("#conditions-group table");
    if (!source) return null;
    if (!box) {
      box = document.createElement("div");
      box.className = "kanri-branch-conditions";
      var title = document.createElement("h3");
      box.appendChild(title);
      var table = document.createElement("table");
      table.appendChild(source.querySelector("thead").cloneNode(true));
      table.appendChild(document.createElement("tbody"));
      box.appendChild(table);
      var add = document.createElement("button");
      add.type = "button";
      add.className = "button kanri-add-branch-condition";
      add.addEventListener("click", function () {
        var link = document.querySelector("#conditions-group .add-row a");
        if (!link) return;
        pendingScope = box.dataset.branch;
        link.click();
      });
      box.appendChild(add);
      var first = form.querySelector("fieldset");
      if (first && first.nextSibling) form.insertBefore(box, first.nextSibling);
      else form.appendChild(box);
    }
    box.dataset.branch = name;
    box.querySelector("h3").textContent = (config.labels.branchConditions || "").replace("%s", name);
    box.querySelector(".kanri-add-branch-condition").textContent = config.labels.addBranchCondition || "+";
    return box;
  }

  function placeConditions() {
    var home = document.querySelector("#conditions-group table tbody");
    if (!home) return;
    var boxes = {};
    stepForms().forEach(function (form) {
      var kind = field(form, "kind");
      var name = field(form, "name");
      var box = form.querySelector(".kanri-branch-conditions");
      if (!isDeleted(form) && kind && kind.value === "branch" && name && name.value) {
        boxes[name.value] = branchBox(form, name.value);
      } else if (box) {
        $all(box, "tbody tr").forEach(function (row) { home.insertBefore(row, home.querySelector(".add-row, .empty-form")); });
        box.remove();
      }
    });
    conditionRows().forEach(function (row) {
      var scope = row.querySelector('select[name$="-scope"]');
      var box = scope && scope.value ? boxes[scope.value] : null;
      var target = box ? box.querySelector("tbody") : home;
      if (row.parentNode === target) return;
      // Django puts a row's errors in the row before it: they move together.
      var errors = row.previousElementSibling;
      var before = target === home ? home.querySelector(".add-row, .empty-form") : null;
      if (errors && errors.classList.contains("row-form-errors")) target.insertBefore(errors, before);
      target.insertBefore(row, before);
    });
  }

  function refreshAll() {
    placeConditions();
    refreshBranches();
    refreshConditionFields();
    refreshReferences();
    fetchReferences();
  }

  function setUp(form) {
    showConfigFor(form);
    addMoveButtons(form);
    addReferenceHelpers(form);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var data = document.getElementById("kanri-editor-config");
    config = data ? {
      referencesUrl: data.dataset.referencesUrl, scheduleUrl: data.dataset.scheduleUrl
    } : {};
    // Words from the server, in the reader's language (the template translates them).
    config.labels = data ? {
      branchConditions: data.dataset.branchConditions || "",
      addBranchCondition: data.dataset.addBranchCondition || "",
      moveUp: data.dataset.moveUp, moveDown: data.dataset.moveDown,
      topLevel: data.dataset.topLevel, theTrigger: data.dataset.theTrigger,
      branch: data.dataset.branch, insertReference: data.dataset.insertReference,
      then: data.dataset.then, otherwise: data.dataset.otherwise
    } : {};
    stepForms().forEach(setUp);
    showSchedule();
    refreshAll();
    document.addEventListener("change", function (event) {
      var form = event.target.closest && event.target.closest("#steps-group .inline-related");
      if (form && /-kind$/.test(event.target.name)) showConfigFor(form);
      if (event.target.id === "id_trigger" || event.target.id === "id_schedule_filter" ||
          /-(kind|name|DELETE|placement)$/.test(event.target.name)) {
        refreshAll();
      } else if (/-scope$/.test(event.target.name)) {
        placeConditions();
        refreshConditionFields();
      }
      if (event.target.id === "id_trigger" || /^id_schedule_/.test(event.target.id || "")) {
        refreshSchedule();
      }
    });
    document.addEventListener("input", function (event) {
      if (event.target.id === "id_schedule_at" || event.target.id === "id_schedule_cron") {
        fetchSchedule();
      }
    });
    document.addEventListener("formset:added", function (event) {
      var form = event.target;
      if (form.closest && form.closest("#steps-group")) {
        setUp(form);
        renumber();
      }
      if (pendingScope !== null && form.closest && form.closest("#conditions-group")) {
        refreshBranches();
        var scope = form.querySelector('select[name$="-scope"]');
        if (scope) scope.value = pendingScope;
        pendingScope = null;
      }
      refreshAll();
    });
    var form = document.getElementById("workflow_form");
    if (form) form.addEventListener("submit", renumber);
  });
})();
