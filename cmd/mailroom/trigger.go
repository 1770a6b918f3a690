package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mailroomhq/mailroom/internal/client"
	"github.com/mailroomhq/mailroom/internal/trigger"
)

// triggerFlags are the flags of `mailroom trigger`.
type triggerFlags struct {
	to, secret, typ string
	set             []string
	list, print     bool
}

// newTriggerCommand is `mailroom trigger PROVIDER EVENT`.
func newTriggerCommand() *cobra.Command {
	var f triggerFlags
	cmd := &cobra.Command{
		Use:   "trigger PROVIDER EVENT",
		Short: "Send a realistic, correctly signed sample webhook of any known provider (see --list)",
		Long: `Send a realistic sample webhook, signed the way the provider signs it, to a
running mailroom (default http://127.0.0.1:8080/e/<source>: the provider's
name, or app for standard-webhooks, as in examples/mailroom.yaml).

Ids and timestamps are fresh on every call. --set overrides body fields by
dotted path; a value that parses as JSON is used as JSON:

  mailroom trigger stripe checkout.session.completed --set data.object.payment_link=plink_123
  mailroom trigger github pull_request --set action=closed --set pull_request.merged=true
  mailroom trigger standard-webhooks --type invoice.paid
  mailroom trigger --list

The secret defaults to the provider's variable (STRIPE_WEBHOOK_SECRET,
SLACK_WEBHOOK_SECRET ...; APP_WEBHOOK_SECRET for standard-webhooks) or its
demo value; --list shows the verify config that accepts the demo samples.`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case f.list && len(args) == 0:
				return nil
			case f.list:
				return usageErrorf("--list takes no arguments")
			case len(args) == 1:
				if p, err := trigger.Lookup(args[0]); err == nil && p.AnyType {
					return nil
				}
				return usageErrorf("%s takes PROVIDER EVENT (got 1 argument); see --list", cmd.CommandPath())
			case len(args) != 2:
				return usageErrorf("%s takes PROVIDER EVENT (got %d arguments); see --list", cmd.CommandPath(), len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.list {
				return listTriggers(cmd.OutOrStdout())
			}
			event := ""
			if len(args) == 2 {
				event = args[1]
			}
			return runTrigger(cmd.Context(), cmd.OutOrStdout(), args[0], event, f)
		},
	}
	cmd.Flags().StringVar(&f.to, "to", "", "URL to POST to (default $MAILROOM_SERVER/e/<source>, server default "+client.DefaultServer+")")
	cmd.Flags().StringVar(&f.secret, "secret", "", "signing secret (default: the provider's variable of the example config, or its demo secret)")
	cmd.Flags().StringArrayVar(&f.set, "set", nil, "override a body field: path=value (repeatable; JSON values allowed)")
	cmd.Flags().StringVar(&f.typ, "type", "", "event type, for the providers that take any type (standard-webhooks)")
	cmd.Flags().BoolVar(&f.list, "list", false, "list the providers and events that can be triggered")
	cmd.Flags().BoolVar(&f.print, "print", false, "print the signed request instead of sending it")
	return cmd
}

func listTriggers(w io.Writer) error {
	for _, p := range trigger.Providers() {
		// The public half of the demo config, for the providers whose
		// source needs more than the secret to accept the samples.
		extra := ""
		if p.Verify.Username != "" {
			extra += ", username " + p.Verify.Username
		}
		if p.Verify.PublicKey != "" {
			extra += ", public_key " + p.Verify.PublicKey
		}
		if len(p.Verify.TopicARNs) > 0 {
			extra += ", topic_arns " + strings.Join(p.Verify.TopicARNs, " ")
		}
		fmt.Fprintf(w, "%s: %s (source %q, verify %s%s)\n%s", p.Name, p.Title, p.Source, p.VerifyType, extra, trigger.FormatEvents(p))
	}
	return nil
}

func runTrigger(ctx context.Context, w io.Writer, provider, event string, f triggerFlags) error {
	p, err := trigger.Lookup(provider)
	if err != nil {
		return usageErrorf("%v", err)
	}
	if f.typ != "" && !p.AnyType {
		return usageErrorf("--type is for the providers that take any type; %s events are named by EVENT", p.Name)
	}
	secret := f.secret
	if secret == "" {
		secret = os.Getenv(p.SecretEnv)
	}
	to := f.to
	if to == "" {
		server := os.Getenv("MAILROOM_SERVER")
		if server == "" {
			server = client.DefaultServer
		}
		to = strings.TrimRight(server, "/") + "/e/" + p.Source
	}
	wh, err := trigger.Build(p.Name, event, &trigger.Options{Secret: secret, Set: f.set, Type: f.typ, URL: to})
	if err != nil {
		return usageErrorf("%v", err)
	}
	if f.print {
		fmt.Fprintf(w, "POST %s\n", to)
		for k, vs := range wh.Header {
			fmt.Fprintf(w, "%s: %s\n", k, strings.Join(vs, ", "))
		}
		fmt.Fprintf(w, "\n%s\n", prettyBody(string(wh.Body)))
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, to, bytes.NewReader(wh.Body))
	if err != nil {
		return usageErrorf("--to %q: %v", to, err)
	}
	req.Header = wh.Header
	start := time.Now()
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		return fmt.Errorf("send %s %s to %s: %w", p.Name, wh.Event, to, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	fmt.Fprintf(w, "%s %s %s -> %s: %d %s (%s)\n%s\n", p.Name, wh.Event, wh.ID, to, resp.StatusCode,
		http.StatusText(resp.StatusCode), time.Since(start).Round(time.Millisecond), strings.TrimSpace(string(answer)))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s answered %d", to, resp.StatusCode)
	}
	return nil
}
