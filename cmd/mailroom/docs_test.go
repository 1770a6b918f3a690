package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// docInvocation is a mailroom command line in a doc: its place and words.
type docInvocation struct {
	where string // file:line
	text  string // the line, for the message
	words []string
}

// shellBlock matches the language of a fenced block that holds commands.
var shellBlock = regexp.MustCompile("^```(sh|bash|shell|console)?\\s*$")

// inlineCommand is a command in an inline code span: `mailroom events list --source stripe`.
var inlineCommand = regexp.MustCompile("`((?:go run \\./cmd/mailroom|mailroom) [^`]+)`")

// commandStart is where a command begins in a shell line: at its start, after
// a prompt, a pipe, a separator, `--` (claude mcp add … -- mailroom mcp) or
// a container's `exec NAME`.
var commandStart = regexp.MustCompile(`(?:^|\$ |[;&|(]\s*|--\s+|\bexec(?:\s+-\S+)*\s+\S+\s+|\bsudo(?:\s+-u\s+\S+|\s+-\S+)*\s+(?:\S+=\S+\s+)?)(?:\S*/)?(?:go run \./cmd/mailroom|mailroom)\s+(.*)$`)

// docInvocations returns the mailroom command lines of README.md and
// docs/*.md: the lines of shell blocks that run mailroom (continuations
// joined) and inline code spans that show a command.
func docInvocations(t *testing.T) []docInvocation {
	t.Helper()
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../README.md")
	var out []docInvocation
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(f, "../../")
		lines := strings.Split(string(data), "\n")
		inBlock, shell := false, false
		for i := 0; i < len(lines); i++ {
			line := lines[i]
			trimmed := strings.TrimSpace(line)
			if strings.HasPrefix(trimmed, "```") {
				if inBlock {
					inBlock = false
				} else {
					inBlock, shell = true, shellBlock.MatchString(trimmed)
				}
				continue
			}
			where := name + ":" + strconv.Itoa(i+1)
			if !inBlock {
				for _, m := range inlineCommand.FindAllStringSubmatch(line, -1) {
					out = append(out, docInvocation{where, m[1], commandWords(m[1])})
				}
				continue
			}
			if !shell {
				continue
			}
			for strings.HasSuffix(trimmed, "\\") && i+1 < len(lines) {
				i++
				trimmed = strings.TrimSuffix(trimmed, "\\") + " " + strings.TrimSpace(lines[i])
			}
			if m := commandStart.FindStringSubmatch(trimmed); m != nil {
				out = append(out, docInvocation{where, trimmed, commandWords("mailroom " + m[1])})
			}
		}
	}
	return out
}

// commandWords splits a command line into the words after "mailroom",
// stopping where the shell would end the command (a comment, a pipe, a
// separator, a redirection) and dropping quotes.
func commandWords(line string) []string {
	line = strings.TrimPrefix(line, "go run ./cmd/mailroom ")
	line = strings.TrimPrefix(line, "mailroom ")
	var words []string
	for _, w := range strings.Fields(line) {
		if w == "#" || strings.HasPrefix(w, "#") || w == "|" || w == "&&" || w == "||" || w == ";" || w == "&" ||
			strings.HasPrefix(w, ">") || strings.HasPrefix(w, "2>") || strings.HasPrefix(w, "<") || w == ")" {
			break
		}
		w = strings.TrimSuffix(w, ";")
		// A synopsis's optional parts ([--status dead|pending]) are checked
		// as if given.
		w = strings.Trim(w, "[]")
		words = append(words, strings.Trim(w, `"'`))
	}
	return words
}

// TestDocsCommands checks every mailroom command line of README.md and
// docs/*.md against the CLI: each names a command that exists and only
// flags that command has (its own or inherited), with values of the flag's
// type, so that a renamed or removed flag cannot stay in the docs.
func TestDocsCommands(t *testing.T) {
	t.Parallel()
	var invs []docInvocation
	for _, inv := range docInvocations(t) {
		// "mailroom events|deliveries|tasks": each of them.
		if len(inv.words) > 0 && strings.Contains(inv.words[0], "|") {
			for _, w := range strings.Split(inv.words[0], "|") {
				invs = append(invs, docInvocation{inv.where, inv.text, append([]string{w}, inv.words[1:]...)})
			}
			continue
		}
		invs = append(invs, inv)
	}
	checked := 0
	for _, inv := range invs {
		if len(inv.words) == 0 {
			continue
		}
		if placeholder.MatchString(inv.words[0]) {
			continue // "go run ./cmd/mailroom …": any command
		}
		root := newRootCommand()
		root.InitDefaultVersionFlag()
		cmd, rest, err := root.Find(inv.words)
		if err != nil {
			t.Errorf("%s: %q: %v", inv.where, inv.text, err)
			continue
		}
		if cmd == root && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
			t.Errorf("%s: %q: mailroom has no command %q", inv.where, inv.text, rest[0])
			continue
		}
		checked++
		if testing.Verbose() {
			t.Logf("%s: mailroom %s", inv.where, strings.Join(inv.words, " "))
		}
		if err := parseDocFlags(cmd, rest); err != nil {
			t.Errorf("%s: %q: %s: %v", inv.where, inv.text, cmd.CommandPath(), err)
		}
	}
	t.Logf("%d mailroom command lines in the docs checked", checked)
	if checked < 50 {
		t.Errorf("only %d mailroom command lines were found in the docs; is the parsing broken?", checked)
	}
}

// parseDocFlags parses args with cmd's flags, as cobra would before running
// it. Placeholders the docs write for values (evt_…, <id>, …) are words
// like any other, so only flag names and typed values are checked.
func parseDocFlags(cmd *cobra.Command, args []string) error {
	fs := pflag.NewFlagSet(cmd.Name(), pflag.ContinueOnError)
	fs.SetOutput(discard{})
	fs.AddFlagSet(cmd.LocalFlags())
	fs.AddFlagSet(cmd.InheritedFlags())
	fs.BoolP("help", "h", false, "")
	// A placeholder value ("--server …", "--backlog N", "--db $db") stands
	// for any value: it is replaced by the flag's default, which its type
	// accepts.
	elided := func(a string) bool { return placeholder.MatchString(a) }
	kept := make([]string, 0, len(args))
	for i, a := range args {
		if strings.HasPrefix(a, "--") {
			if name, value, ok := strings.Cut(a[2:], "="); ok && elided(value) {
				if f := fs.Lookup(name); f != nil {
					a = "--" + name + "=" + f.DefValue
				}
			}
		} else if elided(a) && i > 0 && strings.HasPrefix(args[i-1], "--") && !strings.Contains(args[i-1], "=") {
			if f := fs.Lookup(args[i-1][2:]); f != nil && f.NoOptDefVal == "" {
				a = f.DefValue
			}
		}
		kept = append(kept, a)
	}
	return fs.Parse(kept)
}

// placeholder is a word the docs write for a value: elided (…), a
// variable ($n), a name in capitals (N, URL) or in angle brackets (<id>).
var placeholder = regexp.MustCompile(`…|\.\.\.|^\$|^[A-Z][A-Z_]*$|^<.*>$`)

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestReadmeLayout checks that the README's layout names every package
// directory under internal/ and pkg/, so that a newcomer can find each,
// and that docs/architecture.md's package table does too.
func TestReadmeLayout(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, layout, ok := strings.Cut(string(raw), "## Layout\n")
	if !ok {
		t.Fatal("README.md has no ## Layout section")
	}
	arch, err := os.ReadFile("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(layout, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			listed[strings.TrimSuffix(f[0], "/")] = true
		}
	}
	for _, root := range []string{"internal", "pkg"} {
		dirs, err := os.ReadDir(filepath.Join("../..", root))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dirs {
			if !d.IsDir() {
				continue
			}
			if !listed[root+"/"+d.Name()] {
				t.Errorf("README.md's layout does not name %s/%s/", root, d.Name())
			}
			if !strings.Contains(string(arch), "`"+root+"/"+d.Name()+"`") {
				t.Errorf("docs/architecture.md's package table does not name `%s/%s`", root, d.Name())
			}
		}
	}
}
