/*
 * ChatDesk customer widget.
 *
 * Embed on any page with one tag:
 *   <script src="https://<your desk>/static/js/widget.js" defer></script>
 * and set it up with the tag's data- attributes (docs/widget.md): data-color,
 * data-position, data-greeting, data-language, and the customer's identity on
 * the host site (data-site, data-customer-id, -name, -email, -signature).
 *
 * Speaks the customer protocol of docs/protocol.md (/ws/chat/) with the server
 * this file was loaded from. Everything is drawn inside an open shadow root so
 * the host page's styles cannot reach it. All text from the server, the
 * customer or the embedding tag is untrusted and only ever set with textContent.
 *
 * This file is plain ASCII (other characters as \u escapes): host pages may
 * declare no charset, and the browser would then misread UTF-8 in it.
 */
(function () {
  "use strict";

  // document.currentScript is only set while this file first runs: capture it now.
  var ownScript = document.currentScript || findOwnScript();
  if (!ownScript || window.__chatdeskWidget) {
    return; // not found, or already embedded once on this page
  }
  window.__chatdeskWidget = true;

  var SERVER = new URL(ownScript.src, location.href);
  var ORIGIN = SERVER.origin;
  var WS_URL = (SERVER.protocol === "https:" ? "wss://" : "ws://") + SERVER.host + "/ws/chat/";
  var TOKEN_KEY = "chatdesk.token:" + ORIGIN;
  var PING_EVERY_MS = 25000;
  var RECONNECT_MAX_MS = 15000;
  var DEFAULT_MAX_CHARS = 4000;
  // Statuses in which a person is on the way or on the line (then "Talk to a person" is not offered).
  var PERSON_COMING = ["waiting_for_agent", "no_agent_online", "email_left", "agent_joined"];
  // The customer's language: the embedding tag's data-language, else the browser's (docs/i18n.md).
  var LANGUAGE = ownScript.getAttribute("data-language") || navigator.language || "";
  var PAGE_MAX_CHARS = 2000; // hello's "page": the address the customer is on, cut to this length
  // data-customer-* attribute -> the field of hello's "customer" object (docs/widget.md).
  var CUSTOMER_ATTRIBUTES = { id: "data-customer-id", name: "data-customer-name", email: "data-customer-email",
    signature: "data-customer-signature" };
  // The embedding tag's other settings, read once (docs/widget.md).
  var CONFIG = readConfig(ownScript);

  // ------------------------------------------------------------ embedding tag

  function readConfig(script) {
    function attr(name) { return (script.getAttribute(name) || "").trim(); }
    var customer = {};
    Object.keys(CUSTOMER_ATTRIBUTES).forEach(function (field) {
      var value = script.getAttribute(CUSTOMER_ATTRIBUTES[field]);
      if (value && value.trim()) customer[field] = value; // as written: a signature covers the exact value
    });
    return {
      color: cssColor(attr("data-color")),
      position: attr("data-position").toLowerCase() === "left" ? "left" : "right",
      greeting: attr("data-greeting"),
      site: attr("data-site"),
      customer: Object.keys(customer).length ? customer : null
    };
  }

  // A colour the browser accepts, else "" (the default accent). Keywords and functions that would take
  // their value from the host page (inherit, currentcolor, var() ...) are refused.
  function cssColor(value) {
    if (!value || !window.CSS || typeof window.CSS.supports !== "function") return "";
    if (/^(inherit|initial|unset|revert|revert-layer|currentcolor)$/i.test(value) || /(var|env|attr)\s*\(/i.test(value)) {
      return "";
    }
    return window.CSS.supports("color", value) ? value : "";
  }

  // ---------------------------------------------------------------- wording
  // The widget's words come from the desk's JavaScript catalogue in the customer's language
  // (/jsi18n/widget/<language>.json: Django's JSONCatalog), read before the widget is drawn. English is
  // the source language: an English customer, or a catalogue that cannot be read, gets the words as written.
  var catalog = {};
  var locale = "en";

  function gettext(msgid) {
    var found = catalog[msgid];
    if (Array.isArray(found)) found = found[0];
    return typeof found === "string" && found ? found : msgid;
  }

  // Django's interpolate(format, values, true): %(name)s replaced by values.name.
  function interpolate(format, values) {
    return format.replace(/%\(\w+\)s/g, function (match) { return String(values[match.slice(2, -2)]); });
  }

  function loadWording(then) {
    if (!LANGUAGE || /^en\b/i.test(LANGUAGE) || typeof window.fetch !== "function") {
      then();
      return;
    }
    window.fetch(ORIGIN + "/jsi18n/widget/" + encodeURIComponent(LANGUAGE) + ".json", { credentials: "omit" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (body && body.catalog && Object.keys(body.catalog).length) {
          catalog = body.catalog;
          locale = LANGUAGE;
        }
      })
      .catch(function () { /* English, as written */ })
      .then(then);
  }

  // The CSAT scale, 1 to 5: each button's accessible name is its number and what it means.
  function scoreMeanings() {
    return [gettext("very unhappy"), gettext("unhappy"), gettext("neither happy nor unhappy"), gettext("happy"),
      gettext("very happy")];
  }

  function findOwnScript() {
    var scripts = document.querySelectorAll("script[src]");
    for (var i = scripts.length - 1; i >= 0; i--) {
      if (/\/js\/widget\.js(\?|#|$)/.test(scripts[i].src)) return scripts[i];
    }
    return null;
  }

  // ---------------------------------------------------------------- storage
  // localStorage can be missing or throw (privacy modes, blocked third-party storage).

  function loadToken() {
    try { return window.localStorage.getItem(TOKEN_KEY); } catch (e) { return null; }
  }

  function saveToken(token) {
    try { window.localStorage.setItem(TOKEN_KEY, token); } catch (e) { /* keep it in memory only */ }
  }

  function dropToken() {
    try { window.localStorage.removeItem(TOKEN_KEY); } catch (e) { /* nothing stored */ }
  }

  function newClientId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    return "m-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12);
  }

  // ------------------------------------------------------------------ state

  var state = {
    token: loadToken(),
    socket: null,
    ready: false,          // welcome received on the current socket: messages may be sent
    helloHadToken: false,  // so an invalid_token error is only handled for a hello that carried one
    attempt: 0,            // reconnect attempts since the last welcome (for the backoff)
    reconnectTimer: null,
    pingTimer: null,
    maxChars: DEFAULT_MAX_CHARS,
    wantHuman: false,      // "Talk to a person" pressed while not connected
    started: false,
    open: false,
    bySeq: new Map(),      // seq -> entry: one entry per stored message
    baseSeq: 0,            // messages up to this seq are not shown (dropped by a reset welcome)
    byClientId: new Map(), // client_id -> entry: messages this page sent
    nextOrder: 0,          // keeps unsent messages in the order they were typed
    statusCode: "idle",
    offline: false,        // the browser said it lost the network, and no welcome came since
    canRate: false,        // the server offers the rating (the conversation is closed)
    rating: null,          // {score, comment} the server stored for this closing, or null
    changingRating: false, // the customer pressed "Change rating"
    pickedScore: null      // the score chosen in the form, not sent yet
  };

  // ------------------------------------------------------------------- view

  var ui = null; // built by mount(), once the page has a body

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text != null) node.textContent = text;
    return node;
  }

  function svgIcon(paths) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "26");
    svg.setAttribute("height", "26");
    svg.setAttribute("aria-hidden", "true");
    paths.forEach(function (d) {
      var path = document.createElementNS(ns, "path");
      path.setAttribute("d", d);
      svg.appendChild(path);
    });
    return svg;
  }

  function buildUi() {
    var host = document.createElement("div");
    host.setAttribute("data-chatdesk-widget", "");
    // Inline !important beats anything the host page's stylesheets say about divs; `all: initial` stops the
    // font, colour, line height ... the host element would inherit (and pass on into the shadow root).
    host.setAttribute("style", "all: initial !important; display: block !important; position: fixed !important;" +
      " " + CONFIG.position + ": 0 !important; bottom: 0 !important; width: 0 !important; height: 0 !important;" +
      " z-index: 2147483000 !important;");
    host.setAttribute("lang", locale);
    var shadow = host.attachShadow({ mode: "open" });
    shadow.appendChild(el("style", {}, STYLES));
    var side = CONFIG.position === "left" ? " at-left" : "";

    var launcher = el("button", { type: "button", class: "launcher" + side, "data-chatdesk": "open",
      "aria-label": gettext("Open chat"), "aria-expanded": "false", "aria-controls": "chatdesk-panel" });
    var chatIcon = svgIcon(["M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"]);
    chatIcon.setAttribute("class", "icon-chat");
    var closeIcon = svgIcon(["M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12 19 17.6 17.6 19 12 13.4 6.4 19 5 17.6 10.6 12 5 6.4z"]);
    closeIcon.setAttribute("class", "icon-close");
    launcher.appendChild(chatIcon);
    launcher.appendChild(closeIcon);
    var unread = el("span", { class: "unread", hidden: "" });
    launcher.appendChild(unread);

    var panel = el("section", { class: "panel" + side, id: "chatdesk-panel", role: "dialog",
      "aria-label": gettext("Chat with us"), hidden: "" });
    var header = el("header", { class: "head" });
    var titles = el("div", { class: "titles" });
    titles.appendChild(el("h2", {}, gettext("Chat with us")));
    // Live regions stay in the page while empty (only their text changes), so each change is announced.
    var connection = el("p", { class: "conn", "data-chatdesk": "connection", role: "status" }, "");
    titles.appendChild(connection);
    var closeButton = el("button", { type: "button", class: "close", "aria-label": gettext("Close chat") }, "\u00d7");
    header.appendChild(titles);
    header.appendChild(closeButton);

    // The history is a log: new messages are read out politely; the list inside keeps its list semantics.
    var log = el("div", { class: "messages", "data-chatdesk": "log", role: "log", "aria-live": "polite",
      "aria-label": gettext("Messages") });
    var list = el("ol", { class: "items" });
    log.appendChild(list);
    var empty = el("p", { class: "empty", "data-chatdesk": "greeting" },
      CONFIG.greeting || gettext("Ask us anything about your order, delivery or returns."));
    var status = el("p", { class: "status", "data-chatdesk": "status", role: "status" });
    var typingLine = el("p", { class: "typing", "data-chatdesk": "typing", role: "status", "aria-live": "polite" }, "");
    var error = el("p", { class: "error", "data-chatdesk": "error", role: "alert", hidden: "" });

    var form = el("form", { class: "compose" });
    var input = el("textarea", { "data-chatdesk": "input", rows: "2", placeholder: gettext("Type your message\u2026"),
      "aria-label": gettext("Your message") });
    var send = el("button", { type: "submit", class: "send", "data-chatdesk": "send" }, gettext("Send"));
    form.appendChild(input);
    form.appendChild(send);
    var human = el("button", { type: "button", class: "human", "data-chatdesk": "human" }, gettext("Talk to a person"));

    // Offered when no agent is at the desk: an address to be answered at.
    var emailForm = el("form", { class: "email", "data-chatdesk": "email-form", hidden: "" });
    var emailLabel = el("label", { for: "chatdesk-email" }, gettext("Your email address"));
    var emailInput = el("input", { id: "chatdesk-email", type: "email", autocomplete: "email", required: "",
      "data-chatdesk": "email", placeholder: gettext("name@example.com") });
    var emailSend = el("button", { type: "submit", class: "send" }, gettext("Leave email"));
    emailForm.appendChild(emailLabel);
    emailForm.appendChild(emailInput);
    emailForm.appendChild(emailSend);

    // Offered once the conversation is closed: a 1-5 rating with an optional comment.
    var rating = el("section", { class: "rating", "data-chatdesk": "rating", "aria-labelledby": "chatdesk-rate-q",
      hidden: "" });
    var rateForm = el("form", { class: "rate-form", "data-chatdesk": "rate-form" });
    rateForm.appendChild(el("p", { class: "rate-q", id: "chatdesk-rate-q" }, gettext("How did we do?")));
    var scores = el("div", { class: "scores", role: "group", "aria-labelledby": "chatdesk-rate-q" });
    var scoreButtons = scoreMeanings().map(function (meaning, index) {
      var score = index + 1;
      var button = el("button", { type: "button", class: "score", "data-score": String(score),
        "aria-pressed": "false", "aria-label": score + " \u2013 " + meaning, title: meaning }, String(score));
      scores.appendChild(button);
      return button;
    });
    rateForm.appendChild(scores);
    var ends = el("p", { class: "scale", "aria-hidden": "true" });
    ends.appendChild(el("span", {}, gettext("very unhappy")));
    ends.appendChild(el("span", {}, gettext("very happy")));
    rateForm.appendChild(ends);
    rateForm.appendChild(el("label", { for: "chatdesk-rate-comment" }, gettext("Comment (optional)")));
    var rateComment = el("textarea", { id: "chatdesk-rate-comment", rows: "2", "data-chatdesk": "rate-comment" });
    rateForm.appendChild(rateComment);
    rateForm.appendChild(el("button", { type: "submit", class: "send" }, gettext("Send rating")));
    var rateThanks = el("div", { class: "rate-thanks", "data-chatdesk": "rate-thanks", hidden: "" });
    var rateThanksText = el("p", { role: "status" }, "");
    var rateChange = el("button", { type: "button", class: "human", "data-chatdesk": "rate-change" }, gettext("Change rating"));
    rateThanks.appendChild(rateThanksText);
    rateThanks.appendChild(rateChange);
    rating.appendChild(rateForm);
    rating.appendChild(rateThanks);

    var actions = el("div", { class: "actions" });
    var endChat = el("button", { type: "button", class: "human", "data-chatdesk": "end", hidden: "" }, gettext("End chat"));
    actions.appendChild(human);
    actions.appendChild(endChat);

    [header, empty, log, typingLine, status, emailForm, rating, error, form, actions].forEach(function (node) {
      panel.appendChild(node);
    });
    shadow.appendChild(panel);
    shadow.appendChild(launcher);
    // Read out, not shown: a reply that arrives while the panel is closed (the dot on the launcher shows it).
    var notice = el("span", { class: "visually-hidden", "data-chatdesk": "notice", role: "status" }, "");
    shadow.appendChild(notice);

    return { host: host, shadow: shadow, launcher: launcher, unread: unread, notice: notice, panel: panel, closeButton: closeButton,
      log: log, list: list, empty: empty, status: status, error: error, form: form, input: input, human: human,
      emailForm: emailForm, emailInput: emailInput, endChat: endChat,
      rating: rating, rateForm: rateForm, scoreButtons: scoreButtons, rateComment: rateComment,
      rateThanks: rateThanks, rateThanksText: rateThanksText, rateChange: rateChange,
      connection: connection, typing: typingLine };
  }

  function mount() {
    ui = buildUi();
    document.body.appendChild(ui.host);
    applyAccent();
    ui.launcher.addEventListener("click", function () { setOpen(!state.open); });
    ui.closeButton.addEventListener("click", closeAndReturnFocus);
    // Escape anywhere in the widget (the panel or the launcher) closes it; focus goes back to the launcher.
    ui.shadow.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && state.open) {
        event.stopPropagation(); // the host page's own Escape handlers are not for this
        closeAndReturnFocus();
      }
    });
    ui.form.addEventListener("submit", function (event) { event.preventDefault(); submitInput(); });
    ui.input.addEventListener("keydown", function (event) {
      // Enter sends, Shift+Enter is a new line; never interrupt an IME composition.
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
        event.preventDefault();
        submitInput();
      }
    });
    ui.input.addEventListener("input", typingInput);
    ui.human.addEventListener("click", requestHuman);
    ui.endChat.addEventListener("click", function () {
      showError("");
      if (state.ready) send({ type: "end" });
    });
    ui.scoreButtons.forEach(function (button) {
      button.addEventListener("click", function () {
        state.pickedScore = Number(button.getAttribute("data-score"));
        drawRating();
      });
    });
    ui.rateForm.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!state.pickedScore) {
        showError(gettext("Please choose a rating from 1 to 5."));
        return;
      }
      showError("");
      var comment = ui.rateComment.value.trim();
      var frame = { type: "rate", score: state.pickedScore };
      if (comment) frame.comment = comment;
      send(frame);
    });
    ui.rateChange.addEventListener("click", function () {
      state.changingRating = true;
      drawRating();
      var picked = ui.scoreButtons[(state.pickedScore || 1) - 1];
      picked.focus();
    });
    ui.emailForm.addEventListener("submit", function (event) {
      event.preventDefault();
      showError("");
      if (state.ready) send({ type: "leave_email", email: ui.emailInput.value.trim() });
    });
    window.addEventListener("online", onOnline);
    window.addEventListener("offline", onOffline);
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") reconnectSoon();
    });
    // A returning visitor resumes at once, so replies that came meanwhile are shown.
    if (state.token) start();
  }

  // The tag's data-color as the accent; text on it dark or white, whichever reads better on it.
  function applyAccent() {
    if (!CONFIG.color) return;
    var nodes = [ui.launcher, ui.panel];
    nodes.forEach(function (node) { node.style.setProperty("--accent", CONFIG.color); });
    var computed = window.getComputedStyle(ui.launcher).backgroundColor;
    var rgb = /^rgba?\(/.test(computed) ? computed.match(/[\d.]+/g).map(Number) : [];
    if (rgb.length >= 3 && relativeLuminance(rgb) > 0.215) { // above it, #1d2433 contrasts more than white
      nodes.forEach(function (node) {
        node.style.setProperty("--on-accent", "#1d2433");
        node.style.setProperty("--accent-ink", "#1d2433");
      });
    }
  }

  function relativeLuminance(rgb) {
    var linear = rgb.slice(0, 3).map(function (value) {
      var c = value / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2];
  }

  function setOpen(open) {
    state.open = open;
    ui.panel.hidden = !open; // closed: nothing in the panel can take focus
    ui.launcher.setAttribute("aria-expanded", String(open));
    ui.launcher.setAttribute("aria-label", open ? gettext("Close chat") : gettext("Open chat"));
    ui.launcher.classList.toggle("is-open", open);
    if (open) {
      ui.unread.hidden = true;
      ui.notice.textContent = "";
      start(); // a conversation only starts once the visitor opens the chat
      scrollToEnd();
      ui.input.focus({ preventScroll: true });
    }
  }

  function closeAndReturnFocus() {
    setOpen(false);
    ui.launcher.focus({ preventScroll: true });
  }

  // Focus moves inside the widget only while the customer is in it: never away from the host page.
  function focusInWidget(node) {
    if (state.open && document.activeElement === ui.host) node.focus({ preventScroll: true });
  }

  function showError(text) {
    ui.error.textContent = text;
    ui.error.hidden = !text;
  }

  function showStatus(text, code) {
    ui.status.textContent = text || "";
    var offerEmail = code === "no_agent_online";
    if (offerEmail && ui.emailForm.hidden) {
      ui.emailForm.hidden = false;
      // Focus follows only from "Talk to a person" (hidden next): never from the message being typed.
      if (ui.shadow.activeElement === ui.human) focusInWidget(ui.emailInput);
    }
    if (!offerEmail) ui.emailForm.hidden = true;
    // Once a person is on the way or on the line, asking again does nothing: don't offer it. A customer who
    // just pressed it keeps their place: focus goes on to the message box rather than to the page.
    var hideHuman = PERSON_COMING.indexOf(code) !== -1;
    if (hideHuman && ui.shadow.activeElement === ui.human) focusInWidget(ui.input);
    ui.human.hidden = hideHuman;
  }

  // What the server said about rating (status and welcome frames): offer it while it may be given.
  function receiveRating(frame) {
    state.canRate = frame.can_rate === true;
    var rating = frame.rating && typeof frame.rating.score === "number" ? frame.rating : null;
    if (!state.canRate) state.changingRating = false;
    if (!state.changingRating) setRating(rating);
    drawRating();
  }

  function setRating(rating) {
    var known = state.rating;
    state.rating = rating;
    // A new closing (no rating yet) starts from an empty form; a stored rating fills it in.
    if (rating) {
      state.pickedScore = rating.score;
      ui.rateComment.value = rating.comment || "";
    } else if (known) {
      state.pickedScore = null;
      ui.rateComment.value = "";
    }
  }

  function drawRating() {
    ui.rating.hidden = !state.canRate;
    var thanks = Boolean(state.rating) && !state.changingRating;
    ui.rateForm.hidden = thanks;
    ui.rateThanks.hidden = !thanks;
    if (state.rating) {
      ui.rateThanksText.textContent = interpolate(gettext("Thanks for your rating: %(score)s of 5 (%(meaning)s)."),
        { score: state.rating.score, meaning: scoreMeanings()[state.rating.score - 1] });
    }
    ui.scoreButtons.forEach(function (button, index) {
      var pressed = state.pickedScore === index + 1;
      button.setAttribute("aria-pressed", String(pressed));
      button.classList.toggle("is-picked", pressed);
    });
    ui.endChat.hidden = state.statusCode === "closed" || state.bySeq.size === 0;
  }

  function showConnection(text) {
    ui.connection.textContent = text;
  }

  function scrollToEnd() {
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  function formatTime(iso) {
    var date = iso ? new Date(iso) : null;
    if (!date || isNaN(date.getTime())) return "";
    // The widget's language; no timeZone: the customer's browser's own.
    return date.toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
  }

  // ---------------------------------------------------------------- messages
  // An entry is one message: {seq, clientId, sender, author, text, sentAt, state, order, node}.
  // state: "sent" (stored, has a seq), "sending" (sent on the open socket, waiting for its ack), "pending"
  // (kept while offline: sent once the next welcome comes) or "failed" (refused).

  function createEntry(fields) {
    var entry = Object.assign({ seq: null, clientId: null, sender: "customer", author: null, text: "",
      sentAt: null, state: "sent", order: state.nextOrder++ }, fields);
    entry.node = el("li", { "data-chatdesk": "message" });
    entry.node.addEventListener("click", function () { if (entry.state === "failed") retry(entry); });
    drawEntry(entry);
    return entry;
  }

  function drawEntry(entry) {
    var node = entry.node;
    node.className = "msg from-" + entry.sender + " is-" + entry.state;
    node.setAttribute("data-sender", entry.sender);
    node.setAttribute("data-state", entry.state);
    if (entry.seq != null) node.setAttribute("data-seq", String(entry.seq));
    else node.removeAttribute("data-seq");

    var parts = [];
    if (entry.sender === "agent") parts.push(el("span", { class: "who" }, entry.author || gettext("Agent")));
    if (entry.sender === "bot") parts.push(el("span", { class: "who" }, gettext("Automatic reply")));
    parts.push(el("p", { class: "text" }, entry.text));
    if (entry.state === "pending" && connectionLost()) {
      parts.push(el("span", { class: "meta" }, gettext("Not sent yet \u2014 it will be sent when you are back online")));
    } else if (entry.state === "sending" || entry.state === "pending") {
      parts.push(el("span", { class: "meta" }, gettext("Sending\u2026")));
    } else if (entry.state === "failed") {
      parts.push(el("button", { type: "button", class: "meta retry", title: gettext("Send this message again") },
        gettext("not sent \u2014 retry")));
    } else parts.push(el("span", { class: "meta" }, formatTime(entry.sentAt)));
    node.replaceChildren.apply(node, parts);
  }

  // Stored messages in seq order, then the ones still on their way in the order typed.
  function renderList() {
    var all = Array.from(new Set(Array.from(state.bySeq.values()).concat(Array.from(state.byClientId.values()))));
    all.sort(function (a, b) {
      if (a.seq != null && b.seq != null) return a.seq - b.seq;
      if (a.seq != null) return -1;
      if (b.seq != null) return 1;
      return a.order - b.order;
    });
    // Only nodes out of place move, so the log announces what is new, not the whole history again.
    all.forEach(function (entry, index) {
      var here = ui.list.children[index] || null;
      if (here !== entry.node) ui.list.insertBefore(entry.node, here);
    });
    while (ui.list.children.length > all.length) ui.list.lastElementChild.remove();
    ui.empty.hidden = all.length > 0;
    scrollToEnd();
  }

  // The highest seq up to which nothing is missing: what to ask after when resuming. After a
  // welcome with reset (too much was missed to replay) counting starts below its first message.
  function contiguousSeq() {
    var seq = state.baseSeq;
    while (state.bySeq.has(seq + 1)) seq++;
    return seq;
  }

  function markStored(entry, seq) {
    var other = state.bySeq.get(seq);
    if (other && other !== entry) other.node.remove(); // keep one message per seq
    entry.seq = seq;
    entry.state = "sent";
    state.bySeq.set(seq, entry);
    drawEntry(entry);
  }

  // A message frame, from welcome or live. Returns true when it was new.
  function receiveMessage(frame) {
    if (typeof frame.seq !== "number") return false;
    var known = state.bySeq.get(frame.seq);
    if (known) {
      if (!known.sentAt && frame.sent_at) { // our own message, acked before its echo arrived
        known.sentAt = frame.sent_at;
        drawEntry(known);
      }
      return false;
    }
    var own = frame.client_id ? state.byClientId.get(frame.client_id) : null;
    if (own) {
      own.sentAt = frame.sent_at;
      own.text = frame.text;
      markStored(own, frame.seq);
      return true;
    }
    var entry = createEntry({ seq: frame.seq, clientId: frame.client_id || null, sender: frame.sender || "bot",
      author: frame.author || null, text: frame.text || "", sentAt: frame.sent_at });
    state.bySeq.set(frame.seq, entry);
    return true;
  }

  // Another conversation starts (the old token was refused): forget what was shown, keep what was not sent.
  function forgetConversation() {
    state.bySeq.forEach(function (entry) {
      if (entry.clientId) state.byClientId.delete(entry.clientId);
      entry.node.remove();
    });
    state.bySeq.clear();
    state.baseSeq = 0;
    renderList();
  }

  // -------------------------------------------------------------- sending

  function submitInput() {
    var text = ui.input.value.trim();
    if (!text) {
      showError(gettext("Please type a message before sending."));
      return;
    }
    var length = Array.from(text).length; // characters as the server counts them, not UTF-16 units
    if (length > state.maxChars) {
      showError(interpolate(gettext("Messages can be at most %(limit)s characters; this one has %(length)s."),
        { limit: state.maxChars.toLocaleString(locale), length: length.toLocaleString(locale) }));
      return;
    }
    showError("");
    ui.input.value = "";
    var entry = createEntry({ clientId: newClientId(), sender: "customer", text: text, state: "pending" });
    state.byClientId.set(entry.clientId, entry);
    renderList();
    deliver(entry);
  }

  // Sent now when connected, else kept as pending and sent by flushOutbox() after the next welcome.
  function deliver(entry) {
    entry.state = "pending";
    if (state.ready) sendEntry(entry);
    else start();
    drawEntry(entry);
  }

  function sendEntry(entry) {
    if (send({ type: "message", client_id: entry.clientId, text: entry.text })) entry.state = "sending";
  }

  function retry(entry) {
    showError("");
    deliver(entry);
  }

  // Once per welcome: every message not stored yet goes out with its own client_id, so one the desk already
  // stored (its ack lost with the connection) is acknowledged again, never stored twice.
  function flushOutbox() {
    state.byClientId.forEach(function (entry) {
      if (entry.state === "pending" || entry.state === "sending") {
        sendEntry(entry);
        drawEntry(entry);
      }
    });
  }

  // The connection is gone: what was on its way may or may not have arrived; it is sent again on the next one.
  function holdUnacknowledged() {
    state.byClientId.forEach(function (entry) {
      if (entry.state === "sending") entry.state = "pending";
      if (entry.state === "pending") drawEntry(entry); // now says it waits for the connection
    });
  }

  // Offline, or the connection dropped and is not back yet (not merely the first connection being opened).
  function connectionLost() {
    return state.offline || state.attempt > 0 || (state.started && !state.socket);
  }

  function requestHuman() {
    showError("");
    if (state.ready) send({ type: "request_human" });
    else {
      state.wantHuman = true;
      start();
    }
  }

  // ---------------------------------------------------------------- typing
  // While the customer types (never for an empty box) a `typing` frame goes out at most every 2.5 s;
  // "An agent is typing..." shows for a few seconds after each `typing` frame from an agent.

  var TYPING_EVERY_MS = 2500;
  var TYPING_SHOWN_MS = 5000;
  var typing = { sentAt: 0, timer: null };

  function typingInput() {
    var now = Date.now();
    if (!state.ready || !ui.input.value.trim() || now - typing.sentAt < TYPING_EVERY_MS) return;
    if (send({ type: "typing" })) typing.sentAt = now;
  }

  function showAgentTyping(on) {
    clearTimeout(typing.timer);
    ui.typing.textContent = on ? gettext("An agent is typing\u2026") : "";
    if (on) typing.timer = setTimeout(function () { showAgentTyping(false); }, TYPING_SHOWN_MS);
  }

  function onTyping(frame) {
    if (frame.who === "agent") showAgentTyping(true);
  }

  // ------------------------------------------------------------ connection

  function send(frame) {
    if (state.socket && state.socket.readyState === WebSocket.OPEN) {
      state.socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  function start() {
    if (state.started) return;
    state.started = true;
    connect();
  }

  function connect() {
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    if (state.offline) showConnection(offlineText());
    else showConnection(state.attempt ? gettext("Reconnecting\u2026") : gettext("Connecting\u2026"));
    var socket;
    try {
      socket = new WebSocket(WS_URL);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    state.socket = socket;
    socket.addEventListener("open", function () {
      if (socket !== state.socket) return;
      sendHello();
      state.pingTimer = setInterval(function () { send({ type: "ping" }); }, PING_EVERY_MS);
    });
    socket.addEventListener("message", function (event) {
      if (socket !== state.socket) return;
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (frame && typeof frame.type === "string") handleFrame(frame);
    });
    socket.addEventListener("close", function () {
      if (socket !== state.socket) return;
      abandonSocket();
      scheduleReconnect();
    });
  }

  // Stop using the current socket (its late events are ignored: they check socket === state.socket).
  function abandonSocket() {
    var socket = state.socket;
    clearInterval(state.pingTimer);
    state.socket = null;
    state.ready = false;
    holdUnacknowledged();
    if (socket && socket.readyState !== WebSocket.CLOSED) {
      try { socket.close(); } catch (e) { /* already closing */ }
    }
  }

  function scheduleReconnect() {
    clearTimeout(state.reconnectTimer);
    var delay = Math.min(1000 * Math.pow(2, state.attempt), RECONNECT_MAX_MS); // 1 s, 2 s, 4 s ... 15 s
    state.attempt++;
    showConnection(state.offline ? offlineText() : interpolate(
      gettext("Connection lost. Reconnecting in %(seconds)s s\u2026"), { seconds: Math.round(delay / 1000) }));
    state.reconnectTimer = setTimeout(connect, delay);
  }

  function offlineText() {
    return gettext("You are offline \u2014 messages will be sent when you are back.");
  }

  // The tab is visible again: don't wait out the backoff.
  function reconnectSoon() {
    if (state.started && !state.socket && state.reconnectTimer) connect();
  }

  // The browser lost the network: a socket may look open for minutes before it fails, so stop using it
  // now; messages typed meanwhile wait as pending, and the customer is told.
  function onOffline() {
    state.offline = true;
    if (!ui) return;
    if (!state.started) {
      showConnection(offlineText());
      return;
    }
    abandonSocket();
    scheduleReconnect();
  }

  // The network is back: reconnect at once (the welcome sends what is pending).
  function onOnline() {
    state.offline = false;
    if (!ui) return;
    if (!state.started) {
      showConnection("");
      return;
    }
    if (state.socket && state.socket.readyState === WebSocket.OPEN) return;
    abandonSocket();
    connect();
  }

  function sendHello() {
    state.ready = false;
    // The customer's language chooses the wording of the desk's notices (docs/protocol.md, hello).
    var hello = { type: "hello", language: LANGUAGE };
    // Only a web page's address (a page opened from disk has none an agent could open).
    if (/^https?:$/.test(location.protocol)) hello.page = String(location.href).slice(0, PAGE_MAX_CHARS);
    // Who the customer is on the host site, as the embedding tag says (docs/widget.md; the desk checks it).
    if (CONFIG.site) hello.site = CONFIG.site;
    if (CONFIG.customer) hello.customer = CONFIG.customer;
    if (state.token) {
      hello.token = state.token;
      hello.after_seq = contiguousSeq();
    }
    state.helloHadToken = Boolean(state.token);
    send(hello);
  }

  // ---------------------------------------------------------------- frames

  function handleFrame(frame) {
    switch (frame.type) {
      case "welcome": return onWelcome(frame);
      case "ack": return onAck(frame);
      case "message": return onMessage(frame);
      case "status": return onStatus(frame);
      case "error": return onError(frame);
      case "typing": return onTyping(frame);
      default: return undefined; // pong, and frame types added later
    }
  }

  function onWelcome(frame) {
    state.token = frame.token;
    saveToken(frame.token);
    state.ready = true;
    state.attempt = 0;
    state.offline = false; // a welcome came: whatever the browser thinks, the desk is reachable
    if (typeof frame.max_message_chars === "number") state.maxChars = frame.max_message_chars;
    if (frame.reset) {
      // More was missed than one frame replays: show the newest messages, not a list with a hole.
      forgetConversation();
      var first = (frame.messages || [])[0];
      state.baseSeq = first && typeof first.seq === "number" ? first.seq - 1 : frame.last_seq || 0;
    }
    (frame.messages || []).forEach(receiveMessage);
    renderList();
    state.statusCode = frame.status;
    showStatus(frame.status_text, frame.status);
    receiveRating(frame);
    showConnection("");
    flushOutbox();
    if (state.wantHuman) {
      state.wantHuman = false;
      send({ type: "request_human" });
    }
  }

  function onStatus(frame) {
    state.statusCode = frame.status;
    showStatus(frame.text, frame.status);
    receiveRating(frame);
  }

  function onAck(frame) {
    if (frame.action === "rate") {
      state.changingRating = false;
      setRating(frame.rating || null);
      drawRating();
      if (!ui.rateThanks.hidden) focusInWidget(ui.rateChange); // the form that had focus is gone
      return;
    }
    var entry = state.byClientId.get(frame.client_id);
    if (!entry || typeof frame.seq !== "number") return;
    // An ack comes straight back on this socket: a seq above what we hold means broadcasts were missed.
    var missedSome = frame.seq > contiguousSeq() + 1;
    markStored(entry, frame.seq);
    renderList();
    if (missedSome && state.ready) sendHello();
  }

  function onMessage(frame) {
    if (typeof frame.seq !== "number") return;
    // A seq more than one above what we hold means frames were missed: resume after what we have.
    var missedSome = frame.seq > contiguousSeq() + 1;
    var isNew = receiveMessage(frame);
    if (!isNew) return;
    renderList();
    drawRating();
    if (!state.open && frame.sender !== "customer") {
      ui.unread.hidden = false;
      ui.notice.textContent = gettext("New message in the chat");
    }
    if (frame.sender !== "customer") showAgentTyping(false);
    if (missedSome && state.ready) sendHello();
  }

  function onError(frame) {
    if (frame.code === "invalid_token" && state.helloHadToken) {
      // The conversation is gone or the token expired: start a new one.
      dropToken();
      state.token = null;
      forgetConversation();
      sendHello();
      return;
    }
    if (frame.code === "hello_required") {
      sendHello();
      return;
    }
    if (frame.code === "rating_closed") {
      state.canRate = false;
      state.changingRating = false;
      drawRating();
    }
    var entry = frame.client_id != null ? state.byClientId.get(String(frame.client_id)) : null;
    if (entry && frame.code === "client_id_conflict") {
      // That id is taken by another message: a retry of this one needs an id of its own.
      state.byClientId.delete(entry.clientId);
      entry.clientId = newClientId();
      state.byClientId.set(entry.clientId, entry);
    }
    if (entry && entry.state !== "sent") {
      entry.state = "failed"; // its text stays on screen; a click sends it again with the same client_id
      drawEntry(entry);
    }
    showError(frame.message || gettext("Something went wrong. Please try again."));
  }

  // ----------------------------------------------------------------- styles

  var STYLES = [
    ":host { all: initial; }",
    "*, *::before, *::after { box-sizing: border-box; }",
    "[hidden] { display: none !important; }",
    ".launcher, .panel { font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif;",
    "  color: #1d2433; letter-spacing: normal; text-align: left; text-transform: none; word-spacing: normal;",
    // The accent (data-color sets --accent on both, and the text colours on it when it is light).
    "  --accent: #2453d1; --accent-dark: #1b3fa3; --on-accent: #fff; --accent-ink: var(--accent); }",
    "@supports (color: color-mix(in srgb, red 50%, black)) {",
    "  .launcher, .panel { --accent-dark: color-mix(in srgb, var(--accent) 78%, #000); } }",
    ".launcher { position: fixed; right: 20px; bottom: 20px; width: 58px; height: 58px; border-radius: 50%;",
    "  border: 0; padding: 0; margin: 0; background: var(--accent); color: var(--on-accent); cursor: pointer; display: grid;",
    "  place-items: center; box-shadow: 0 6px 20px rgba(20, 40, 100, .35); transition: transform .15s; }",
    ".launcher:hover { transform: scale(1.05); }",
    ".launcher:focus-visible, button:focus-visible { outline: 3px solid #ffb020; outline-offset: 2px; }",
    "textarea:focus, input:focus { outline: none; border-color: var(--accent); box-shadow: 0 0 0 3px rgba(36, 83, 209, .2); }",
    ".launcher svg { fill: currentColor; }",
    ".launcher.is-open { background: var(--accent-dark); }",
    ".launcher .icon-close, .launcher.is-open .icon-chat { display: none; }",
    ".launcher.is-open .icon-close { display: block; }",
    ".visually-hidden { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; border: 0;",
    "  overflow: hidden; clip: rect(0 0 0 0); clip-path: inset(50%); white-space: nowrap; }",
    ".unread { position: absolute; top: 4px; right: 4px; width: 14px; height: 14px; border-radius: 50%;",
    "  background: #e5484d; border: 2px solid #fff; }",
    ".panel { position: fixed; right: 20px; bottom: 92px; width: min(370px, calc(100vw - 24px));",
    "  height: min(560px, calc(100vh - 112px)); display: flex; flex-direction: column; background: #fff;",
    // When the rating or e-mail form takes room, the history keeps enough height to read (below) and the
    // panel scrolls instead of squeezing it to a strip.
    "  border-radius: 14px; overflow-x: hidden; overflow-y: auto; box-shadow: 0 12px 40px rgba(15, 25, 60, .28); }",
    ".launcher.at-left, .panel.at-left { right: auto; left: 20px; }",
    "@media (max-width: 480px) {",
    "  .panel { right: 12px; width: calc(100vw - 24px); bottom: 86px; height: calc(100vh - 98px); }",
    "  .launcher { right: 12px; bottom: 14px; }",
    "  .launcher.at-left, .panel.at-left { right: auto; left: 12px; } }",
    ".head { display: flex; align-items: flex-start; justify-content: space-between; gap: 8px;",
    "  padding: 14px 16px; background: var(--accent); color: var(--on-accent); }",
    ".head h2 { margin: 0; font-size: 17px; font-weight: 600; }",
    ".conn { margin: 2px 0 0; font-size: 12.5px; opacity: .9; min-height: 0; }",
    ".conn:empty { margin: 0; }",
    ".close { border: 0; background: transparent; color: inherit; font-size: 24px; line-height: 1; cursor: pointer;",
    "  padding: 0; margin: -10px -10px -10px 0; min-width: 44px; min-height: 44px; flex: none; }",
    ".messages { margin: 0; padding: 14px; flex: 1; min-height: 160px; overflow-y: auto; background: #f5f7fb; }",
    ".items { list-style: none; margin: 0; padding: 0; display: flex; flex-direction: column; gap: 8px; }",
    ".empty { margin: 0; padding: 14px 16px 0; background: #f5f7fb; color: #5b6478; font-size: 14px; }",
    ".msg { max-width: 85%; padding: 8px 11px; border-radius: 12px; background: #fff; border: 1px solid #e1e5ee;",
    "  align-self: flex-start; }",
    ".msg .text { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; }",
    ".msg .who { display: block; font-size: 12px; font-weight: 600; color: var(--accent-ink); margin-bottom: 2px; }",
    ".msg.from-bot .who { color: #6b5bb8; }",
    ".msg .meta { display: block; font-size: 11.5px; color: #6b7385; margin-top: 3px; text-align: right; }",
    ".msg.from-customer { align-self: flex-end; background: var(--accent); border-color: var(--accent);",
    "  color: var(--on-accent); }",
    ".msg.from-customer .meta { color: inherit; opacity: .85; }",
    ".msg.is-pending { opacity: .8; border-style: dashed; }",
    ".msg.is-sending { opacity: .75; }",
    ".msg.is-failed { background: #fff1f1; border-color: #e5484d; color: #1d2433; cursor: pointer; }",
    ".msg.is-failed .retry { border: 0; background: none; padding: 0; margin-left: auto; color: #c62a2f;",
    "  font: inherit; font-size: 12px; font-weight: 600; cursor: pointer; text-decoration: underline; min-height: 44px; }",
    ".status:empty { padding: 0; border: 0; }",
    ".status { margin: 0; padding: 7px 14px; font-size: 13px; color: #3b4558; background: #eef2fb;",
    "  border-top: 1px solid #e1e5ee; }",
    ".typing { margin: 0; padding: 0 14px; min-height: 18px; font-size: 12.5px; font-style: italic; color: #6b7385; }",
    ".error { margin: 0; padding: 7px 14px; font-size: 13px; color: #9b1c20; background: #fdecec;",
    "  border-top: 1px solid #f5c2c3; }",
    ".compose { display: flex; gap: 8px; padding: 10px 12px 6px; border-top: 1px solid #e1e5ee; margin: 0; }",
    ".compose textarea { flex: 1; resize: none; min-height: 44px; max-height: 120px; padding: 9px 10px;",
    "  border: 1px solid #c9d0de; border-radius: 10px; font: inherit; color: inherit; background: #fff; }",
    ".send { border: 0; border-radius: 10px; padding: 0 16px; background: var(--accent); color: var(--on-accent);",
    "  font: inherit; font-weight: 600; cursor: pointer; min-width: 44px; min-height: 44px; }",
    ".send:hover { background: var(--accent-dark); }",
    ".email { display: flex; flex-wrap: wrap; gap: 6px 8px; padding: 8px 12px; margin: 0; background: #eef2fb; }",
    ".email label { flex-basis: 100%; font-size: 13px; color: #3b4558; }",
    ".email input { flex: 1; min-width: 0; min-height: 44px; padding: 7px 9px; border: 1px solid #c9d0de; border-radius: 8px;",
    "  font: inherit; color: inherit; background: #fff; }",
    ".actions { display: flex; justify-content: space-between; gap: 8px; margin: 0 12px 12px; }",
    ".human { align-self: flex-start; border: 0; background: none; padding: 4px 2px; min-height: 44px;",
    "  color: var(--accent-ink); font: inherit; font-size: 13.5px; text-decoration: underline; cursor: pointer; }",
    ".rating { padding: 10px 12px; background: #eef2fb; border-top: 1px solid #e1e5ee; }",
    ".rate-form { display: flex; flex-direction: column; gap: 6px; margin: 0; }",
    ".rate-q, .rate-thanks p { margin: 0; font-size: 14px; font-weight: 600; color: #1d2433; }",
    ".scores { display: flex; gap: 6px; }",
    ".score { flex: 1; min-height: 44px; min-width: 44px; border: 1px solid #9aa6c0; border-radius: 8px; background: #fff;",
    "  color: #1d2433; font: inherit; font-weight: 600; cursor: pointer; }",
    ".score.is-picked { background: var(--accent); border-color: var(--accent); color: var(--on-accent);",
    "  box-shadow: inset 0 0 0 2px #fff; }",
    ".scale { display: flex; justify-content: space-between; margin: 0; font-size: 12px; color: #5b6478; }",
    ".rate-form label { font-size: 13px; color: #3b4558; }",
    ".rate-form textarea { resize: none; padding: 7px 9px; border: 1px solid #c9d0de; border-radius: 8px;",
    "  font: inherit; color: inherit; background: #fff; }",
    ".rate-form .send { align-self: flex-end; }",
    ".rate-thanks { display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: 6px; }"
  ].join("\n");

  loadWording(function () {
    if (document.body) mount();
    else document.addEventListener("DOMContentLoaded", mount);
  });
})();
