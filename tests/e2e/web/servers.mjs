// Real servers for the browser test, each a child process on a free loopback
// port (the Node twin of tests/support/real_servers.py): redis-server,
// FerretDB and aurora-host with the shipped all-in-one profile.
//
// Children run under `setpriv --pdeathsig KILL`, so they die with this
// process even when it is killed with SIGKILL; stop() sends SIGTERM, then
// SIGKILL after a deadline.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const children = new Set();
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

export class Child {
  constructor(name, argv, { env = {}, logDir }) {
    this.name = name;
    this.logPath = join(logDir, `${name}.log`);
    mkdirSync(logDir, { recursive: true });
    const out = openSync(this.logPath, "a");
    const wrap = existsSync("/usr/bin/setpriv") ? ["/usr/bin/setpriv", "--pdeathsig", "KILL", ...argv] : argv;
    this.proc = spawn(wrap[0], wrap.slice(1), { env: { ...process.env, ...env }, stdio: ["ignore", out, out] });
    this.exited = new Promise((resolve) => this.proc.once("exit", (code, signal) => resolve({ code, signal })));
    this.exitInfo = null;
    this.exited.then((info) => {
      this.exitInfo = info;
      children.delete(this.proc);
    });
    children.add(this.proc);
  }

  get running() {
    return this.exitInfo === null;
  }

  logTail(lines = 30) {
    try {
      return readFileSync(this.logPath, "utf8").split("\n").slice(-lines).map((l) => `    | ${l}`).join("\n");
    } catch (e) {
      return `    | (log unreadable: ${e.message})`;
    }
  }

  kill9() {
    this.proc.kill("SIGKILL");
    return this.exited;
  }

  async stop(graceMs = 5000) {
    if (!this.running) return;
    this.proc.kill("SIGTERM");
    const done = await Promise.race([this.exited, sleep(graceMs).then(() => null)]);
    if (!done) {
      this.proc.kill("SIGKILL");
      await this.exited;
    }
  }
}

// Polls `probe` (async, true when ready) every 50 ms for up to `ms`.
export async function waitUntil(what, probe, { ms = 30000, child = null } = {}) {
  const deadline = Date.now() + ms;
  let last = "no attempt";
  while (Date.now() < deadline) {
    if (child && !child.running) throw new Error(`${child.name} exited (${JSON.stringify(child.exitInfo)}) before ${what}; log:\n${child.logTail()}`);
    try {
      if (await probe()) return;
      last = "not yet";
    } catch (e) {
      last = e.message;
    }
    await sleep(50); // polling readiness, bounded by `ms`
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what} (${last})${child ? `; log:\n${child.logTail()}` : ""}`);
}

function redisPing(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1");
    let data = "";
    s.setTimeout(1000, () => s.destroy(new Error("timeout")));
    s.on("error", reject);
    s.on("connect", () => s.write("PING\r\n"));
    s.on("data", (d) => {
      data += d;
      if (data.includes("\r\n")) {
        s.end();
        resolve(data.startsWith("+PONG"));
      }
    });
  });
}

function tcpOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.on("connect", () => {
      s.end();
      resolve(true);
    });
    s.on("error", () => resolve(false));
  });
}

export async function startRedis(dir) {
  const port = await freePort();
  mkdirSync(join(dir, "redis"), { recursive: true });
  const c = new Child("redis", ["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--dir", join(dir, "redis"),
    "--save", "", "--appendonly", "no", "--daemonize", "no"], { logDir: dir });
  await waitUntil("redis PING", () => redisPing(port), { child: c });
  return { child: c, port, url: `redis://127.0.0.1:${port}/0` };
}

export async function startFerretDb(dir, exe) {
  const port = await freePort();
  const data = join(dir, "ferretdb");
  mkdirSync(data, { recursive: true });
  const c = new Child("ferretdb", [exe, "--handler=sqlite", `--sqlite-url=file:${data}/`, `--state-dir=${data}`,
    `--listen-addr=127.0.0.1:${port}`, "--debug-addr=-", "--telemetry=disable", "--log-level=warn"], { logDir: dir });
  await waitUntil("ferretdb to listen", () => tcpOpen(port), { child: c });
  return { child: c, port, url: `mongodb://127.0.0.1:${port}/aurorachat` };
}

// aurora-host with `config`, on `port`; resolves once GET /ready says 200.
export async function startHost(name, { exe, config, port, env, logDir }) {
  const c = new Child(name, [exe, "--config", config], { env: { ...env, AURORA_PORT: String(port), AURORA_HOST: "127.0.0.1" }, logDir });
  await waitUntil(`${name} /ready`, async () => (await fetch(`http://127.0.0.1:${port}/ready`)).status === 200, { child: c });
  return c;
}
