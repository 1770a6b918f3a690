package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/mailroomhq/mailroom/internal/client"
)

// Exit codes of mailroom commands, for scripts. They are documented in
// docs/observability.md.
const (
	// exitOK: the command did what it was asked.
	exitOK = 0
	// exitFailure: the server answered with an error, could not be
	// reached, or any other failure.
	exitFailure = 1
	// exitUsage: bad flags or arguments, or a 400 from the server (a
	// filter it does not take).
	exitUsage = 2
	// exitNotFound: the event, delivery, destination or task does not
	// exist (a 404 from the server).
	exitNotFound = 3
)

// codeError carries the exit code of a failure.
type codeError struct {
	code int
	err  error
}

func (e *codeError) Error() string { return e.err.Error() }
func (e *codeError) Unwrap() error { return e.err }

// usageErrorf is a usage error: exit code 2.
func usageErrorf(format string, args ...any) error {
	return &codeError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// exitCode maps an error returned by a command to the process exit code.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ce *codeError
	if errors.As(err, &ce) {
		return ce.code
	}
	var ae *client.Error
	if errors.As(err, &ae) {
		switch ae.Status {
		case http.StatusNotFound:
			return exitNotFound
		case http.StatusBadRequest:
			return exitUsage
		}
	}
	return exitFailure
}

// flagUsageError makes cobra's flag parsing errors exit with code 2.
func flagUsageError(_ *cobra.Command, err error) error {
	return &codeError{code: exitUsage, err: err}
}

// exactArgs is cobra.ExactArgs with the usage exit code.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s takes %s (got %d arguments)", cmd.CommandPath(), names, len(args))
		}
		return nil
	}
}

// groupCommand is the parent of a command group: without a subcommand it
// prints its help, and an unknown subcommand is a usage error.
func groupCommand(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
}

// clientFlags are the flags every inspection command takes.
type clientFlags struct {
	server string
	token  string
	json   bool
}

// addClientFlags registers --server, --token and --json on cmd and its
// subcommands. The token's default is read from the environment when the
// client is built, so that it never shows in --help.
func addClientFlags(cmd *cobra.Command, f *clientFlags) {
	server := os.Getenv("MAILROOM_SERVER")
	if server == "" {
		server = client.DefaultServer
	}
	cmd.PersistentFlags().StringVar(&f.server, "server", server, "server base URL (env MAILROOM_SERVER)")
	cmd.PersistentFlags().StringVar(&f.token, "token", "", "admin API token (env MAILROOM_API_TOKEN)")
	cmd.PersistentFlags().BoolVar(&f.json, "json", false, "print the server's JSON answer instead of a table")
}

// client builds the API client from the flags and the environment.
func (f *clientFlags) client() (*client.Client, error) {
	token := f.token
	if token == "" {
		token = os.Getenv("MAILROOM_API_TOKEN")
	}
	c, err := client.New(f.server, &client.Options{Token: token})
	if err != nil {
		return nil, &codeError{code: exitUsage, err: err}
	}
	return c, nil
}

// listFlags are the filters and paging flags of list commands; each
// command registers the ones its list takes.
type listFlags struct {
	source, destination, status, typ, event string
	since, until, cursor                    string
	limit                                   int
}

// filterFlag is a filter flag's name and help.
type filterFlag struct {
	name, help string
}

func (l *listFlags) target(name string) *string {
	switch name {
	case "source":
		return &l.source
	case "destination":
		return &l.destination
	case "status":
		return &l.status
	case "type":
		return &l.typ
	case "event":
		return &l.event
	case "since":
		return &l.since
	case "until":
		return &l.until
	case "cursor":
		return &l.cursor
	}
	panic("unknown filter flag " + name)
}

var filterFlags = map[string]filterFlag{
	"source":      {"source", "only this source"},
	"destination": {"destination", "only this destination"},
	"type":        {"type", "only this event type"},
	"event":       {"event", "only deliveries of this event id"},
	"since":       {"since", "received (created) at or after: RFC 3339, unix seconds, or a duration ago like 1h"},
	"until":       {"until", "received (created) before: RFC 3339, unix seconds, or a duration ago like 15m"},
	"cursor":      {"cursor", "next page: the cursor printed after the previous page"},
}

// register adds the named filter flags, a --status flag listing statuses,
// and --limit when paged.
func (l *listFlags) register(cmd *cobra.Command, statuses string, paged bool, names ...string) {
	for _, n := range names {
		ff := filterFlags[n]
		cmd.Flags().StringVar(l.target(n), ff.name, "", ff.help)
	}
	if statuses != "" {
		cmd.Flags().StringVar(&l.status, "status", "", "only this status: "+statuses)
	}
	if paged {
		cmd.Flags().StringVar(&l.cursor, "cursor", "", filterFlags["cursor"].help)
		cmd.Flags().IntVar(&l.limit, "limit", 0, "rows per page, 1 to 1000 (server default 50)")
	}
}

// values turns the flags set into query parameters. now resolves
// durations given to --since and --until.
func (l *listFlags) values(now time.Time) (url.Values, error) {
	q := url.Values{}
	for _, n := range []string{"source", "destination", "status", "type", "event", "cursor"} {
		param := n
		if n == "event" {
			param = "event_id"
		}
		if v := *l.target(n); v != "" {
			q.Set(param, v)
		}
	}
	for _, n := range []string{"since", "until"} {
		v := *l.target(n)
		if v == "" {
			continue
		}
		t, err := parseWhen(v, now)
		if err != nil {
			return nil, usageErrorf("--%s: %v", n, err)
		}
		q.Set(n, t)
	}
	if l.limit != 0 {
		if l.limit < 1 || l.limit > 1000 {
			return nil, usageErrorf("--limit: %d is not from 1 to 1000", l.limit)
		}
		q.Set("limit", strconv.Itoa(l.limit))
	}
	return q, nil
}

// parseWhen reads a time flag: RFC 3339 and unix seconds go to the server
// as given; a Go duration ("90m", "2h") means that long before now.
func parseWhen(v string, now time.Time) (string, error) {
	if _, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return v, nil
	}
	if _, err := strconv.ParseFloat(v, 64); err == nil {
		return v, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return "", fmt.Errorf("%q is not an RFC 3339 time, unix seconds or a duration like 1h", v)
	}
	return now.Add(-d).UTC().Format(time.RFC3339Nano), nil
}

// printJSON writes raw indented, as scripts read it.
func printJSON(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		buf.Reset()
		buf.Write(raw)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// table writes aligned columns to w; Flush it when done.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = cell(c)
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// cell makes s fit a table cell: one line, at most 60 characters, "-"
// when empty.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "-"
	}
	if utf8.RuneCountInString(s) > 60 {
		r := []rune(s)
		s = string(r[:59]) + "…"
	}
	return s
}

// when formats a time for tables and details: UTC, to the second.
func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// status formats an HTTP status code, empty for none.
func status(code int) string {
	if code == 0 {
		return ""
	}
	return strconv.Itoa(code)
}

// moreHint tells the operator how to get the next page, on stderr so that
// the table stays clean.
func moreHint(cmd *cobra.Command, cursor string) {
	if cursor != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "more rows: add --cursor %s\n", cursor)
	}
}

// details writes "key: value" lines aligned.
func details(w io.Writer, kv ...string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	for i := 0; i+1 < len(kv); i += 2 {
		v := kv[i+1]
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(tw, "%s:\t%s\n", kv[i], v)
	}
	return tw.Flush()
}

// prettyBody indents a JSON body, or returns it as is.
func prettyBody(body string) string {
	var buf bytes.Buffer
	if json.Indent(&buf, []byte(body), "", "  ") == nil {
		return buf.String()
	}
	return body
}
