/*
 * Agents' tools on the queue and conversation pages, each part self-contained:
 *   1. canned replies: `/` in a reply box opens a list of the agent's canned replies (ARIA listbox)
 *   2. keyboard shortcuts, and `?` for a dialog listing them
 *   3. notifications (queue page): a sound and a desktop notification (opt-in) when a conversation is
 *      escalated or assigned to this agent, and an unread count in the tab title
 * Loaded after agent-common.js and the page's script. All text is set with textContent.
 */
(function () {
  "use strict";

  var el = window.ChatDeskAgents.el;
  var conversationRoot = document.getElementById("conversation");
  var queueRoot = document.getElementById("queue");

  function isTyping(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName.toLowerCase();
    return tag === "textarea" || tag === "select" || target.isContentEditable ||
      (tag === "input" && ["checkbox", "radio", "button", "submit", "reset"].indexOf(target.type) === -1);
  }

  // ------------------------------------------------------ 1. canned replies

  function cannedReplies() {
    var data = document.getElementById("canned-replies-data");
    if (!data) return [];
    try { return JSON.parse(data.textContent) || []; } catch (e) { return []; }
  }

  // What the agent typed after a `/` that starts a word, up to the caret: {start, query}, or null.
  function slashToken(box) {
    var before = box.value.slice(0, box.selectionStart);
    var match = /(^|\s)\/([^\s\/]*)$/.exec(before);
    if (!match) return null;
    return { start: before.length - match[2].length - 1, query: match[2] };
  }

  function matching(replies, query) {
    var q = query.toLowerCase();
    var byShortcut = [];
    var byText = [];
    replies.forEach(function (reply) {
      var shortcut = reply.shortcut.toLowerCase();
      if (shortcut.indexOf(q) === 0) byShortcut.push(reply);
      else if (shortcut.indexOf(q) !== -1 || reply.text.toLowerCase().indexOf(q) !== -1) byText.push(reply);
    });
    return byShortcut.concat(byText).slice(0, 8);
  }

  function cannedPicker(box, replies, name) {
    var listId = "canned-list-" + name;
    var list = el("ul", "canned-list");
    list.id = listId;
    list.setAttribute("role", "listbox");
    list.setAttribute("data-testid", "canned-list");
    list.setAttribute("aria-label", gettext("Canned replies"));
    list.hidden = true;
    box.insertAdjacentElement("afterend", list);
    box.setAttribute("aria-autocomplete", "list");
    box.setAttribute("aria-controls", listId);
    // No aria-expanded: a textarea is a textbox, which ARIA does not let say it (axe: aria-allowed-attr); the
    // list is announced by aria-activedescendant instead.

    var state = { token: null, shown: [], active: 0, dismissedAt: null };

    function close() {
      list.hidden = true;
      state.token = null;
      state.shown = [];
      box.removeAttribute("aria-activedescendant");
    }

    function render() {
      list.replaceChildren();
      if (!state.shown.length) {
        var none = el("li", "canned-none",
          replies.length ? gettext("No canned reply matches.") : gettext("No canned replies yet: add some on the Canned replies page."));
        none.setAttribute("role", "option");
        none.setAttribute("aria-disabled", "true");
        list.appendChild(none);
      }
      state.shown.forEach(function (reply, index) {
        var option = el("li", "canned-option");
        option.id = listId + "-" + index;
        option.setAttribute("role", "option");
        option.setAttribute("data-testid", "canned-option");
        option.setAttribute("data-shortcut", reply.shortcut);
        option.setAttribute("aria-selected", index === state.active ? "true" : "false");
        option.appendChild(el("span", "canned-shortcut", "/" + reply.shortcut));
        option.appendChild(el("span", "canned-text", reply.text));
        if (reply.shared) option.appendChild(el("span", "canned-kind", gettext("shared")));
        option.addEventListener("mousedown", function (event) { event.preventDefault(); choose(index); });
        list.appendChild(option);
      });
      list.hidden = false;
      if (state.shown.length) {
        box.setAttribute("aria-activedescendant", listId + "-" + state.active);
        document.getElementById(listId + "-" + state.active).scrollIntoView({ block: "nearest" });
      } else {
        box.removeAttribute("aria-activedescendant");
      }
    }

    function update() {
      var token = box.readOnly ? null : slashToken(box);
      if (!token || token.start === state.dismissedAt) { close(); return; }
      state.dismissedAt = null;
      state.token = token;
      state.shown = matching(replies, token.query);
      state.active = 0;
      render();
    }

    // The chosen reply replaces "/query"; the box stays editable, the caret after the inserted text.
    function choose(index) {
      var reply = state.shown[index];
      var token = state.token;
      if (!reply || !token) return;
      var end = token.start + 1 + token.query.length;
      box.value = box.value.slice(0, token.start) + reply.text + box.value.slice(end);
      var caret = token.start + reply.text.length;
      box.setSelectionRange(caret, caret);
      close();
      box.focus();
      box.dispatchEvent(new Event("input", { bubbles: true })); // the page's counter and buttons
    }

    box.addEventListener("input", update);
    box.addEventListener("click", update);
    box.addEventListener("blur", close);
    box.addEventListener("keydown", function (event) {
      if (list.hidden) return;
      var count = state.shown.length;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        if (count) state.active = (state.active + (event.key === "ArrowDown" ? 1 : count - 1)) % count;
        render();
      } else if ((event.key === "Enter" || event.key === "Tab") && count && !event.ctrlKey && !event.metaKey) {
        event.preventDefault();
        choose(state.active);
      } else if (event.key === "Escape") {
        event.preventDefault(); // the list closes; the text stays as typed
        state.dismissedAt = state.token ? state.token.start : null;
        close();
      }
    });
  }

  if (conversationRoot) {
    var replies = cannedReplies();
    document.querySelectorAll("textarea[data-canned]").forEach(function (box) {
      cannedPicker(box, replies, box.getAttribute("data-canned"));
    });
  }

  // ---------------------------------------------------- 2. keyboard shortcuts

  function clickIfEnabled(testId) {
    var button = document.querySelector('[data-testid="' + testId + '"]');
    if (button && !button.disabled && !button.hidden) button.click();
  }

  function focusBox(testId) {
    var box = document.querySelector('[data-testid="' + testId + '"]');
    if (!box) return;
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  }

  function openNext() {
    var from = conversationRoot ? conversationRoot.getAttribute("data-conversation-id") : "";
    location.href = "/agents/next/" + (from ? "?from=" + encodeURIComponent(from) : "");
  }

  var SHORTCUTS = conversationRoot ? [
    { key: "a", label: gettext("Approve the draft (a risky draft asks for a second press)"), run: function () { clickIfEnabled("approve"); } },
    { key: "e", label: gettext("Edit the draft (puts the cursor in the draft box)"), run: function () { focusBox("draft-text"); } },
    { key: "r", label: gettext("Reject the draft and ask for another"), run: function () { clickIfEnabled("redraft"); } },
    { key: "t", label: gettext("Take over the conversation"), run: function () { clickIfEnabled("take-over"); } },
    { key: "w", label: gettext("Write a reply (puts the cursor in the reply box)"), run: function () { focusBox("reply-input"); } },
    { key: "n", label: gettext("Next conversation in your queue"), run: openNext }
  ] : queueRoot ? [
    { key: "n", label: gettext("Open the next conversation in your queue"), run: openNext }
  ] : [];

  var helpDialog = null;
  var returnFocus = null;

  function buildHelp() {
    var dialog = el("dialog", "shortcuts-dialog");
    dialog.setAttribute("data-testid", "shortcuts-dialog");
    dialog.setAttribute("aria-labelledby", "shortcuts-title");
    var title = el("h2", null, gettext("Keyboard shortcuts"));
    title.id = "shortcuts-title";
    dialog.appendChild(title);
    var table = el("dl", "shortcuts-list");
    SHORTCUTS.concat([
      { key: "?", label: gettext("Show this list") },
      { key: "Esc", label: gettext("Leave a text box (shortcuts work outside text boxes), close a list or this dialog") }
    ]).forEach(function (shortcut) {
      var row = el("div", "shortcut-row");
      row.setAttribute("data-testid", "shortcut");
      var term = el("dt");
      term.appendChild(el("kbd", null, shortcut.key));
      row.appendChild(term);
      row.appendChild(el("dd", null, shortcut.label));
      table.appendChild(row);
    });
    dialog.appendChild(table);
    if (conversationRoot) {
      dialog.appendChild(el("p", "hint", gettext("In a reply box, type / to pick a canned reply.")));
    }
    var close = el("button", "button", gettext("Close"));
    close.type = "button";
    close.setAttribute("data-testid", "shortcuts-close");
    close.addEventListener("click", function () { dialog.close(); });
    dialog.appendChild(close);
    // Escape (the browser's cancel) and the button both end here: focus goes back where it was.
    dialog.addEventListener("close", function () {
      if (returnFocus && document.contains(returnFocus)) returnFocus.focus();
      returnFocus = null;
    });
    document.body.appendChild(dialog);
    return dialog;
  }

  function showHelp() {
    helpDialog = helpDialog || buildHelp();
    if (helpDialog.open) return;
    returnFocus = document.activeElement;
    helpDialog.showModal(); // modal: focus moves in, the page behind is inert
    helpDialog.querySelector('[data-testid="shortcuts-close"]').focus();
  }

  if (SHORTCUTS.length) {
    document.addEventListener("keydown", function (event) {
      if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
      if (isTyping(event.target)) {
        // Escape leaves the text box, so the next key can be a shortcut.
        if (event.key === "Escape") event.target.blur();
        return;
      }
      if (helpDialog && helpDialog.open) return;
      if (event.key === "?") {
        event.preventDefault();
        showHelp();
        return;
      }
      if (event.shiftKey) return;
      var key = event.key.toLowerCase();
      SHORTCUTS.forEach(function (shortcut) {
        if (shortcut.key === key) {
          event.preventDefault();
          shortcut.run();
        }
      });
    });
  }

  // ----------------------------------------------------------- 3. notifications

  if (!queueRoot) return;

  var ME = queueRoot.getAttribute("data-username");
  var STORAGE_KEY = "chatdesk.notifications";
  var baseTitle = document.title;
  var known = new Map(); // conversation id -> {status, assigned}, as last seen
  var unread = new Set(); // conversations escalated or assigned to me since the agent last looked
  var audio = null;

  function notificationsOn() {
    try { return localStorage.getItem(STORAGE_KEY) === "on"; } catch (e) { return false; }
  }

  function remember(on) {
    try { localStorage.setItem(STORAGE_KEY, on ? "on" : "off"); } catch (e) { /* private mode: this page only */ }
  }

  // A short two-note chime, made with the Web Audio API (no audio file).
  function chime() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    try {
      audio = audio || new Context();
      if (audio.state === "suspended") audio.resume();
      [880, 1320].forEach(function (frequency, index) {
        var start = audio.currentTime + index * 0.12;
        var tone = audio.createOscillator();
        var volume = audio.createGain();
        tone.type = "sine";
        tone.frequency.value = frequency;
        volume.gain.setValueAtTime(0.0001, start);
        volume.gain.exponentialRampToValueAtTime(0.2, start + 0.02);
        volume.gain.exponentialRampToValueAtTime(0.0001, start + 0.18);
        tone.connect(volume);
        volume.connect(audio.destination);
        tone.start(start);
        tone.stop(start + 0.2);
      });
    } catch (e) { /* no sound is not worth an error */ }
  }

  function desktopNotify(title, body, id) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    var note = new Notification(title, { body: body, tag: "chatdesk-" + id });
    note.onclick = function () {
      window.focus();
      location.href = "/agents/c/" + encodeURIComponent(id) + "/";
    };
  }

  function showUnread() {
    document.title = unread.size ? "(" + unread.size + ") " + baseTitle : baseTitle;
  }

  // The agent looks at the page: a key, a click or a touch while it is shown, or coming back to the tab.
  function seen() {
    if (document.visibilityState !== "visible" || !unread.size) return;
    unread.clear();
    showUnread();
  }
  document.addEventListener("pointerdown", seen, true);
  document.addEventListener("keydown", seen, true);
  document.addEventListener("visibilitychange", seen);

  function announce(item, why) {
    unread.add(item.id);
    showUnread();
    if (!notificationsOn()) return;
    chime();
    desktopNotify(why, item.customer + (item.latest_customer_text ? ": " + item.latest_customer_text : ""), item.id);
  }

  function onQueueFrame(frame) {
    if (frame.type === "queue") {
      // A snapshot (a new connection, a new filter) is what is there now, not news.
      (frame.items || []).forEach(function (item) {
        known.set(item.id, { status: item.status, assigned: item.assigned_agent_username });
      });
      return;
    }
    if (frame.type !== "queue.update") return;
    if (!frame.in_queue || !frame.item) {
      known.delete(frame.id);
      return;
    }
    var item = frame.item;
    var before = known.get(item.id) || { status: null, assigned: null };
    known.set(item.id, { status: item.status, assigned: item.assigned_agent_username });
    var mine = item.assigned_agent_username === ME;
    if (mine && before.assigned !== ME) {
      announce(item, gettext("A conversation was assigned to you"));
    } else if (item.status === "escalated" && before.status !== "escalated" && (mine || !item.assigned_agent_username)) {
      announce(item, gettext("A conversation needs a person"));
    }
  }
  document.addEventListener("chatdesk:queue-frame", function (event) { onQueueFrame(event.detail); });

  // The opt-in: the browser asks for permission once; the choice is kept in localStorage.
  var controls = el("div", "notify-controls");
  var toggle = el("button", "button small");
  toggle.type = "button";
  toggle.setAttribute("data-testid", "notify-toggle");
  var note = el("span", "hint");
  note.setAttribute("data-testid", "notify-state");
  note.setAttribute("role", "status");
  controls.appendChild(toggle);
  controls.appendChild(note);

  function renderToggle() {
    var on = notificationsOn();
    toggle.textContent = on ? gettext("Turn notifications off") : gettext("Notify me (sound and desktop)");
    toggle.setAttribute("aria-pressed", on ? "true" : "false");
    var blocked = on && (!("Notification" in window) || Notification.permission === "denied");
    note.textContent = !on ? "" : blocked
      ? gettext("Desktop notifications are blocked by the browser; you will still hear a sound.")
      : gettext("You will hear a sound and see a notification when a conversation is escalated or assigned to you.");
  }

  toggle.addEventListener("click", function () {
    if (notificationsOn()) {
      remember(false);
      renderToggle();
      return;
    }
    remember(true);
    chime(); // also unlocks sound for later: browsers allow it after a click
    if ("Notification" in window && Notification.permission === "default") {
      Notification.requestPermission().then(renderToggle, renderToggle);
    }
    renderToggle();
  });
  renderToggle();
  var head = document.querySelector(".page-head");
  if (head) head.appendChild(controls);
})();
