// The editorial pages' own script (no library): the editor's preview follows the typing, and the
// progress page follows the send. Without it, "Preview changes" and reloading do the same.
(function () {
  "use strict";

  function editor(form) {
    var button = form.querySelector("button[formtarget=preview]");
    if (!button) return;
    var timer = null;
    function refresh() {
      var validate = form.noValidate;
      form.noValidate = true;
      try { form.requestSubmit(button); } finally { form.noValidate = validate; }
    }
    form.addEventListener("input", function () {
      if (timer) clearTimeout(timer);
      timer = setTimeout(refresh, 500);
    });
    form.dataset.live = "on";
  }

  // A unit label the page gave in the staff member's language ("%(n)s s"), with the number put in.
  function unit(label, fallback, n) {
    return (label || fallback).replace("%(n)s", String(n));
  }

  // The actions a status allows (pause, resume, cancel, retry) are the server's to say: when the
  // status changes, the page's actions are read again from the page itself, not reloaded.
  function refreshActions() {
    var actions = document.getElementById("actions");
    if (!actions) return;
    fetch(window.location.href, { headers: { "Accept": "text/html" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("actions");
        if (fresh) { actions.innerHTML = fresh.innerHTML; actions.dataset.status = fresh.dataset.status || ""; }
      })
      .catch(function () { /* the actions stay as they were; a reload shows the right ones */ });
  }

  function progress(box) {
    var url = box.dataset.progress;
    var bar = box.querySelector("progress");
    var actionsFor = box.dataset.status;
    function show(data) {
      box.querySelectorAll("[data-field]").forEach(function (el) {
        var value = data[el.dataset.field];
        if (el.dataset.field === "seconds_left") {
          value = value === null ? "–" : (value >= 120 ? unit(el.dataset.minutes, "%(n)s min", Math.round(value / 60))
                                                       : unit(el.dataset.seconds, "%(n)s s", value));
        } else if (el.dataset.field === "status") {
          value = el.getAttribute("data-label-" + value) || value;
        } else if (el.dataset.field === "rate") {
          value = unit(el.dataset.unit, "%(n)s/s", value);
        }
        el.textContent = value === null || value === undefined ? "–" : String(value);
      });
      if (bar) { bar.max = data.total || 1; bar.value = data.sent + data.failed + data.skipped; }
      box.dataset.status = data.status;
      if (data.status !== actionsFor) { actionsFor = data.status; refreshActions(); }
      box.dataset.updates = String((parseInt(box.dataset.updates || "0", 10)) + 1);
      return !data.done;
    }
    function poll() {
      fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (data) { if (show(data)) setTimeout(poll, 1000); })
        .catch(function () { setTimeout(poll, 3000); });
    }
    poll();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("editor");
    if (form) editor(form);
    var box = document.querySelector("[data-progress]");
    if (box) progress(box);
  });
})();
