// Command payments is mailroom's payments example, runnable offline: a
// tiny fake payments API, an MCP server (go-sdk) whose
// create_payment_link tool returns a Task through pkg/mailroomtask, and a
// minimal agent that calls the tool as a task and waits for the payment.
//
//	go run ./examples/payments serve   # payments API on :4242, MCP server on :3000/mcp
//	go run ./examples/payments agent   # call create_payment_link as a task, wait, print the result
//
// See README.md beside this file for the whole story in five commands.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/sync/errgroup"

	"github.com/mailroomhq/mailroom/pkg/mailroomtask"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "payments:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	mailroom := fs.String("mailroom", envOr("MAILROOM_SERVER", "http://127.0.0.1:8080"), "mailroom base URL")
	token := fs.String("token", os.Getenv("MAILROOM_API_TOKEN"), "mailroom admin API token")
	payAddr := fs.String("pay", "127.0.0.1:4242", "payments API address")
	mcpAddr := fs.String("mcp", "127.0.0.1:3000", "MCP server address")
	secret := fs.String("secret", envOr("STRIPE_WEBHOOK_SECRET", "whsec_demo_stripe_secret"), "Stripe webhook secret of mailroom's stripe source")
	amount := fs.Int64("amount", 2000, "agent: amount in cents")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch cmd {
	case "serve":
		payLn, err := net.Listen("tcp", *payAddr)
		if err != nil {
			return err
		}
		mcpLn, err := net.Listen("tcp", *mcpAddr)
		if err != nil {
			return err
		}
		return serve(ctx, payLn, mcpLn, *mailroom, *token, *secret, out)
	case "agent":
		return runAgent(ctx, "http://"+*mcpAddr+"/mcp", *amount, out)
	}
	return fmt.Errorf("unknown command %q (serve or agent)", cmd)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// serve runs the payments API on payLn and the MCP server on mcpLn until
// ctx ends.
func serve(ctx context.Context, payLn, mcpLn net.Listener, mailroom, token, secret string, out io.Writer) error {
	pay := newFakePay(mailroom+"/e/stripe", secret)
	tasks, err := mailroomtask.New(mailroom, &mailroomtask.Options{Token: token})
	if err != nil {
		return err
	}
	defer tasks.Close()
	srv := newMCPServer(tasks, "http://"+payLn.Addr().String())
	mcpHandler := tasks.Handler(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil))
	mux := http.NewServeMux()
	mux.Handle("/mcp", mcpHandler)
	servers := []*http.Server{{Handler: pay.handler()}, {Handler: mux}}
	fmt.Fprintf(out, "payments API on http://%s, MCP server on http://%s/mcp, mailroom at %s\n", payLn.Addr(), mcpLn.Addr(), mailroom)
	g, gctx := errgroup.WithContext(ctx)
	for i, ln := range []net.Listener{payLn, mcpLn} {
		g.Go(func() error {
			if err := servers[i].Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		for _, s := range servers {
			_ = s.Shutdown(sctx)
		}
		return nil
	})
	return g.Wait()
}

// runAgent calls create_payment_link as a task, prints the task, waits for
// its status notification and prints the result.
func runAgent(ctx context.Context, url string, amount int64, out io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a, err := connect(ctx, url)
	if err != nil {
		return err
	}
	raw, err := a.call(ctx, "tools/call", map[string]any{
		"name": "create_payment_link", "arguments": map[string]any{"amount": amount},
		"task": map[string]any{"ttl": 3_600_000},
	})
	if err != nil {
		return err
	}
	var created struct {
		Task struct {
			TaskID        string `json:"taskId"`
			Status        string `json:"status"`
			StatusMessage string `json:"statusMessage"`
		} `json:"task"`
	}
	if err := json.Unmarshal(raw, &created); err != nil || created.Task.TaskID == "" {
		return fmt.Errorf("tools/call did not create a task: %s", raw)
	}
	fmt.Fprintf(out, "task %s %s: %s\n", created.Task.TaskID, created.Task.Status, created.Task.StatusMessage)
wait:
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case n := <-a.notes:
			p, _ := n["params"].(map[string]any)
			if n["method"] != "notifications/tasks/status" || p["taskId"] != created.Task.TaskID {
				continue
			}
			fmt.Fprintf(out, "notification: task %s %s: %s\n", p["taskId"], p["status"], p["statusMessage"])
			break wait
		}
	}
	res, err := a.call(ctx, "tasks/result", map[string]any{"taskId": created.Task.TaskID})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "result: %s\n", res)
	return nil
}
