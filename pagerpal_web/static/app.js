/* PagerPal UI behaviour: no framework, no inline script (the CSP allows only this file).
 *  - [data-refresh-seconds] regions reload themselves in place, so the page keeps its scroll;
 *  - [data-copy] buttons copy the text of the element they name;
 *  - form[data-confirm] asks before submitting.
 */
(function () {
  "use strict";

  function refreshRegion(region) {
    var seconds = parseInt(region.getAttribute("data-refresh-seconds"), 10);
    if (!seconds || seconds < 2) { return; }
    var busy = false;
    function tick() {
      // Skip while the tab is hidden or the user is interacting with something inside.
      if (busy || document.hidden || region.contains(document.activeElement) && document.activeElement !== document.body) {
        return;
      }
      busy = true;
      fetch(window.location.href, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (response) {
          if (response.redirected || !response.ok) { throw new Error("refresh " + response.status); }
          return response.text();
        })
        .then(function (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(region.id);
          if (fresh) {
            var x = window.scrollX, y = window.scrollY;
            region.innerHTML = fresh.innerHTML;
            window.scrollTo(x, y);
            region.setAttribute("data-refreshed-at", String(Date.now()));
          }
        })
        .catch(function () { region.setAttribute("data-refresh-failed", String(Date.now())); })
        .then(function () { busy = false; });
    }
    window.setInterval(tick, seconds * 1000);
  }

  function copyText(text, button) {
    function done(ok) {
      var label = button.getAttribute("data-label") || button.textContent;
      button.setAttribute("data-label", label);
      button.textContent = ok ? "Copied" : "Select and copy";
      window.setTimeout(function () { button.textContent = label; }, 2000);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(false); });
      return;
    }
    // Plain-HTTP installs have no async clipboard: copy through a temporary textarea.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    done(ok);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy]") : null;
    if (!button) { return; }
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (source) {
      event.preventDefault();
      copyText(source.value !== undefined && source.tagName !== "CODE" && source.tagName !== "PRE"
               ? source.value : source.textContent, button);
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var message = form.getAttribute && form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-refresh-seconds][id]"), refreshRegion);
  });
})();
