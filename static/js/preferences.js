/* Preferences: while no time zone is chosen (the desk's is used), offer the browser's own with one click.
   Nothing is saved until the person presses Save. */
(function () {
  "use strict";

  var input = document.getElementById("id_time_zone");
  var zone = window.Intl && Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!input || input.value || !zone) return;
  var button = document.createElement("button");
  button.type = "button";
  button.className = "link-button";
  button.setAttribute("data-testid", "use-browser-time-zone");
  button.textContent = interpolate(gettext("Use this browser's time zone: %(zone)s"), { zone: zone }, true);
  button.addEventListener("click", function () {
    input.value = zone;
    button.remove();
    input.focus();
  });
  input.insertAdjacentElement("afterend", button);
})();
