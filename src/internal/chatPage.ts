/**
 * The web chat page served at `/`: one self-contained HTML document (no
 * build step, no external requests) that talks to the JSON API and follows a
 * session's events over Server-Sent Events.
 */

const style = `
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,sans-serif;display:flex;height:100vh;color:#1d2330}
aside{width:300px;border-right:1px solid #d8dce6;display:flex;flex-direction:column;background:#f6f7fa}
aside h1{font-size:16px;margin:12px}aside form{padding:0 12px 12px;display:grid;gap:6px}
aside input,main textarea{font:inherit;padding:6px;border:1px solid #c4c9d6;border-radius:6px}
#sessions{list-style:none;margin:0;padding:0;overflow:auto;flex:1}
#sessions li{padding:8px 12px;cursor:pointer;border-top:1px solid #e3e6ee}
#sessions li.current{background:#dfe7fb}#sessions li small{display:block;color:#687089}
main{flex:1;display:flex;flex-direction:column;min-width:0}
#log{flex:1;overflow:auto;padding:16px;display:flex;flex-direction:column;gap:10px}
.msg{max-width:80ch;padding:8px 12px;border-radius:10px;white-space:pre-wrap;word-wrap:break-word}
.user{align-self:flex-end;background:#dfe7fb}.assistant{background:#eef0f4}
.tool{font:13px ui-monospace,monospace;color:#41485c;background:#fffbe6;border:1px solid #f0e2a1}
.tool.failed{background:#fdeceb;border-color:#efb3ad}.note{color:#687089;font-style:italic}
footer{display:flex;gap:8px;padding:12px;border-top:1px solid #d8dce6}footer textarea{flex:1;height:60px}
button{font:inherit;padding:6px 14px;border-radius:6px;border:1px solid #8792ad;background:#fff;cursor:pointer}
button:disabled{opacity:.5;cursor:default}#status{padding:4px 16px;color:#687089;font-size:13px;min-height:22px}
dialog{border:1px solid #8792ad;border-radius:10px;max-width:60ch}dialog .choices{display:flex;gap:8px;margin-top:12px}
`

const script = `
const $ = (s) => document.querySelector(s)
const fromHash = new URLSearchParams(location.hash.slice(1)).get("token")
if (fromHash) { sessionStorage.setItem("esb-token", fromHash); history.replaceState(null, "", location.pathname) }
let token = sessionStorage.getItem("esb-token") || ""
let current = null, source = null, streaming = null, busy = false, cancels = 0
const status = (text) => { $("#status").textContent = text }

async function api(method, path, body) {
  const response = await fetch("/api" + path, {
    method,
    headers: { authorization: "Bearer " + token, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined
  })
  if (response.status === 401) { askToken(); throw new Error("the access token was refused") }
  const text = await response.text()
  const data = text ? JSON.parse(text) : null
  if (!response.ok) throw new Error((data && (data.message || data.error)) || response.statusText)
  return data
}

function askToken() {
  const entered = prompt("Access token (printed by the server when it starts):")
  if (entered) { token = entered.trim(); sessionStorage.setItem("esb-token", token); refresh() }
}

function add(kind, text) {
  const div = document.createElement("div")
  div.className = "msg " + kind
  div.textContent = text
  $("#log").appendChild(div)
  $("#log").scrollTop = $("#log").scrollHeight
  return div
}

async function refresh() {
  const sessions = await api("GET", "/stored-sessions")
  const list = $("#sessions")
  list.replaceChildren()
  for (const s of sessions) {
    const li = document.createElement("li")
    li.dataset.sessionId = s.sessionId
    li.textContent = s.description || s.sessionId.slice(0, 8)
    const small = document.createElement("small")
    small.textContent = (s.live ? "live · " : "") + (s.workingDir || "") + (s.ended ? " · ended" : "")
    li.appendChild(small)
    if (current === s.sessionId) li.className = "current"
    li.onclick = () => open(s.sessionId, s.live)
    list.appendChild(li)
  }
}

function render(messages) {
  $("#log").replaceChildren()
  for (const m of messages) {
    const text = typeof m.content === "string" ? m.content : Array.isArray(m.content) ? m.content.map((b) => b.text || "").join("") : ""
    if (m.role === "user") add("user", text)
    else if (m.role === "assistant") {
      if (text) add("assistant", text)
      for (const call of m.tool_calls || []) add("tool", "⚙ " + (call.tool || (call.function && call.function.name)) + " " + JSON.stringify(call.arguments ?? {}))
    } else if (m.role === "tool") add("tool", "↳ " + (m.name || "tool") + ": " + text.slice(0, 400))
  }
}

async function open(id, live) {
  if (source) source.close()
  current = id
  status("opening…")
  if (!live) await api("POST", "/sessions/" + id + "/resume", {})
  const transcript = await api("GET", "/sessions/" + id + "/transcript")
  render(transcript.messages)
  follow(id)
  setBusy(false)
  status("")
  refresh()
}

function follow(id) {
  source = new EventSource("/api/sessions/" + id + "/events?token=" + encodeURIComponent(token))
  const on = (tag, f) => source.addEventListener(tag, (e) => f(JSON.parse(e.data)))
  on("content_block:start", () => { streaming = add("assistant", "") })
  on("content_block:delta", (e) => { if (!streaming) streaming = add("assistant", ""); streaming.textContent += e.delta })
  on("content_block:end", () => { streaming = null })
  on("tool:pre", (e) => add("tool", "⚙ " + e.tool + " " + JSON.stringify(e.arguments)))
  on("tool:post", (e) => add("tool", "↳ " + e.tool + ": " + JSON.stringify(e.result).slice(0, 400)))
  on("tool:error", (e) => add("tool failed", "↳ " + e.tool + ": " + e.error))
  on("display:message", (e) => add("note", e.message))
  on("approval:required", (e) => ask(e))
  on("approval:granted", () => closeDialog())
  on("approval:denied", () => closeDialog())
  on("cancel:requested", (e) => status("stopping (" + e.level + ")…"))
  on("orchestrator:complete", (e) => { streaming = null; setBusy(false); status(e.status === "completed" ? "" : "turn " + e.status) })
  on("session:end", () => { status("session ended"); source.close() })
  source.onerror = () => status("reconnecting…")
  source.onopen = () => { if ($("#status").textContent === "reconnecting…") status("") }
}

function ask(e) {
  const dialog = $("#approval")
  $("#approval-prompt").textContent = e.prompt
  const choices = $("#approval-choices")
  choices.replaceChildren()
  for (const option of e.options) {
    const b = document.createElement("button")
    b.textContent = option
    b.onclick = async () => { closeDialog(); await api("POST", "/sessions/" + current + "/approvals/" + e.requestId, { choice: option }) }
    choices.appendChild(b)
  }
  if (!dialog.open) dialog.showModal()
}
function closeDialog() { const d = $("#approval"); if (d.open) d.close() }

function setBusy(value) {
  busy = value
  cancels = 0
  $("#send").disabled = value || !current
  $("#stop").disabled = !value
  $("#stop").textContent = "Stop"
}

async function send() {
  const text = $("#input").value.trim()
  if (!text || !current || busy) return
  $("#input").value = ""
  add("user", text)
  setBusy(true)
  status("thinking…")
  try { await api("POST", "/sessions/" + current + "/messages", { text }) }
  catch (error) { add("note", String(error.message)); setBusy(false) }
}

async function stop() {
  cancels++
  const level = cancels > 1 ? "immediate" : "graceful"
  $("#stop").textContent = "Stop now"
  await api("POST", "/sessions/" + current + "/cancel", { level })
}

$("#new").onsubmit = async (e) => {
  e.preventDefault()
  try {
    const body = {}
    if ($("#cwd").value.trim()) body.workingDir = $("#cwd").value.trim()
    if ($("#bundle").value.trim()) body.bundle = $("#bundle").value.trim()
    const info = await api("POST", "/sessions", body)
    await open(info.sessionId, true)
  } catch (error) { status(String(error.message)) }
}
$("#send").onclick = send
$("#stop").onclick = stop
$("#input").onkeydown = (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send() } }
if (!token) askToken(); else refresh().catch((error) => status(String(error.message)))
`

/** The page's HTML. */
export const chatPageHtml = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>effect-session-backend</title><style>${style}</style></head>
<body>
<aside>
  <h1>Sessions</h1>
  <form id="new">
    <input id="cwd" placeholder="working directory (default ~)" autocomplete="off">
    <input id="bundle" placeholder="bundle (default)" autocomplete="off">
    <button type="submit" id="create">New session</button>
  </form>
  <ul id="sessions"></ul>
</aside>
<main>
  <div id="log"></div>
  <div id="status" role="status"></div>
  <footer>
    <textarea id="input" placeholder="Message (Enter sends, Shift+Enter for a new line)"></textarea>
    <button id="send" disabled>Send</button>
    <button id="stop" disabled title="First press: stop after the current step. Second press: stop now.">Stop</button>
  </footer>
</main>
<dialog id="approval"><p id="approval-prompt"></p><div class="choices" id="approval-choices"></div></dialog>
<script>${script}</script>
</body></html>`
