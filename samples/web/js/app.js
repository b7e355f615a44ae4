// Aurora web client: the entry point. Shows login or chat, wires the
// session, the connection, the chat state and the view together.
// docs/web-client.md describes it.

import { clearToken, loadSession, login, register, saveToken, sessionFromToken, uploadFile } from "./session.js";
import { Connection, defaultUrl } from "./connection.js";
import { Chat } from "./chat.js";
import { View } from "./view.js";

const $ = (id) => document.getElementById(id);

let chat = null;
let conn = null;
let expiryTimer = null;

const view = new View({
  onSwitch: (name) => {
    chat?.switchTo(name);
    closeDrawer();
    $("text").focus();
  },
  onLeave: (name) => chat?.leave(name),
  onRetry: (ref) => chat?.retry(ref),
  onDiscard: (ref) => chat?.discard(ref),
  onOlder: () => {
    if (chat) chat.loadHistory(chat.currentRoom, true);
  },
  onEdit: (id, text) => chat?.edit(id, text) || "",
  onDelete: (id) => chat?.remove(id),
  onReact: (id, emoji) => chat?.react(id, emoji),
});

// ---- login screen ----

function showAuth(message = "", isError = false) {
  $("app").hidden = true;
  $("auth").hidden = false;
  authMessage(message, isError);
  $(($("username").value ? "password" : "username")).focus();
}

function authMessage(text, isError) {
  const m = $("auth-message");
  m.textContent = text;
  m.classList.toggle("error", Boolean(isError && text));
}

function credentials() {
  return { username: $("username").value.trim(), password: $("password").value };
}

function setBusy(busy) {
  $("login").disabled = busy;
  $("register").disabled = busy;
}

async function doLogin() {
  const { username, password } = credentials();
  setBusy(true);
  authMessage("Logging in…", false);
  try {
    const token = await login(username, password);
    saveToken(token);
    $("password").value = "";
    start(sessionFromToken(token));
  } catch (e) {
    authMessage(e.message, true);
  } finally {
    setBusy(false);
  }
}

async function doRegister() {
  const { username, password } = credentials();
  setBusy(true);
  authMessage("Creating the account…", false);
  try {
    await register(username, password);
    authMessage("Account created. Logging in…", false);
    setBusy(false);
    await doLogin();
  } catch (e) {
    authMessage(e.message, true);
  } finally {
    setBusy(false);
  }
}

$("auth-form").addEventListener("submit", (e) => {
  e.preventDefault();
  doLogin();
});
$("register").addEventListener("click", () => doRegister());

// ---- chat ----

function start(session) {
  if (!session) {
    showAuth("The server sent a token this page cannot read.", true);
    return;
  }
  stop();
  $("auth").hidden = true;
  $("app").hidden = false;
  chat = new Chat(session, view);
  view.bind(chat);
  conn = new Connection(defaultUrl(), session.token, {
    onOpen: () => chat.onOpen(),
    onFrame: (f) => chat.onFrame(f),
    onState: (s) => view.connection(s),
    onRejected: () => logout("Your session is no longer valid. Please log in again."),
  });
  chat.attach(conn);
  conn.start();
  // Tokens are stateless and die at `exp`: go back to login then.
  const left = session.exp - Date.now();
  if (Number.isFinite(left)) expiryTimer = setTimeout(() => logout("Your session expired. Please log in again."), Math.min(left, 2 ** 31 - 1));
  $("text").focus();
}

function stop() {
  clearTimeout(expiryTimer);
  conn?.stop();
  conn = null;
  chat = null;
}

function logout(message = "") {
  stop();
  clearToken();
  showAuth(message, Boolean(message));
}

$("logout").addEventListener("click", () => logout("You are logged out."));

$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = $("text");
  if (!chat || !input.value.trim()) return;
  const err = chat.send(input.value);
  if (err) return view.notice(err); // kept in the box, to be shortened
  input.value = "";
  view.textLength(0);
});
// Attach: the file is uploaded first (the server checks its type and size),
// then sent in a message with what is in the box as its text.
$("attach").addEventListener("click", () => $("attach-file").click());
$("attach-file").addEventListener("change", async () => {
  const input = $("attach-file");
  const file = input.files?.[0];
  input.value = "";
  if (!chat || !file) return;
  const mine = chat;
  $("attach").disabled = true;
  view.notice(`Uploading ${file.name}…`);
  try {
    const up = await uploadFile(mine.me.token, file);
    if (chat !== mine) return; // logged out meanwhile
    const err = mine.send($("text").value, [up]);
    if (err) return view.notice(err);
    $("text").value = "";
    view.textLength(0);
    view.notice(`Sent ${file.name}.`);
  } catch (e) {
    view.notice(e.message);
  } finally {
    $("attach").disabled = false;
  }
});
$("text").addEventListener("input", () => {
  // No maxlength: a longer paste is not cut silently, it is counted and refused.
  view.textLength([...$("text").value].length);
  if (chat && $("text").value) chat.typing();
});
$("search-form").addEventListener("submit", (e) => {
  e.preventDefault();
  if (!chat || !$("search-q").value.trim()) return;
  view.showSearch("Searching…", []);
  chat.search($("search-q").value);
});
$("search-close").addEventListener("click", () => {
  $("search-results").hidden = true;
  $("search-q").value = "";
});
document.addEventListener("visibilitychange", () => {
  if (chat && !document.hidden) chat.markRead(chat.currentRoom);
});

$("join-form").addEventListener("submit", (e) => {
  e.preventDefault();
  if (!chat) return;
  const input = $("join-name");
  const err = chat.joinByName(input.value);
  if (err) {
    view.notice(err);
    return;
  }
  input.value = "";
  closeDrawer();
});

// The rooms plugin's forms (shown only where the server has it).
function onForm(formId, inputId, act) {
  $(formId).addEventListener("submit", (e) => {
    e.preventDefault();
    if (!chat) return;
    const input = $(inputId);
    const err = act(input.value);
    if (err) {
      view.notice(err);
      return;
    }
    input.value = "";
    closeDrawer();
  });
}
onForm("create-form", "create-name", (v) => chat.createRoom(v, $("create-private").checked));
onForm("dm-form", "dm-name", (v) => chat.openDirect(v));
onForm("invite-form", "invite-name", (v) => chat.invite(v));

// Phone width: the rooms sidebar and the member list are drawers.
function closeDrawer() {
  $("sidebar").classList.remove("open");
  $("members").classList.remove("open");
  $("scrim").hidden = true;
}
$("menu").addEventListener("click", () => {
  $("sidebar").classList.add("open");
  $("scrim").hidden = false;
});
$("online").addEventListener("click", () => {
  $("members").classList.toggle("open");
  $("scrim").hidden = !$("members").classList.contains("open");
});
$("scrim").addEventListener("click", closeDrawer);

// ---- boot ----

const saved = loadSession();
if (saved && !saved.expired) start(saved);
else if (saved?.expired) showAuth("Your session expired. Please log in again.", true);
else showAuth();
