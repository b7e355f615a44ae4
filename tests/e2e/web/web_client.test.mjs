// The web client (samples/web) end to end in headless Chromium (Debian's
// /usr/bin/chromium driven by playwright-core; never a browser download),
// against the shipped all-in-one profile with real Redis and FerretDB.
//
// One scenario, steps in order (node:test runs them sequentially):
//   two browser contexts register and log in; A sends, B sees it; presence
//   and typing; B joins a second room and A's messages there arrive (with an
//   unread count); markup in messages renders as text; B reloads and sees the
//   history (needs the ingest plugin); aurora-host is killed with SIGKILL and
//   restarted on the same port while a third (protocol) client, connected
//   to a second host process, sends messages: both pages reconnect and show
//   each of them exactly once.
//
// Artifacts (screenshots, server logs): $AURORA_BUILD_DIR/tests/e2e/web/artifacts.
// AURORA_UPDATE_DOC_IMAGES=1 also copies the screenshots into docs/images/.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { crc32, deflateSync } from "node:zlib";

import { freePort, startFerretDb, startHost, startRedis, waitUntil } from "./servers.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const BUILD = resolve(process.env.AURORA_BUILD_DIR || join(ROOT, "build"));
const NODE_DIR = process.env.AURORA_NODE_DIR || join(ROOT, ".cache/node");
const FERRETDB = process.env.AURORA_FERRETDB || join(ROOT, ".cache/bin/ferretdb");
const CHROMIUM = process.env.AURORA_CHROMIUM || "/usr/bin/chromium";
const ARTIFACTS = join(BUILD, "tests/e2e/web/artifacts");
const CONFIG = join(ROOT, "samples/config/all-in-one.json");

const require = createRequire(join(NODE_DIR, "package.json"));
const { chromium } = require("playwright-core");
const WebSocket = require("ws");

const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run"];
const STEP_MS = 20000; // a single expectation
const XSS = ["<img src=x onerror=alert(1)>", "<script>alert(2)</script>"];

const run = randomBytes(3).toString("hex");
const ROOM2 = `design-${run}`;
const users = { a: `alice_${run}`, b: `bob_${run}`, c: `carol_${run}` };
const PASSWORD = "correct horse battery";

const s = {}; // servers, browser, pages, shared by the steps
const dialogs = [];

function hostEnv() {
  return {
    AURORA_REDIS_URL: s.redis.url,
    AURORA_MONGO_URL: s.mongo.url,
    AURORA_JWT_SECRET: s.secret,
    AURORA_PLUGIN_PATH: join(BUILD, "plugins"),
    AURORA_LOG_LEVEL: "info",
  };
}

// Until no CSS transition or animation is running (the drawers slide).
async function transitionsDone(page) {
  await page.waitForFunction(() => document.getAnimations().every((a) => a.playState !== "running"),
    null, { timeout: STEP_MS });
}

async function shot(page, name) {
  const file = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file });
  if (process.env.AURORA_UPDATE_DOC_IMAGES === "1") {
    mkdirSync(join(ROOT, "docs/images"), { recursive: true });
    copyFileSync(file, join(ROOT, "docs/images", `web-client-${name}.png`));
  }
}

const conn = (page) => page.locator("#conn");
async function waitConnected(page, ms = STEP_MS) {
  await page.waitForSelector('#conn[data-state="connected"]', { timeout: ms });
}

// Texts of the stored (non-pending) messages of the open room, in order.
async function texts(page) {
  return page.locator("#messages article.msg:not(.pending) .text").allTextContents();
}

async function waitText(page, text, ms = STEP_MS) {
  await page.locator("#messages article.msg:not(.pending) .text", { hasText: text }).first().waitFor({ timeout: ms });
}

async function openRoom(page, room) {
  const item = page.locator(`#rooms li[data-room="${room}"] .room-open`);
  if (await page.locator("#menu").isVisible()) await page.click("#menu");
  await item.click();
  await page.waitForSelector(`#room-title:text-is("# ${room}")`, { timeout: STEP_MS });
}

async function say(page, text) {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
  // Optimistic: shown at once, then confirmed by the ack.
  await page.locator("#messages article.msg.own:not(.pending) .text", { hasText: text }).first().waitFor({ timeout: STEP_MS });
}

// A real PNG: a colour gradient, width x height.
function gradientPng(width, height) {
  const chunk = (kind, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([Buffer.from(kind), data])));
    return Buffer.concat([len, Buffer.from(kind), data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const rows = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + 3 * width);
    for (let x = 0; x < width; x++) row.set([Math.round((255 * x) / width), 90, Math.round((255 * y) / height)], 1 + 3 * x);
    rows.push(row);
  }
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(Buffer.concat(rows))), chunk("IEND", Buffer.alloc(0))]);
}

async function registerAndLogin(page, username) {
  await page.goto(s.url);
  await page.waitForSelector("#auth:not([hidden])");
  await page.fill("#username", username);
  await page.fill("#password", PASSWORD);
  await page.click("#register");
  await waitConnected(page);
  assert.equal(await page.locator("#me-name").textContent(), username);
}

// A protocol client (the `ws` package) with the seed's subprotocol token.
class ProtocolClient {
  constructor(port, token) {
    this.frames = [];
    this.waiters = [];
    this.ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, [`Bearer.${token}`]);
    this.ws.on("message", (d) => {
      const f = JSON.parse(d.toString());
      this.frames.push(f);
      for (const w of [...this.waiters]) if (w.pred(f)) { this.waiters.splice(this.waiters.indexOf(w), 1); w.resolve(f); }
    });
    this.opened = new Promise((res, rej) => { this.ws.once("open", res); this.ws.once("error", rej); });
  }
  next(pred, ms = STEP_MS) {
    const seen = this.frames.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve };
      this.waiters.push(w);
      setTimeout(() => reject(new Error("protocol client: no matching frame in time")), ms).unref();
    });
  }
  async request(frame, answer) {
    this.ws.send(JSON.stringify(frame));
    return this.next((f) => f.ref === frame.ref && answer(f));
  }
  close() { this.ws.close(); }
}

async function token(port, username) {
  const body = JSON.stringify({ username, password: PASSWORD });
  const headers = { "Content-Type": "application/json" };
  const reg = await fetch(`http://127.0.0.1:${port}/api/auth/register`, { method: "POST", headers, body });
  assert.equal(reg.status, 200, `register ${username}: ${reg.status}`);
  const res = await fetch(`http://127.0.0.1:${port}/api/auth/login`, { method: "POST", headers, body });
  assert.equal(res.status, 200);
  return (await res.json()).token;
}

describe("web client in Chromium", { timeout: 300000 }, () => {
  before(async () => {
    for (const [what, path] of [["aurora-host", join(BUILD, "host/aurora-host")], ["chromium", CHROMIUM], ["ferretdb", FERRETDB],
      ["auth plugin", join(BUILD, "plugins/auth.so")], ["chat plugin", join(BUILD, "plugins/chat.so")],
      ["playwright-core (scripts/bootstrap.sh)", join(NODE_DIR, "node_modules/playwright-core")]]) {
      assert.ok(existsSync(path), `${what} not found at ${path}`);
    }
    rmSync(ARTIFACTS, { recursive: true, force: true });
    mkdirSync(ARTIFACTS, { recursive: true });
    s.secret = randomBytes(32).toString("hex");
    s.redis = await startRedis(ARTIFACTS);
    s.mongo = await startFerretDb(ARTIFACTS, FERRETDB);
    s.port = await freePort();
    s.portB = await freePort();
    s.url = `http://127.0.0.1:${s.port}/`;
    const opts = (port) => ({ exe: join(BUILD, "host/aurora-host"), config: CONFIG, port, env: hostEnv(), logDir: ARTIFACTS });
    s.host = await startHost("host-a", opts(s.port));
    s.hostB = await startHost("host-b", opts(s.portB)); // the third client's replica
    s.browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    s.ctxA = await s.browser.newContext({ viewport: { width: 1280, height: 800 } });
    s.ctxB = await s.browser.newContext({ viewport: { width: 1280, height: 800 } });
    s.a = await s.ctxA.newPage();
    s.b = await s.ctxB.newPage();
    // The handshake answers page A's sockets get, as Chromium saw them (DevTools protocol).
    s.handshakes = [];
    const cdp = await s.ctxA.newCDPSession(s.a);
    await cdp.send("Network.enable");
    cdp.on("Network.webSocketHandshakeResponseReceived", (e) => s.handshakes.push(e.response));
    for (const [name, page] of [["a", s.a], ["b", s.b]]) {
      page.on("dialog", (d) => { dialogs.push(`${name}: ${d.message()}`); d.dismiss().catch(() => {}); });
      page.on("pageerror", (e) => console.error(`page ${name} error: ${e.message}`));
    }
  });

  after(async () => {
    await s.browser?.close();
    for (const c of [s.hostB, s.host, s.mongo?.child, s.redis?.child]) await c?.stop();
  });

  test("both users register and log in; the login screen shows server errors", async () => {
    await registerAndLogin(s.a, users.a);
    // A wrong password on B's page first: the server's answer is shown.
    await s.b.goto(s.url);
    await s.b.waitForSelector("#auth:not([hidden])");
    await shot(s.b, "login");
    await s.b.fill("#username", users.a);
    await s.b.fill("#password", "not the password");
    await s.b.click("#login");
    await s.b.waitForSelector("#auth-message.error", { timeout: STEP_MS });
    assert.match(await s.b.locator("#auth-message").textContent(), /wrong username or password/i);
    await s.b.fill("#username", users.a);
    await s.b.fill("#password", PASSWORD);
    await s.b.click("#register");
    await s.b.waitForSelector("#auth-message.error", { timeout: STEP_MS });
    assert.match(await s.b.locator("#auth-message").textContent(), /user exists/i);
    await registerAndLogin(s.b, users.b);
    assert.equal(await s.a.locator("#room-title").textContent(), "# general");
  });

  test("Chromium negotiates permessage-deflate: the web client and the seed's plain socket", async () => {
    const header = (h) => Object.entries(h.headers).find(([k]) => k.toLowerCase() === "sec-websocket-extensions")?.[1];
    await waitUntil("the web client's handshake", () => s.handshakes.some((h) => h.status === 101), { ms: STEP_MS });
    const answer = header(s.handshakes.find((h) => h.status === 101));
    assert.match(answer || "", /^permessage-deflate; server_no_context_takeover/, "the web client's socket");
    // The seed's client: new WebSocket(url, "Bearer." + token), nothing else.
    const plain = await s.a.evaluate(() => new Promise((done, fail) => {
      const ws = new WebSocket(`ws://${location.host}/ws`, "Bearer." + localStorage.getItem("token"));
      ws.onopen = () => { done({ extensions: ws.extensions, protocol: ws.protocol }); ws.close(); };
      ws.onerror = () => fail(new Error("the plain socket failed"));
    }));
    assert.match(plain.extensions, /^permessage-deflate; server_no_context_takeover/, "the plain socket");
    assert.match(plain.protocol, /^Bearer\./);
  });

  test("A sends, B sees it; own messages are marked", async () => {
    await say(s.a, "Hi Bob! The new web client is up.");
    await waitText(s.b, "Hi Bob! The new web client is up.");
    const onB = s.b.locator("#messages article.msg", { hasText: "Hi Bob!" });
    assert.ok(!(await onB.getAttribute("class")).split(" ").includes("own"), "not marked own on B");
    assert.equal(await onB.locator(".author").textContent(), users.a);
    assert.match(await onB.locator("time").getAttribute("datetime"), /^\d{4}-\d\d-\d\dT/);
    await say(s.b, "Looks great. Reconnects and history too?");
    await waitText(s.a, "Reconnects and history too?");
  });

  test("presence and typing", async () => {
    await s.a.locator("#member-list .member-name", { hasText: users.b }).waitFor({ timeout: STEP_MS });
    await s.b.locator("#member-list .member-name", { hasText: users.a }).waitFor({ timeout: STEP_MS });
    await s.b.type("#text", "typing something", { delay: 200 }); // > the client's 2.5 s typing throttle
    await s.a.locator("#typing", { hasText: `${users.b} is typing` }).waitFor({ timeout: STEP_MS });
    await s.b.fill("#text", "");
  });

  test("B joins a second room and A's messages there arrive, with unread counts", async () => {
    await s.b.fill("#join-name", `#${ROOM2}`);
    await s.b.press("#join-name", "Enter");
    await s.b.waitForSelector(`#room-title:text-is("# ${ROOM2}")`);
    await s.a.fill("#join-name", ROOM2);
    await s.a.press("#join-name", "Enter");
    await s.a.locator("#member-list .member-name", { hasText: users.b }).waitFor({ timeout: STEP_MS });
    await say(s.a, "Design review in this room at 3pm.");
    await waitText(s.b, "Design review in this room at 3pm.");
    // B looks at general; a message in the other room counts as unread.
    await openRoom(s.b, "general");
    await say(s.a, "Agenda: reconnect, resume, history.");
    const badge = s.b.locator(`#rooms li[data-room="${ROOM2}"] .unread`);
    await badge.waitFor({ timeout: STEP_MS });
    assert.equal(await badge.textContent(), "1");
    await openRoom(s.b, ROOM2);
    await waitText(s.b, "Agenda: reconnect, resume, history.");
    assert.equal(await badge.count(), 0);
    assert.deepEqual(await texts(s.b), ["Design review in this room at 3pm.", "Agenda: reconnect, resume, history."]);
  });

  test("markup in messages renders as text", async () => {
    await openRoom(s.a, "general");
    await openRoom(s.b, "general");
    const imgs = await s.b.locator("img").count();
    const scripts = await s.b.locator("script").count();
    for (const x of XSS) await say(s.a, x);
    for (const x of XSS) await waitText(s.b, x);
    // A fence: a plain message sent after the markup, rendered after it. The
    // element counts below cannot depend on timing: a <img> or <script> made
    // from the text would be in the DOM before the fence.
    await say(s.a, "after the markup");
    await waitText(s.b, "after the markup");
    for (const p of [s.a, s.b]) {
      const shown = await texts(p);
      for (const x of XSS) assert.ok(shown.includes(x), `"${x}" shown verbatim`);
      assert.equal(await p.locator("#messages img").count(), 0);
      assert.equal(await p.locator("#messages script").count(), 0);
    }
    assert.equal(await s.b.locator("img").count(), imgs);
    assert.equal(await s.b.locator("script").count(), scripts);
    assert.deepEqual(dialogs, [], "no dialog opened");
  });

  test("B reloads the page and sees the history (needs the ingest plugin)", async () => {
    await s.b.reload();
    await waitConnected(s.b);
    assert.equal(await s.b.locator("#room-title").textContent(), "# general", "the open room survives a reload");
    assert.equal(await s.b.locator(`#rooms li[data-room="${ROOM2}"]`).count(), 1, "joined rooms survive a reload");
    const note = s.b.locator(".history-note");
    try {
      await waitText(s.b, "Hi Bob! The new web client is up.", 10000);
    } catch {
      const why = (await note.isVisible()) ? await note.textContent() : "(no note)";
      assert.fail(`no history after reload: ${why} — history comes from the ingest plugin (issue 7); ` +
        `samples/config/all-in-one.json lists: ${JSON.parse((await import("node:fs")).readFileSync(CONFIG, "utf8")).plugins.map((p) => p.name).join(", ")}`);
    }
    await openRoom(s.b, ROOM2);
    await waitText(s.b, "Agenda: reconnect, resume, history.");
    await openRoom(s.b, "general");
  });

  test("after kill -9 and a restart both pages reconnect; messages sent meanwhile appear once", async () => {
    await openRoom(s.a, "general");
    await openRoom(s.b, "general");
    await shot(s.a, "chat");

    const carol = new ProtocolClient(s.portB, await token(s.portB, users.c));
    await carol.opened;
    await carol.request({ type: "join", room: ROOM2, ref: "j1" }, (f) => f.type === "joined");

    await s.host.kill9();
    for (const p of [s.a, s.b]) await p.waitForSelector('#conn[data-state="waiting"]', { timeout: STEP_MS });
    await s.a.waitForSelector("#banner:not([hidden])");
    await shot(s.a, "reconnecting");

    const meanwhile = ["Carol here: sent while your host was down (1)", "Carol here: sent while your host was down (2)",
      "Carol here: sent while your host was down (3)"];
    const inRoom2 = "Carol in the design room while the host was down";
    let n = 0;
    const post = async (room, text) => {
      n += 1;
      const ack = await carol.request({ type: "message", room, text, ref: `c${n}` }, (f) => f.type === "ack" || f.type === "error" || f.type === "rate_limited");
      assert.equal(ack.type, "ack", `carol's "${text}": ${JSON.stringify(ack)}`);
      await sleep(400); // under the per-room limit (3 per second)
    };
    for (const t of meanwhile) await post("general", t);
    await post(ROOM2, inRoom2);

    s.host = await startHost("host-a-restarted", { exe: join(BUILD, "host/aurora-host"), config: CONFIG, port: s.port, env: hostEnv(), logDir: ARTIFACTS });
    for (const p of [s.a, s.b]) await waitConnected(p, 30000);
    const after = "Carol again, after the restart";
    await post("general", after);

    for (const [name, p] of [["A", s.a], ["B", s.b]]) {
      for (const t of [...meanwhile, after]) await waitText(p, t);
      const shown = await texts(p);
      for (const t of [...meanwhile, after]) assert.equal(shown.filter((x) => x === t).length, 1, `${name} shows "${t}" once`);
      const ids = await p.locator("#messages article.msg[data-id]").evaluateAll((els) => els.map((e) => e.dataset.id));
      assert.equal(new Set(ids).size, ids.length, `${name}: no message id twice`);
      assert.deepEqual(shown.slice(-4), [...meanwhile, after], `${name}: in order`);
      await openRoom(p, ROOM2);
      await waitText(p, inRoom2);
      assert.equal((await texts(p)).filter((x) => x === inRoom2).length, 1, `${name} shows the room message once`);
      await openRoom(p, "general");
    }
    carol.close();
    await say(s.b, "Back online, nothing lost.");
    await waitText(s.a, "Back online, nothing lost.");
    await shot(s.a, "chat-after-restart");
  });

  test("rate-limited sends go again by themselves, one after another, with no button to press", async () => {
    await openRoom(s.a, ROOM2);
    for (let i = 1; i <= 8; i++) {
      await s.a.fill("#text", `burst ${i}`);
      await s.a.press("#text", "Enter");
    }
    const failed = s.a.locator("#messages article.msg.failed .error-text", { hasText: /Rate limited: sending again in \d+ s/ });
    await failed.first().waitFor({ timeout: STEP_MS });
    await s.a.locator("#banner", { hasText: /rate limited, retry in [\d.]+ s/ }).waitFor({ timeout: STEP_MS });
    await shot(s.a, "rate-limited");
    assert.equal(await s.a.locator("#messages article.msg.failed button", { hasText: "Retry" }).count(), 0,
      "a rate-limited message is not left for the user to retry");
    // Nobody clicks: each is confirmed, and shown once, in order, on B.
    await waitUntil("every burst message confirmed on A",
      async () => (await s.a.locator("#messages article.msg.pending").count()) === 0, { ms: 30000 });
    await openRoom(s.b, ROOM2);
    for (let i = 1; i <= 8; i++) await waitText(s.b, `burst ${i}`);
    const bursts = (await texts(s.b)).filter((t) => t.startsWith("burst "));
    assert.deepEqual(bursts, [1, 2, 3, 4, 5, 6, 7, 8].map((i) => `burst ${i}`));
    await openRoom(s.a, "general");
    await openRoom(s.b, "general");
  });

  test("a message longer than the limit is counted and refused, not cut and sent", async () => {
    const long = "x".repeat(4001);
    await s.a.fill("#text", long);
    await s.a.locator("#text-warning.over", { hasText: "4001 / 4000: too long to send" }).waitFor({ timeout: STEP_MS });
    assert.ok(await s.a.locator("#composer button[type=submit]").isDisabled(), "Send is off");
    await s.a.press("#text", "Enter");
    assert.equal(await s.a.inputValue("#text"), long, "the text stays, to be shortened");
    assert.equal(await s.a.locator("#messages article.msg.pending").count(), 0, "nothing sent");
    await shot(s.a, "too-long");
    await s.a.fill("#text", "");
    await s.a.locator("#text-warning").waitFor({ state: "hidden", timeout: STEP_MS });
  });

  test("edit, delete and react: live on both pages, and in the history after a reload", async () => {
    await say(s.a, "Typo in thsi message.");
    const onA = s.a.locator("#messages article.msg:not(.pending)", { hasText: "Typo in thsi message." });
    await onA.hover();
    await onA.locator(".act-edit").click();
    await s.a.fill("#messages .edit-input", "Typo in this message, fixed.");
    await s.a.press("#messages .edit-input", "Enter");
    const fixedOnB = s.b.locator("#messages article.msg", { hasText: "Typo in this message, fixed." });
    await fixedOnB.locator(".edited").waitFor({ timeout: STEP_MS });
    // B may react, not edit or delete A's message (general has no moderators).
    await fixedOnB.hover();
    assert.equal(await fixedOnB.locator(".act-edit, .act-delete").count(), 0);
    await fixedOnB.locator(".act-react").click();
    await shot(s.b, "react-palette");
    await fixedOnB.locator(".palette .pick", { hasText: "\u{1F44D}" }).click();
    const fixedOnA = s.a.locator("#messages article.msg", { hasText: "Typo in this message, fixed." });
    await fixedOnA.locator(".reaction", { hasText: "\u{1F44D}1" }).waitFor({ timeout: STEP_MS });
    await fixedOnA.locator(".reaction", { hasText: "\u{1F44D}" }).click(); // A adds its own
    await fixedOnB.locator(".reaction.mine", { hasText: "\u{1F44D}2" }).waitFor({ timeout: STEP_MS }); // B's too
    await fixedOnA.locator(".reaction.mine", { hasText: "\u{1F44D}2" }).waitFor({ timeout: STEP_MS });
    await say(s.a, "Sent to the wrong room, sorry.");
    const wrong = s.a.locator("#messages article.msg", { hasText: "Sent to the wrong room, sorry." });
    await wrong.hover();
    await wrong.locator(".act-delete").click();
    for (const page of [s.a, s.b]) {
      await page.locator("#messages article.msg.deleted .tombstone", { hasText: "This message was deleted." })
        .waitFor({ timeout: STEP_MS });
      assert.equal(await page.locator("#messages .text", { hasText: "Sent to the wrong room" }).count(), 0);
    }
    await s.a.mouse.move(0, 0);
    await s.a.locator("#banner").waitFor({ state: "hidden", timeout: STEP_MS }); // a notice fades in 4 s
    await shot(s.a, "message-changes");
    // B reloads: history (from MongoDB through ingest) has the latest state.
    await s.b.reload();
    await waitConnected(s.b);
    const again = s.b.locator("#messages article.msg", { hasText: "Typo in this message, fixed." });
    await again.locator(".edited").waitFor({ timeout: STEP_MS });
    await again.locator(".reaction.mine", { hasText: "\u{1F44D}2" }).waitFor({ timeout: STEP_MS });
    await s.b.locator("#messages article.msg.deleted .tombstone").first().waitFor({ timeout: STEP_MS });
    assert.equal(await s.b.locator("#messages .text", { hasText: "Typo in thsi" }).count(), 0);
  });

  test("search finds the room's messages by words, in their latest state", async () => {
    await openRoom(s.a, "general");
    const title = s.a.locator("#search-title");
    // Ingest stores (and folds the edit) a moment after the message is live.
    await waitUntil("the edited message found", async () => {
      await s.a.fill("#search-q", "FIXED typo");
      await s.a.press("#search-q", "Enter");
      await title.waitFor({ timeout: STEP_MS });
      return /^1 message with/.test(await title.textContent());
    }, { ms: STEP_MS });
    assert.deepEqual(await s.a.locator("#search-list .text").allTextContents(), ["Typo in this message, fixed."]);
    await shot(s.a, "search");
    for (const [q, want] of [["thsi", /^0 messages with/], ["wrong room", /^0 messages with/], [".*", /^Search: 'q' has no word/]]) {
      await s.a.fill("#search-q", q);
      await s.a.press("#search-q", "Enter");
      await s.a.locator("#search-title", { hasText: want }).waitFor({ timeout: STEP_MS });
    }
    await s.a.click("#search-close");
    await s.a.locator("#search-results").waitFor({ state: "hidden", timeout: STEP_MS });
  });

  test("attach: an image is shown to both, a file is a link, a lying file is refused", async () => {
    await openRoom(s.a, "general");
    await openRoom(s.b, "general");
    await s.a.fill("#text", "The sunset from the office");
    await s.a.setInputFiles("#attach-file", { name: "sunset.png", mimeType: "image/png", buffer: gradientPng(240, 140) });
    for (const page of [s.a, s.b]) {
      const msg = page.locator("#messages article.msg", { hasText: "The sunset from the office" });
      const img = msg.locator("img.attachment-image[alt='sunset.png']");
      await img.waitFor({ timeout: STEP_MS });
      await waitUntil("the image decoded", async () => img.evaluate((i) => i.complete && i.naturalWidth === 240), { ms: STEP_MS });
      assert.match(await img.getAttribute("src"), /^blob:/);
    }
    assert.equal(await s.a.inputValue("#text"), "", "the text went with the image");
    await s.a.setInputFiles("#attach-file", { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("Agenda: ship it.\n") });
    await s.b.locator("#messages .attachment-file", { hasText: "notes.txt" }).waitFor({ timeout: STEP_MS });
    await s.b.locator("#banner").waitFor({ state: "hidden", timeout: STEP_MS });
    await shot(s.b, "attachments");
    // A page that says it is a PNG: the server looks at the bytes.
    await s.a.setInputFiles("#attach-file", { name: "cat.png", mimeType: "image/png",
      buffer: Buffer.from("<html><script>alert(1)</script></html>") });
    await s.a.locator("#banner", { hasText: "HTML or markup" }).waitFor({ timeout: STEP_MS });
    assert.equal(await s.b.locator("#messages img[alt='cat.png'], #messages .attachment-file", { hasText: "cat.png" }).count(), 0);
  });

  test("read by: the sender sees who has read its newest message", async () => {
    await openRoom(s.a, "general");
    await openRoom(s.b, "general");
    await say(s.a, "Who has read this?");
    await waitText(s.b, "Who has read this?"); // B has the room open: its client moves B's read marker
    const note = s.a.locator("#messages article.msg.own .read-by", { hasText: "Read by 1" });
    await note.waitFor({ timeout: STEP_MS });
    assert.equal(await note.getAttribute("title"), users.b);
    assert.equal(await s.a.locator("#messages .read-by").count(), 1, "under the newest own message only");
    await shot(s.a, "read-by");
  });

  test("rooms: a private room with an invitation, a direct message, leaving (the rooms plugin)", async () => {
    const room = `plans-${run}`;
    await openRoom(s.a, "general");
    await s.a.waitForSelector("#create-form:not([hidden])", { timeout: STEP_MS });
    assert.ok(await s.a.locator("#create-private").isChecked(), "private by default");
    await s.a.fill("#create-name", room);
    await s.a.press("#create-name", "Enter");
    await s.a.waitForSelector(`#room-title:has(.lock):text-is("${room}")`, { timeout: STEP_MS });
    await s.a.fill("#invite-name", users.b);
    await s.a.press("#invite-name", "Enter");
    // B is told (member_added), and the room shows in its list, locked.
    const item = s.b.locator(`#rooms li[data-room="${room}"][data-kind="private"]`);
    await item.waitFor({ timeout: STEP_MS });
    await item.locator(".room-open").click();
    await s.b.waitForSelector(`#room-title:has(.lock):text-is("${room}")`, { timeout: STEP_MS });
    assert.ok(await s.b.locator("#invite-form").isHidden(), "a member does not invite");
    await s.a.locator("#member-list .member-name", { hasText: users.b }).waitFor({ timeout: STEP_MS });
    await say(s.a, "Private plans.");
    await waitText(s.b, "Private plans.");
    await shot(s.a, "private-room");
    // B opens a direct room with A: A's list shows it under B's name.
    await s.b.fill("#dm-name", users.a);
    await s.b.press("#dm-name", "Enter");
    await s.b.waitForSelector(`#room-title:text-is("@ ${users.a}")`, { timeout: STEP_MS });
    const dm = s.a.locator('#rooms li[data-kind="direct"]');
    await dm.waitFor({ timeout: STEP_MS });
    assert.equal(await dm.locator(".room-name").textContent(), users.b);
    await s.a.locator(`#rooms li[data-kind="direct"] .room-open`).click();
    await s.a.waitForSelector(`#room-title:text-is("@ ${users.b}")`, { timeout: STEP_MS });
    await s.b.locator("#member-list .member-name", { hasText: users.a }).waitFor({ timeout: STEP_MS });
    await say(s.b, "Just between us.");
    await waitText(s.a, "Just between us.");
    // B leaves the private room: gone from its list, and no longer a member.
    await s.b.locator(`#rooms li[data-room="${room}"] .room-leave`).click();
    await s.b.locator(`#rooms li[data-room="${room}"]`).waitFor({ state: "detached", timeout: STEP_MS });
    const mine = async (page) => page.evaluate(async () => {
      const res = await fetch("/api/rooms", { headers: { Authorization: "Bearer " + localStorage.getItem("token") } });
      return (await res.json()).rooms.map((r) => `${r.roomType}:${r.role}`);
    });
    await waitUntil("B's membership gone", async () => !(await mine(s.b)).includes("private:member"), { ms: STEP_MS });
    assert.deepEqual((await mine(s.a)).sort(), ["direct:member", "private:owner"]);
  });

  test("unread counts come back after logging out and in (kept with the read markers)", async () => {
    await openRoom(s.b, "general"); // the room on screen is read: another one gets the messages
    await s.b.click("#logout");
    await s.b.waitForSelector("#auth:not([hidden])");
    await s.a.locator('#rooms li[data-kind="direct"] .room-open').click();
    await say(s.a, "Are you still there?");
    await say(s.a, "Ping.");
    await s.b.fill("#username", users.b);
    await s.b.fill("#password", PASSWORD);
    await s.b.click("#login");
    await waitConnected(s.b);
    const badge = s.b.locator('#rooms li[data-kind="direct"] .unread');
    await badge.waitFor({ timeout: STEP_MS });
    assert.equal(await badge.textContent(), "2");
    await shot(s.b, "unread-after-login");
    await s.b.locator('#rooms li[data-kind="direct"] .room-open').click();
    await waitText(s.b, "Ping.");
    assert.equal(await badge.count(), 0);
    await openRoom(s.a, "general");
    await openRoom(s.b, "general");
  });

  test("an expired or refused token goes back to login", async () => {
    const ctx = await s.browser.newContext();
    const page = await ctx.newPage();
    const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const jwt = (exp) => `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ userId: "0123456789abcdef01234567", username: "mallory", exp })}.c2lnbmF0dXJl`;
    await page.goto(s.url);
    await page.evaluate((t) => localStorage.setItem("token", t), jwt(Math.floor(Date.now() / 1000) - 60));
    await page.reload();
    await page.locator("#auth-message.error", { hasText: /expired/i }).waitFor({ timeout: STEP_MS });
    assert.equal(await page.evaluate(() => localStorage.getItem("token")), null);
    // Not expired but not signed by this server: the handshake is refused (401).
    await page.evaluate((t) => localStorage.setItem("token", t), jwt(Math.floor(Date.now() / 1000) + 3600));
    await page.reload();
    await page.locator("#auth-message.error", { hasText: /no longer valid/i }).waitFor({ timeout: 30000 });
    await ctx.close();
  });

  test("phone width", async () => {
    await s.b.setViewportSize({ width: 390, height: 780 });
    await openRoom(s.b, "general");
    await transitionsDone(s.b);
    await shot(s.b, "phone");
    assert.ok(await s.b.locator("#menu").isVisible(), "rooms behind the menu button");
    await s.b.click("#menu");
    await transitionsDone(s.b);
    await shot(s.b, "phone-rooms");
    assert.ok(await s.b.locator(`#rooms li[data-room="${ROOM2}"]`).isVisible());
  });
});
