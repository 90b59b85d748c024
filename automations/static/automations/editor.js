/* The workflow editor's behaviour on the admin change page. Without it the page still
 * works (every config field shows, order follows the hidden positions); with it staff see
 * only the fields of the chosen step kind, reorder steps with ↑ ↓, pick branches that are
 * not saved yet, and insert references without typing paths. */
(function () {
  "use strict";

  var catalog = {};

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
    [["↑", -1, "Move up"], ["↓", 1, "Move down"]].forEach(function (spec) {
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
        refreshReferences();
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
      var options = [["", "Top level"]];
      names.forEach(function (name) {
        if (name === ownName) return;
        options.push([name + ":then", name + " → If"]);
        options.push([name + ":else", name + " → All other cases"]);
      });
      setOptions(select, options);
    });
    $all(document, 'select[name$="-scope"]').forEach(function (select) {
      var options = [["", "The trigger (whether a run starts)"]];
      names.forEach(function (name) { options.push([name, "Branch " + name]); });
      setOptions(select, options);
    });
  }

  /* --- the field catalog ------------------------------------------------------------ */
  function eventType() {
    var select = document.getElementById("id_event_type");
    return select ? select.value : "";
  }

  function triggerFields() {
    var object = (catalog.event_objects || {})[eventType()];
    var fields = (catalog.event_fields || []).slice();
    ((catalog.object_fields || {})[object] || []).forEach(function (f) {
      fields.push(["trigger.data.object." + f[0], f[1], f[2]]);
    });
    return fields;
  }

  function stepFields(untilForm) {
    var fields = [];
    var forms = stepForms();
    for (var i = 0; i < forms.length; i++) {
      if (forms[i] === untilForm) break;
      if (isDeleted(forms[i])) continue;
      var name = field(forms[i], "name");
      var kind = field(forms[i], "kind");
      if (!name || !name.value || !kind) continue;
      ((catalog.outputs || {})[kind.value] || []).forEach(function (f) {
        fields.push(["steps." + name.value + "." + f[0], name.value + ": " + f[1], f[2]]);
      });
    }
    return fields;
  }

  function refreshConditionFields() {
    var options = [["", "---------"]];
    triggerFields().concat(stepFields(null)).forEach(function (f) {
      options.push([f[0], f[1] + " (" + f[0] + ")"]);
    });
    $all(document, 'select[name$="-field"]').forEach(function (select) {
      if (select.closest("#conditions-group")) setOptions(select, options);
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

  function referenceOptions(form) {
    var options = [["", "Insert reference…"]];
    triggerFields().concat(stepFields(form)).forEach(function (f) {
      options.push(["{{" + f[0] + (f[2] === "money" ? " | money" : "") + "}}", f[1]]);
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
      setOptions(helper, referenceOptions(form));
      helper.value = "";
    });
  }

  function refreshReferences() {
    stepForms().forEach(addReferenceHelpers);
  }

  function refreshAll() {
    refreshBranches();
    refreshConditionFields();
    refreshReferences();
  }

  function setUp(form) {
    showConfigFor(form);
    addMoveButtons(form);
    addReferenceHelpers(form);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var data = document.getElementById("kanri-catalog");
    catalog = data ? JSON.parse(data.textContent) || {} : {};
    stepForms().forEach(setUp);
    refreshAll();
    document.addEventListener("change", function (event) {
      var form = event.target.closest && event.target.closest("#steps-group .inline-related");
      if (form && /-kind$/.test(event.target.name)) showConfigFor(form);
      if (event.target.id === "id_event_type" || /-(kind|name|DELETE)$/.test(event.target.name)) {
        refreshAll();
      }
    });
    document.addEventListener("formset:added", function (event) {
      var form = event.target;
      if (form.closest && form.closest("#steps-group")) {
        setUp(form);
        renumber();
      }
      refreshAll();
    });
    var form = document.getElementById("workflow_form");
    if (form) form.addEventListener("submit", renumber);
  });
})();
