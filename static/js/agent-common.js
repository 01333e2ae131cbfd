/*
 * What the agents' pages (agent-queue.js, agent-conversation.js) share, as one global:
 * window.ChatDeskAgents. Loaded before them, so the labels, the waiting time and the
 * connection behaviour (docs/protocol.md) read and act the same on both pages.
 * All text is untrusted: it is only ever set with textContent.
 */
(function () {
  "use strict";

  // gettext and interpolate: Django's JavaScript catalogue (base.html loads it first), in the agent's language.
  var STATUS_LABELS = {
    open: gettext("Drafting"),
    escalated: gettext("Escalated"),
    taken_over: gettext("Taken over"),
    closed: gettext("Closed")
  };
  /*
   * What a conversation's (or queue item's) status badge says. `open` means no person is needed yet:
   * "Drafting" only while a draft is being written, "Draft ready" while one waits for review, and
   * "Answered" once every customer message has had its reply (nothing unanswered, no draft left).
   */
  function statusLabel(item) {
    if (item.status !== "open") return STATUS_LABELS[item.status] || item.status;
    if (item.draft_status === "ready") return gettext("Draft ready");
    if (item.draft_status === "pending" || item.draft_status === "generating") return STATUS_LABELS.open;
    return item.awaiting_reply_since ? gettext("Waiting for a draft") : gettext("Answered");
  }

  // The server sends each reason's label with it; these are for `escalation_reason`, which carries only the code.
  var REASON_LABELS = {
    customer_request: gettext("Customer asked for a person"),
    low_confidence: gettext("Draft confidence too low"),
    draft_failed: gettext("Drafting failed or timed out"),
    out_of_scope: gettext("Something we don't answer"),
    negative_sentiment: gettext("Angry or distressed customer"),
    sensitive: gettext("Sensitive topic"),
    repeated_question: gettext("Customer repeated the question"),
    injection: gettext("Prompt injection or abuse"),
    sla_breach: gettext("Waiting too long")
  };

  // ------------------------------------------------------------- formatting

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function waitingText(since) {
    if (!since) return "—";
    var seconds = Math.max(0, Math.floor((Date.now() - Date.parse(since)) / 1000));
    if (isNaN(seconds)) return "—";
    if (seconds < 60) return interpolate(gettext("%(s)s s"), { s: seconds }, true);
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) return interpolate(gettext("%(m)s min %(s)s s"), { m: minutes, s: pad(seconds % 60) }, true);
    return interpolate(gettext("%(h)s h %(m)s min"), { h: Math.floor(minutes / 60), m: pad(minutes % 60) }, true);
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  // -0.8 -> "−0.8" (a real minus sign, as people write it).
  function signed(value) {
    var text = Math.abs(value).toFixed(1);
    return (value < 0 && text !== "0.0" ? "\u2212" : "") + text;
  }

  /*
   * A conversation's sentiment when it is negative, else null: a marker (not colour alone) and the score.
   * The score runs from -1 (angry) to 1 (pleased).
   */
  function sentimentBadge(value) {
    if (typeof value !== "number" || value >= 0) return null;
    var badge = el("span", "sentiment" + (value <= -0.5 ? " is-angry" : ""));
    badge.setAttribute("data-testid", "sentiment");
    badge.title = gettext("Sentiment of the latest customer message, from −1 (angry) to 1 (pleased)");
    var marker = el("span", "sentiment-marker", "\u2639 " + (value <= -0.5 ? gettext("Angry") : gettext("Unhappy")));
    badge.appendChild(marker);
    badge.appendChild(document.createTextNode(" · " + interpolate(gettext("Sentiment %(score)s"), { score: signed(value) }, true)));
    return badge;
  }

  /*
   * The reasons a conversation needs a person (frames' `reasons`, heaviest first) as a list of chips.
   * withDetail: the detail is written out after the label; otherwise it is the chip's tooltip (and is
   * read out by screen readers, which do not show tooltips).
   */
  function reasonChips(reasons, withDetail) {
    var list = el("ul", "reason-chips");
    list.setAttribute("aria-label", gettext("Reasons"));
    (reasons || []).forEach(function (reason) {
      var chip = el("li", "chip reason-" + reason.reason);
      chip.appendChild(el("span", "chip-label", REASON_LABELS[reason.reason] || reason.label || reason.reason));
      chip.setAttribute("data-testid", "reason");
      chip.setAttribute("data-reason", reason.reason);
      if (reason.detail) {
        if (withDetail) {
          chip.appendChild(el("span", "chip-detail", ": " + reason.detail));
        } else {
          chip.title = reason.detail; // a tooltip for the eye; screen readers read it with the label
          chip.appendChild(el("span", "visually-hidden", ": " + reason.detail));
        }
      }
      list.appendChild(chip);
    });
    return list;
  }

  // The queue's order, the server's (docs/protocol.md): priority, highest first, then the longest-waiting
  // customer; rows with nothing unanswered last. Equal rows keep the order they came in (a stable sort).
  function queueOrder(a, b) {
    var pa = a.priority || 0;
    var pb = b.priority || 0;
    if (pa !== pb) return pb - pa;
    var ta = a.awaiting_reply_since ? Date.parse(a.awaiting_reply_since) : Infinity;
    var tb = b.awaiting_reply_since ? Date.parse(b.awaiting_reply_since) : Infinity;
    if (ta === tb) return 0;
    return ta < tb ? -1 : 1;
  }

  // ------------------------------------------------------------- connection

  // Each page has one indicator; `root` (the page's live area) greys out while it is not live.
  function showConnection(root, stateName, text) {
    var indicator = document.querySelector('[data-testid="connection-state"]');
    indicator.setAttribute("data-state", stateName);
    indicator.textContent = text;
    root.classList.toggle("is-stale", stateName !== "open");
  }

  /*
   * Opens the page's websocket at `path` and keeps it open: reconnects with backoff
   * (1 s, 2 s, 4 s … 15 s), and each new connection gets a full snapshot from the server.
   * options:
   *   root         the page's live area, for showConnection
   *   liveOn       the frame type that starts the snapshot: from then on the page is "Live"
   *   onFrame      (frame) for every well-formed frame of the current connection
   *   onClose      (code) when the current connection closes, before any retry;
   *                return true to stop retrying (the page has said why)
   *   onSignedOut  () after close code 4403 or 4401: no retry, it cannot help until the agent signs in
   * Returns { send(frame) -> sent?, restart() }.
   */
  function connect(path, options) {
    var socket = null;
    var attempt = 0;
    var retryTimer = null;

    function open() {
      clearTimeout(retryTimer);
      showConnection(options.root, "connecting", attempt ? gettext("Reconnecting…") : gettext("Connecting…"));
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      var current = new WebSocket(scheme + location.host + path);
      socket = current;
      var pingTimer = null; // one per connection, so an old socket's close cannot stop the new one's
      current.addEventListener("open", function () {
        pingTimer = setInterval(function () { send({ type: "ping" }); }, 25000);
        sendPresence(); // a hidden tab counts as away, not at the desk
      });
      current.addEventListener("message", function (event) {
        if (current !== socket) return; // a socket being replaced: its frames are stale
        var frame;
        try { frame = JSON.parse(event.data); } catch (e) { return; }
        if (!frame || typeof frame.type !== "string") return;
        if (frame.type === options.liveOn) {
          attempt = 0;
          showConnection(options.root, "open", gettext("Live"));
        }
        options.onFrame(frame);
      });
      current.addEventListener("close", function (event) {
        clearInterval(pingTimer);
        if (current !== socket) return;
        socket = null;
        var stop = options.onClose ? options.onClose(event.code) : false;
        if (event.code === 4403 || event.code === 4401) { // not an agent / the session ended
          showConnection(options.root, "denied", gettext("Signed out"));
          if (options.onSignedOut) options.onSignedOut();
          return; // retrying cannot help until the agent signs in again
        }
        if (stop) return;
        var delay = Math.min(1000 * Math.pow(2, attempt), 15000);
        attempt++;
        showConnection(options.root, "reconnecting",
          interpolate(gettext("Offline — reconnecting in %(s)s s"), { s: Math.round(delay / 1000) }, true));
        retryTimer = setTimeout(open, delay);
      });
    }

    function sendPresence() {
      send({ type: "presence", away: document.visibilityState === "hidden" });
    }
    document.addEventListener("visibilitychange", sendPresence);

    function send(frame) {
      if (socket && socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify(frame));
        return true;
      }
      return false;
    }

    // Drop the connection and open a new one at once (a new one sends the whole snapshot again).
    function restart() {
      var old = socket;
      socket = null; // first, so the old socket's close is ignored rather than retried
      if (old) old.close();
      open();
    }

    open();
    return { send: send, restart: restart };
  }

  // A time in the page's language and the agent's time zone (Preferences: body data-time-zone), not the
  // browser's; `options` as Intl.DateTimeFormat's (default: hours and minutes).
  function timeText(iso, options) {
    var date = iso ? new Date(iso) : null;
    if (!date || isNaN(date.getTime())) return "";
    var format = Object.assign({}, options || { hour: "2-digit", minute: "2-digit" });
    format.timeZone = document.body.getAttribute("data-time-zone") || undefined;
    return date.toLocaleString(document.documentElement.lang || [], format);
  }

  window.ChatDeskAgents = {
    timeText: timeText,
    STATUS_LABELS: STATUS_LABELS,
    statusLabel: statusLabel,
    REASON_LABELS: REASON_LABELS,
    pad: pad,
    el: el,
    signed: signed,
    waitingText: waitingText,
    sentimentBadge: sentimentBadge,
    reasonChips: reasonChips,
    queueOrder: queueOrder,
    showConnection: showConnection,
    connect: connect
  };
})();
