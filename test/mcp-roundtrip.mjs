// Round trip with the official MCP TypeScript SDK, a client independent of
// mailroom's Go code: on 2025-11-25 it calls wait_for_event as a task
// (experimental Tasks), sends a signed Stripe webhook, sees
// notifications/tasks/status and gets the event from tasks/result; then it
// does the same on 2026-07-28 (Tasks extension) with plain fetch, since the
// SDK does not speak that revision yet.
//
// Usage: node mcp-roundtrip.mjs BASE_URL STRIPE_SECRET
import { createHmac, randomUUID } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CallToolResultSchema, TaskStatusNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

const [base, secret] = process.argv.slice(2);
if (!base || !secret) {
  console.error("usage: node mcp-roundtrip.mjs BASE_URL STRIPE_SECRET");
  process.exit(2);
}

function fail(msg) {
  console.error("FAIL: " + msg);
  process.exit(1);
}

async function sendStripe(type, link) {
  const id = "evt_node_" + randomUUID();
  const body = JSON.stringify({ id, type, data: { object: { id: "cs_node", payment_link: link } } });
  const ts = Math.floor(Date.now() / 1000);
  const sig = createHmac("sha256", secret).update(`${ts}.${body}`).digest("hex");
  const res = await fetch(`${base}/e/stripe`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Stripe-Signature": `t=${ts},v1=${sig}` },
    body,
  });
  if (res.status !== 200) fail(`webhook answered ${res.status}`);
  return (await res.json()).event_id;
}

async function legacy() {
  const client = new Client({ name: "node-roundtrip", version: "1.0.0" }, { capabilities: { tasks: {} } });
  const statuses = [];
  client.setNotificationHandler(TaskStatusNotificationSchema, (n) => statuses.push(n.params));
  await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`)));
  if (!client.getServerCapabilities()?.tasks?.requests?.tools?.call) fail("server does not advertise tasks for tools/call");
  const { tools } = await client.listTools();
  const wait = tools.find((t) => t.name === "wait_for_event");
  if (wait?.execution?.taskSupport !== "optional") fail("wait_for_event taskSupport is " + JSON.stringify(wait?.execution));

  const link = "plink_node_" + randomUUID();
  const stream = client.experimental.tasks.callToolStream(
    { name: "wait_for_event", arguments: { source: "stripe", type: "checkout.session.completed", match: { "data.object.payment_link": link } } },
    CallToolResultSchema,
    { task: { ttl: 60000 } },
  );
  let taskId, eventId, result;
  for await (const msg of stream) {
    if (msg.type === "taskCreated") {
      taskId = msg.task.taskId;
      eventId = await sendStripe("checkout.session.completed", link);
    } else if (msg.type === "result") {
      result = msg.result;
    } else if (msg.type === "error") {
      fail("task stream error: " + msg.error?.message);
    }
  }
  if (!taskId) fail("no task created");
  if (result?.structuredContent?.event?.event_id !== eventId) fail("result event " + JSON.stringify(result?.structuredContent) + " want " + eventId);
  const again = await client.experimental.tasks.getTaskResult(taskId, CallToolResultSchema);
  if (again?.structuredContent?.event?.event_id !== eventId) fail("tasks/result event mismatch");
  const task = await client.experimental.tasks.getTask(taskId);
  if (task.status !== "completed") fail("tasks/get status " + task.status);
  const list = await client.experimental.tasks.listTasks();
  if (!list.tasks.some((t) => t.taskId === taskId)) fail("tasks/list misses the task");
  // notifications/tasks/status is optional for clients to rely on, but
  // mailroom sends it on the session's stream: give it a moment.
  for (let i = 0; i < 50 && !statuses.some((s) => s.taskId === taskId && s.status === "completed"); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!statuses.some((s) => s.taskId === taskId && s.status === "completed")) fail("no notifications/tasks/status completed");
  await client.close();
  console.log(`2025-11-25 ok: task ${taskId} completed by ${eventId}`);
}

let rpcId = 0;
async function rpc(method, params = {}, extraHeaders = {}) {
  params._meta = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": { name: "node-roundtrip", version: "1.0.0" },
    "io.modelcontextprotocol/clientCapabilities": { extensions: { "io.modelcontextprotocol/tasks": {} } },
  };
  const res = await fetch(`${base}/mcp`, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Accept: "application/json, text/event-stream",
      "Mcp-Protocol-Version": "2026-07-28",
      "Mcp-Method": method,
      ...extraHeaders,
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: ++rpcId, method, params }),
  });
  const text = await res.text();
  const msgs = res.headers.get("content-type")?.startsWith("text/event-stream")
    ? text.split("\n").filter((l) => l.startsWith("data: ")).map((l) => JSON.parse(l.slice(6)))
    : [JSON.parse(text)];
  const reply = msgs.find((m) => m.id === rpcId);
  if (!reply) fail(`${method}: no reply in ${text}`);
  if (reply.error) fail(`${method}: ${JSON.stringify(reply.error)}`);
  return reply.result;
}

async function modern() {
  const disc = await rpc("server/discover");
  if (!disc.capabilities?.extensions?.["io.modelcontextprotocol/tasks"]) fail("discover lacks the Tasks extension");
  const link = "plink_node_" + randomUUID();
  const created = await rpc(
    "tools/call",
    { name: "wait_for_event", arguments: { source: "stripe", type: "checkout.session.completed", match: { "data.object.payment_link": link } } },
    { "Mcp-Name": "wait_for_event" },
  );
  if (created.resultType !== "task" || !created.taskId) fail("CreateTaskResult " + JSON.stringify(created));
  const eventId = await sendStripe("checkout.session.completed", link);
  for (let i = 0; i < 100; i++) {
    const t = await rpc("tasks/get", { taskId: created.taskId }, { "Mcp-Name": created.taskId });
    if (t.status === "completed") {
      if (t.result?.structuredContent?.event?.event_id !== eventId) fail("inline result " + JSON.stringify(t.result));
      console.log(`2026-07-28 ok: task ${created.taskId} completed by ${eventId}`);
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  fail("2026-07-28 task never completed");
}

await legacy();
await modern();
