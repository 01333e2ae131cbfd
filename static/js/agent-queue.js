/*
 * Agents' live queue: /ws/agents/queue/ (docs/protocol.md).
 * A `queue` snapshot on connect, then one `queue.update` per change, and `alert` frames (SLA breaches).
 * Rows are kept in the server's order: priority, highest first, then the longest-waiting customer
 * (common.queueOrder), re-sorted on every update so a conversation that gains a reason moves up live.
 * Filters (reason, topic, mine) are applied here at once and sent to the server as a `filter` frame,
 * which answers with a new snapshot of the whole matching queue (the snapshot may hold only its top).
 * All text is untrusted: it is only ever set with textContent.
 */
(function () {
  "use strict";

  var common = window.ChatDeskAgents; // agent-common.js, loaded first
  var root = document.getElementById("queue");
  if (!root) return;

  var list = root.querySelector(".queue-list");
  var emptyNote = root.querySelector('[data-testid="queue-empty"]');
  var filteredNote = root.querySelector('[data-testid="queue-filtered-empty"]');
  var loadingNote = root.querySelector('[data-testid="queue-loading"]');
  var countNote = document.querySelector('[data-testid="queue-count"]');
  var alerts = document.querySelector('[data-testid="alerts"]');
  var controls = {
    reason: document.querySelector('[data-testid="filter-reason"]'),
    topic: document.querySelector('[data-testid="filter-topic"]'),
    mine: document.querySelector('[data-testid="filter-mine"]')
  };
  var MY_USERNAME = root.getAttribute("data-username");

  var REASON_LABELS = common.REASON_LABELS;
  var waitingText = common.waitingText;
  var el = common.el;

  var items = new Map(); // conversation id -> queue item, as the server last sent it
  var snapshot = { total: 0, truncated: false };
  var connection = null;

  // ------------------------------------------------------------- formatting

  function draftText(item) {
    switch (item.draft_status) {
      case "pending":
      case "generating":
        return gettext("drafting…");
      case "ready":
        return typeof item.draft_confidence === "number"
          ? interpolate(gettext("draft ready %(percent)s"), { percent: Math.round(item.draft_confidence * 100) + "%" }, true)
          : gettext("draft ready");
      case null:
      case undefined:
        return gettext("no draft");
      default:
        return item.draft_status;
    }
  }

  // Priority is the summed weight of the active reasons (docs/escalation.md); the level is for the eye,
  // the number says it in words.
  function priorityBadge(priority) {
    if (!priority) return null;
    var level = priority >= 40 ? "high" : priority >= 20 ? "medium" : "low";
    var levelText = { high: gettext("high"), medium: gettext("medium"), low: gettext("low") }[level];
    var badge = el("span", "q-priority priority-" + level,
      "\u25B2 " + interpolate(gettext("Priority %(priority)s"), { priority: priority }, true));
    badge.setAttribute("data-testid", "priority");
    badge.setAttribute("data-level", level);
    badge.title = interpolate(gettext("Priority %(priority)s (%(level)s): the summed weight of its reasons"),
      { priority: priority, level: levelText }, true);
    return badge;
  }

  // ---------------------------------------------------------------- filters

  function wantedFilter() {
    return { reason: controls.reason.value || null, topic: controls.topic.value || null, mine: controls.mine.checked };
  }

  function sameFilter(a, b) {
    return Boolean(a) && a.reason === b.reason && a.topic === b.topic && Boolean(a.mine) === b.mine;
  }

  // The same test the server applies (selectors.queue_item_matches).
  function matches(item, filter) {
    if (filter.reason && !(item.reasons || []).some(function (r) { return r.reason === filter.reason; })) return false;
    if (filter.topic && item.topic !== filter.topic) return false;
    return !filter.mine || item.assigned_agent_username === MY_USERNAME;
  }

  function sendFilter() {
    var filter = wantedFilter();
    if (connection) connection.send({ type: "filter", reason: filter.reason, topic: filter.topic, mine: filter.mine });
  }

  // The filter lives in the address too, so a reload or a shared link shows the same view.
  function rememberFilter() {
    var filter = wantedFilter();
    var params = new URLSearchParams();
    if (filter.reason) params.set("reason", filter.reason);
    if (filter.topic) params.set("topic", filter.topic);
    if (filter.mine) params.set("mine", "1");
    var query = params.toString();
    history.replaceState(null, "", location.pathname + (query ? "?" + query : ""));
  }

  function restoreFilter() {
    var params = new URLSearchParams(location.search);
    if (params.get("reason")) controls.reason.value = params.get("reason");
    if (params.get("topic")) controls.topic.value = params.get("topic");
    controls.mine.checked = params.get("mine") === "1";
  }

  function onFilterChange() {
    rememberFilter();
    render();
    sendFilter();
  }

  // ---------------------------------------------------------------- render

  function buildRow(item) {
    var row = el("li", "queue-item status-" + item.status);
    row.setAttribute("data-testid", "queue-item");
    row.setAttribute("data-id", item.id);
    row.setAttribute("data-status", item.status);
    row.setAttribute("data-priority", String(item.priority || 0));

    var link = el("a", "queue-link");
    link.href = "/agents/c/" + encodeURIComponent(item.id) + "/";

    var main = el("div", "q-main");
    var top = el("div", "q-top");
    top.appendChild(el("strong", "q-customer", item.customer));
    var badge = el("span", "badge status-" + item.status, common.statusLabel(item));
    badge.setAttribute("data-status", item.status);
    top.appendChild(badge);
    var priority = priorityBadge(item.priority);
    if (priority) top.appendChild(priority);
    if (item.topic) top.appendChild(el("span", "q-topic", item.topic));
    if (item.contact_email) top.appendChild(el("span", "q-contact", interpolate(gettext("Answer by email: %(email)s"), { email: item.contact_email }, true)));
    main.appendChild(top);

    var reasons = item.reasons || [];
    if (!reasons.length && item.status === "escalated" && item.escalation_reason) {
      reasons = [{ reason: item.escalation_reason, label: REASON_LABELS[item.escalation_reason], detail: null }];
    }
    var sentiment = common.sentimentBadge(item.sentiment);
    if (reasons.length || sentiment) {
      var why = el("div", "q-why");
      if (reasons.length) why.appendChild(common.reasonChips(reasons, false));
      if (sentiment) why.appendChild(sentiment);
      main.appendChild(why);
    }
    main.appendChild(el("p", "q-text", item.latest_customer_text ? "“" + item.latest_customer_text + "”" : gettext("No message yet")));

    var side = el("div", "q-side");
    var waiting = el("span", "q-waiting", waitingText(item.awaiting_reply_since));
    if (item.awaiting_reply_since) waiting.setAttribute("data-since", item.awaiting_reply_since);
    waiting.title = gettext("Waiting for a reply");
    side.appendChild(waiting);
    var draft = el("span", "q-draft draft-" + (item.draft_status || "none"), draftText(item));
    side.appendChild(draft);
    side.appendChild(el("span", "q-agent", item.assigned_agent ?
      interpolate(gettext("Agent: %(name)s"), { name: item.assigned_agent }, true) : gettext("Unassigned")));

    link.appendChild(main);
    link.appendChild(side);
    row.appendChild(link);
    return row;
  }

  function render() {
    var filter = wantedFilter();
    var all = Array.from(items.values());
    var shown = all.filter(function (item) { return matches(item, filter); }).sort(common.queueOrder);
    list.replaceChildren.apply(list, shown.map(buildRow));
    loadingNote.hidden = true;
    emptyNote.hidden = shown.length > 0 || all.length > 0;
    filteredNote.hidden = shown.length > 0 || all.length === 0;
    var text = interpolate(ngettext("%(count)s conversation", "%(count)s conversations", shown.length),
      { count: shown.length }, true);
    if (snapshot.truncated) {
      text = interpolate(gettext("%(shown)s shown of %(total)s (the rest arrive as they change)"),
        { shown: text, total: snapshot.total }, true);
    }
    countNote.textContent = text;
  }

  // Only the waiting times change by themselves; the rest changes with frames.
  function tick() {
    list.querySelectorAll("[data-since]").forEach(function (node) {
      node.textContent = waitingText(node.getAttribute("data-since"));
    });
  }

  // ----------------------------------------------------------------- alerts
  // One notice per conversation and kind; it stays until the agent dismisses it.

  function showAlert(frame) {
    var key = frame.kind + ":" + frame.conversation;
    var old = alerts.querySelector('[data-key="' + CSS.escape(key) + '"]');
    var notice = el("div", "alert-notice kind-" + frame.kind);
    notice.setAttribute("data-testid", "alert");
    notice.setAttribute("data-key", key);
    notice.setAttribute("data-kind", frame.kind);
    notice.setAttribute("data-conversation", frame.conversation);
    notice.appendChild(el("span", "alert-marker", frame.kind === "sla_breach" ? "\u26A0 " + gettext("Waiting too long") : gettext("Alert")));
    notice.appendChild(el("p", "alert-text", frame.text));
    var open = el("a", "button small", gettext("Open"));
    open.href = "/agents/c/" + encodeURIComponent(frame.conversation) + "/";
    notice.appendChild(open);
    var dismiss = el("button", "button small", gettext("Dismiss"));
    dismiss.type = "button";
    dismiss.setAttribute("data-testid", "alert-dismiss");
    dismiss.setAttribute("aria-label", interpolate(gettext("Dismiss: %(alert)s"), { alert: frame.text }, true));
    dismiss.addEventListener("click", function () {
      var next = notice.nextElementSibling || notice.previousElementSibling;
      notice.remove();
      // Keep keyboard users in place: the next notice's button, or the first filter.
      (next ? next.querySelector('[data-testid="alert-dismiss"]') : controls.reason).focus();
    });
    notice.appendChild(dismiss);
    if (old) old.replaceWith(notice);
    else alerts.insertBefore(notice, alerts.firstChild);
  }

  // ---------------------------------------------------------------- frames

  function onFrame(frame) {
    // agent-tools.js (notifications, the unread count in the title) listens to the same frames.
    document.dispatchEvent(new CustomEvent("chatdesk:queue-frame", { detail: frame }));
    if (frame.type === "queue") {
      items.clear();
      (frame.items || []).forEach(function (item) { items.set(item.id, item); });
      snapshot = { total: frame.total || 0, truncated: Boolean(frame.truncated) };
      render();
      // A new connection starts unfiltered: ask again for the view the agent chose.
      if (!sameFilter(frame.filter, wantedFilter())) sendFilter();
    } else if (frame.type === "queue.update") {
      if (frame.in_queue && frame.item) items.set(frame.id, frame.item);
      else items.delete(frame.id);
      render();
    } else if (frame.type === "alert") {
      showAlert(frame);
    } else if (frame.type === "error" && frame.code === "not_agent") {
      common.showConnection(root, "denied", frame.message || gettext("Sign in as an agent to see the queue."));
    }
  }

  // ---------------------------------------------------------- connection
  // agent-common.js reconnects with backoff; a new connection gets a fresh snapshot, starting with `queue`.

  // Close code 4403: the indicator already says "Signed out"; offer the way back in.
  function showSignedOut() {
    var note = el("p", "notice");
    note.appendChild(document.createTextNode(gettext("Your session has ended.") + " "));
    var link = el("a", null, gettext("Sign in again"));
    link.href = "/accounts/login/?next=" + encodeURIComponent(location.pathname);
    note.appendChild(link);
    root.insertBefore(note, root.firstChild);
  }

  restoreFilter();
  controls.reason.addEventListener("change", onFilterChange);
  controls.topic.addEventListener("change", onFilterChange);
  controls.mine.addEventListener("change", onFilterChange);
  document.querySelector('[data-testid="queue-filters"]').addEventListener("submit", function (event) {
    event.preventDefault(); // filters apply as they change; there is nothing to submit
  });
  connection = common.connect(root.getAttribute("data-ws-path"), {
    root: root,
    liveOn: "queue",
    onFrame: onFrame,
    onSignedOut: showSignedOut
  });
  setInterval(tick, 1000);
})();
