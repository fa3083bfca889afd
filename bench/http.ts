/**
 * HTTP benchmark: the server (`bench/httpServer.ts`, echo engine, in-memory
 * store) in its own process, the load from this one over loopback with
 * keep-alive connections.
 *
 * 1. send-message: 1,000 sessions, one client each, each sending its next
 *    message when the last reply came back; requests per second and the
 *    latency percentiles.
 * 2. fan-out: 100 Server-Sent Events subscribers on one session while it runs
 *    turns; events delivered per second (to all subscribers together).
 *
 *   npm run bench:http
 */
import * as childProcess from "node:child_process"
import * as http from "node:http"
import * as path from "node:path"

const sessionsCount = 1_000
const seconds = 10
const subscribers = 100
const fanoutTurns = 300
const token = "bench-token"
const agent = new http.Agent({ keepAlive: true, maxSockets: 512 })

const request = (url: string, method: string, route: string, body?: unknown) =>
  new Promise<{ status: number; json: Record<string, unknown> }>((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const req = http.request(`${url}/api${route}`, {
      method,
      agent,
      headers: {
        authorization: `Bearer ${token}`,
        ...(payload !== undefined
          ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) }
          : {})
      }
    }, (res) => {
      let text = ""
      res.setEncoding("utf8")
      res.on("data", (chunk: string) => (text += chunk))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, json: text === "" ? {} : JSON.parse(text) }))
    })
    req.on("error", reject)
    req.end(payload)
  })

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]

const startServer = () =>
  new Promise<{ url: string; child: childProcess.ChildProcess }>((resolve, reject) => {
    const child = childProcess.spawn(process.execPath, [path.join(import.meta.dirname, "httpServer.js"), token], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    let output = ""
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString()
      const url = /listening on (\S+)/.exec(output)?.[1]
      if (url !== undefined) resolve({ url, child })
    })
    child.on("exit", (code) => reject(new Error(`server exited with ${code}: ${output}`)))
  })

const sendMessages = async (url: string) => {
  const ids: Array<string> = []
  for (let i = 0; i < sessionsCount; i += 100) {
    const batch = await Promise.all(
      Array.from({ length: 100 }, () => request(url, "POST", "/sessions", { workingDir: "/tmp" }))
    )
    for (const created of batch) ids.push(created.json.sessionId as string)
  }
  const latencies: Array<number> = []
  let errors = 0
  const run = async (until: number, record: boolean) => {
    await Promise.all(ids.map(async (id, i) => {
      let n = 0
      while (performance.now() < until) {
        const start = performance.now()
        const answer = await request(url, "POST", `/sessions/${id}/messages`, { text: `message ${i}/${n++}` })
        if (answer.status !== 200) errors++
        if (record) latencies.push(performance.now() - start)
      }
    }))
  }
  await run(performance.now() + 2_000, false) // warm-up
  const start = performance.now()
  await run(start + seconds * 1_000, true)
  const elapsed = (performance.now() - start) / 1_000
  const sorted = latencies.sort((a, b) => a - b)
  console.log(`send-message, ${sessionsCount} sessions with one client each, ${seconds} s:`)
  console.log(`  ${Math.round(latencies.length / elapsed).toLocaleString("en")} requests/s, ${errors} errors`)
  console.log(
    `  latency p50 ${percentile(sorted, 0.5).toFixed(1)} ms, p99 ${percentile(sorted, 0.99).toFixed(1)} ms, max ${
      sorted.at(-1)?.toFixed(1)
    } ms`
  )
}

const fanOut = async (url: string) => {
  const id = (await request(url, "POST", "/sessions", { workingDir: "/tmp" })).json.sessionId as string
  const received = new Array<number>(subscribers).fill(0)
  const connections: Array<http.ClientRequest> = []
  await Promise.all(Array.from({ length: subscribers }, (_, i) =>
    new Promise<void>((resolve) => {
      const req = http.get(`${url}/api/sessions/${id}/events?token=${token}`, { agent: false }, (res) => {
        res.setEncoding("utf8")
        let pending = ""
        res.on("data", (chunk: string) => {
          pending += chunk
          const blocks = pending.split("\n\n")
          pending = blocks.pop() ?? ""
          for (const block of blocks) if (block.includes("\nevent: ") || block.startsWith("id: ")) received[i]++
        })
        resolve()
      })
      connections.push(req)
    })))
  const start = performance.now()
  for (let turn = 0; turn < fanoutTurns; turn++) {
    await request(url, "POST", `/sessions/${id}/messages`, { text: `turn ${turn}` })
  }
  // each turn emits prompt:submit, prompt:complete, orchestrator:complete
  const expected = fanoutTurns * 3 * subscribers
  while (received.reduce((a, b) => a + b, 0) < expected && performance.now() - start < 30_000) {
    await new Promise((resolve) => setImmediate(resolve))
  }
  const elapsed = (performance.now() - start) / 1_000
  const total = received.reduce((a, b) => a + b, 0)
  console.log(`fan-out, ${subscribers} SSE subscribers on one session, ${fanoutTurns} turns:`)
  console.log(
    `  ${Math.round(total / elapsed).toLocaleString("en")} events/s delivered (${total.toLocaleString("en")} of ${
      expected.toLocaleString("en")
    } in ${elapsed.toFixed(2)} s)`
  )
  for (const connection of connections) connection.destroy()
}

const main = async () => {
  const { child, url } = await startServer()
  try {
    await sendMessages(url)
    await fanOut(url)
  } finally {
    child.kill("SIGTERM")
    agent.destroy()
  }
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
