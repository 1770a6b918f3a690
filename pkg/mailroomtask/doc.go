// Package mailroomtask gives an MCP server built with the go-sdk durable
// Tasks that complete when a webhook arrives, with mailroom doing the hard
// part: receiving, verifying, deduplicating and correlating the webhook,
// and keeping the task in its database across restarts.
//
// A tool that starts work which finishes later (a payment link that is
// paid tomorrow, a deployment, a fulfilment) says which webhook will
// finish it, and returns at once:
//
//	tasks, err := mailroomtask.New("http://127.0.0.1:8080", &mailroomtask.Options{Token: token})
//	...
//	mailroomtask.AddTool(tasks, server, &mcp.Tool{Name: "create_payment_link"},
//		func(ctx context.Context, req *mcp.CallToolRequest, in LinkArgs) (*mailroomtask.Wait, error) {
//			link, err := payments.CreateLink(ctx, in.Amount)
//			if err != nil {
//				return nil, err
//			}
//			return &mailroomtask.Wait{
//				Source:  "stripe",
//				Type:    "checkout.session.completed",
//				Match:   map[string]any{"data.object.payment_link": link.ID},
//				Timeout: 24 * time.Hour,
//				Message: "waiting for the customer to pay at " + link.URL,
//			}, nil
//		})
//	http.Handle("/mcp", tasks.HTTPHandler(server, nil))
//
// The start function runs when the tool is called; the Wait it returns is
// registered with mailroom (POST /api/v1/tasks) as the task's correlation
// rule, exactly the rule of mailroom's own wait_for_event tool: the first
// event of Source (and Type) whose body has the Match values and passes
// the CEL Filter completes the task, and an event that arrived a moment
// before the rule was registered counts too.
//
// # What the client sees
//
// A client with MCP Tasks (protocol 2025-11-25, which asks for a task with
// params.task on tools/call) gets a CreateTaskResult at once, hears
// notifications/tasks/status on its session's GET stream when the webhook
// arrives, and reads the result with tasks/result or tasks/get. The result
// is mailroom's: {"status":"matched","event":{...}} with the event's id,
// type, headers and decoded body. tasks/cancel cancels the task in
// mailroom. [Tasks.Install] (called by [AddTool]) adds the tasks
// capability, marks the tool's taskSupport "optional" and registers
// tasks/get, tasks/result and tasks/cancel; [Tasks.Handler] carries
// params.task past the SDK (which drops it) and injects the status
// notifications.
//
// A call that fails before a task exists (the start function returns an
// error, the SDK refuses the arguments, or mailroom does not register the
// Wait) creates no task. A 2025-11-25 task-augmented call then gets a
// JSON-RPC error, not a CreateTaskResult: that revision returns a
// CreateTaskResult only for a request it accepts, and a task begins in
// status working. The start function's error is -32603 (Internal error)
// with its message; refused arguments are -32602 (Invalid params). Every
// other call, 2026-07-28 ones included (there the server decides whether
// a call becomes a task), gets what a plain call returns: an error tool
// result (isError). A start function that returns a *jsonrpc.Error gets
// that error sent as is, in every form.
//
// A client without Tasks gets a synchronous call: the tool waits up to
// [Options.SyncWait] for the webhook and then answers with the result, or
// with the task id and "still waiting".
//
// A client of protocol 2026-07-28 that declares the Tasks extension
// (io.modelcontextprotocol/tasks) in its request _meta gets a flat
// CreateTaskResult (resultType "task") and polls tasks/get, whose answer
// carries the result or JSON-RPC error inline; tasks/cancel and
// tasks/update acknowledge, and server/discover declares the extension.
// [Tasks.HTTPHandler] serves both revisions on one endpoint: 2026-07-28
// requests on a stateless go-sdk handler (that revision has no sessions),
// older ones on a stateful one wrapped by [Tasks.Handler].
//
// In both forms the outcome is what a plain call returns: a wait that runs
// out of time ends with an error tool result (isError, status timed_out),
// which 2025-11-25 reports as a failed task whose tasks/result returns it
// and 2026-07-28 as a completed task holding it ("failed" is for JSON-RPC
// errors there).
//
// # Identity
//
// A task belongs to the caller that created it: the go-sdk's TokenInfo
// UserID when the server authenticates (auth.RequireBearerToken), else
// [Options.Owner]. Another caller's task id is "unknown", like an expired
// one. The mailroom token is the server's, never the client's.
package mailroomtask
