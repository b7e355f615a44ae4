// Echo console for the all-in-one profile until the chat client lands.
// User data is rendered with textContent only.
"use strict";
const state = document.getElementById("state");
const log = document.getElementById("log");
const scheme = location.protocol === "https:" ? "wss:" : "ws:";
const ws = new WebSocket(`${scheme}//${location.host}/ws`);
ws.onopen = () => { state.textContent = "connected"; };
ws.onclose = (e) => { state.textContent = `closed (${e.code})`; };
ws.onmessage = (e) => {
  const li = document.createElement("li");
  li.textContent = e.data;
  log.prepend(li);
};
document.getElementById("send").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = document.getElementById("text");
  if (ws.readyState === WebSocket.OPEN && input.value) {
    ws.send(JSON.stringify({ type: "echo", text: input.value }));
    input.value = "";
  }
});
