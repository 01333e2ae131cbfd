/*
 * What the agents' pages (agent-queue.js, agent-conversation.js) share, as one global:
 * window.ChatDeskAgents. Loaded before them, so the labels, the waiting time and the
 * connection behaviour (docs/protocol.md) read and act the same on both pages.
 * All text is untrusted: it is only ever set with textContent.
 */
(function () {
  "use strict";

  var STATUS_LABELS = { open: "Drafting", escalated: "Escalated", taken_over: "Taken over", closed: "Closed" };
  var REASON_LABELS = {
    customer_request: "Customer asked for a person",
    low_confidence: "Draft confidence too low",
    draft_failed: "Drafting failed or timed out"
  };

  // ------------------------------------------------------------- formatting

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function waitingText(since) {
    if (!since) return "—";
    var seconds = Math.max(0, Math.floor((Date.now() - Date.parse(since)) / 1000));
    if (isNaN(seconds)) return "—";
    if (seconds < 60) return seconds + " s";
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + " min " + pad(seconds % 60) + " s";
    return Math.floor(minutes / 60) + " h " + pad(minutes % 60) + " min";
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
      showConnection(options.root, "connecting", attempt ? "Reconnecting…" : "Connecting…");
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
          showConnection(options.root, "open", "Live");
        }
        options.onFrame(frame);
      });
      current.addEventListener("close", function (event) {
        clearInterval(pingTimer);
        if (current !== socket) return;
        socket = null;
        var stop = options.onClose ? options.onClose(event.code) : false;
        if (event.code === 4403 || event.code === 4401) { // not an agent / the session ended
          showConnection(options.root, "denied", "Signed out");
          if (options.onSignedOut) options.onSignedOut();
          return; // retrying cannot help until the agent signs in again
        }
        if (stop) return;
        var delay = Math.min(1000 * Math.pow(2, attempt), 15000);
        attempt++;
        showConnection(options.root, "reconnecting", "Offline — reconnecting in " + Math.round(delay / 1000) + " s");
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

  window.ChatDeskAgents = {
    STATUS_LABELS: STATUS_LABELS,
    REASON_LABELS: REASON_LABELS,
    pad: pad,
    waitingText: waitingText,
    showConnection: showConnection,
    connect: connect
  };
})();
