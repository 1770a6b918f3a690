package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mailroomhq/mailroom/internal/transform"
)

// newTransformCommand is `mailroom transform test`.
func newTransformCommand() *cobra.Command {
	var cf clientFlags
	cmd := groupCommand("transform", "Try connections' JavaScript transformations on stored events")
	addClientFlags(cmd, &cf)
	cmd.AddCommand(newTransformTestCommand(&cf))
	return cmd
}

func newTransformTestCommand(cf *clientFlags) *cobra.Command {
	var conn, event, scriptFile string
	cmd := &cobra.Command{
		Use:   "test --connection ID --event EVENT_ID [--script FILE]",
		Short: "Run a connection's transformation on a stored event and show its input, output and log, without delivering",
		Long: `Run the transformation of a connection on a stored event, as a delivery
attempt would, and show the request before it (input), the request it
returns (output) and its console log. Nothing is delivered. With --script,
the script in FILE (- for standard input) is tried instead of the
connection's own, to test a change before saving it.

Exit codes: 0 when the transformation returned a request, 1 when it threw,
ran out of time or returned something that cannot be sent, 2 for a usage
error or a script that does not compile, 3 when the connection or event
does not exist.`,
		Args: exactArgs(0, "no arguments (use --connection and --event)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if conn == "" || event == "" {
				return usageErrorf("--connection and --event are required")
			}
			var script string
			if scriptFile != "" {
				b, err := readScript(cmd.InOrStdin(), scriptFile)
				if err != nil {
					return usageErrorf("read --script: %v", err)
				}
				if strings.TrimSpace(string(b)) == "" {
					return usageErrorf("--script %s is empty", scriptFile)
				}
				script = string(b)
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			res, err := c.TransformTest(cmd.Context(), conn, event, script)
			if err != nil {
				return fmt.Errorf("test the transformation of %s: %w", conn, err)
			}
			w := cmd.OutOrStdout()
			if cf.json {
				if err := printJSON(w, res.Raw); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(w, "connection %s, destination %s, event %s (%.1f ms)\n", res.Connection, res.Destination, res.EventID, res.DurationMS)
				fmt.Fprintln(w, "\n--- input")
				printView(w, res.Input)
				if res.Output != nil {
					fmt.Fprintln(w, "\n--- output")
					printView(w, res.Output)
				}
				if len(res.Log) > 0 {
					fmt.Fprintln(w, "\n--- log")
					for _, l := range res.Log {
						fmt.Fprintln(w, l)
					}
				}
				if res.Error != "" {
					fmt.Fprintln(w, "\n--- error")
					fmt.Fprintln(w, res.Error)
				}
			}
			if res.Error != "" {
				return &codeError{code: exitFailure, err: errors.New("the transformation failed: " + res.Error)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&conn, "connection", "", "connection id (source->destination unless set)")
	cmd.Flags().StringVar(&event, "event", "", "id of a stored event (evt_…)")
	cmd.Flags().StringVar(&scriptFile, "script", "", "file holding a script to try instead of the connection's (- for standard input)")
	return cmd
}

func readScript(stdin io.Reader, name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(name)
}

// printView prints a request as an HTTP message: request line, headers in
// name order, a blank line and the body (indented when JSON).
func printView(w io.Writer, v *transform.View) {
	if v == nil {
		return
	}
	target := v.Path
	if q := url.Values(v.Query).Encode(); q != "" {
		target += "?" + q
	}
	fmt.Fprintf(w, "%s %s\n", v.Method, target)
	for _, k := range slices.Sorted(maps.Keys(v.Headers)) {
		for _, val := range v.Headers[k] {
			fmt.Fprintf(w, "%s: %s\n", k, val)
		}
	}
	fmt.Fprintln(w)
	var s string
	if json.Unmarshal(v.Body, &s) == nil {
		fmt.Fprintln(w, s)
		return
	}
	var buf bytes.Buffer
	if json.Indent(&buf, v.Body, "", "  ") != nil {
		buf.Reset()
		buf.Write(v.Body)
	}
	fmt.Fprintln(w, buf.String())
}
