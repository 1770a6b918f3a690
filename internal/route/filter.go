// Package route decides where an event goes. It compiles CEL expressions
// (connection filters and dedup keys) once, builds the input they see from a
// request, and matches an event against a source's connections. It does not
// write anything: ingest turns its matches into deliveries.
//
// Expressions see these variables:
//
//	body     the JSON body as maps and lists; a form body as a map of strings;
//	         anything else as the raw string (see [decodeBody] for which is
//	         which, and how JSON numbers become int, uint or double)
//	raw      the body as a string, always
//	headers  map of lower-case header names to values (several joined by ", ")
//	query    map of query parameter names to values (the first one)
//	path     the request path after /e/{source} ("" when none)
//	source   the source name
//
// A filter that fails at evaluation (say body.type on a body without type)
// does not match; it never fails the request.
package route

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/overloads"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"

	"github.com/mailroomhq/mailroom/internal/rawjson"
)

// MaxCost bounds the evaluation cost of one expression (connection
// filters, dedup keys, event types, wait filters alike), so that an
// expression over a hostile or merely large body cannot spin. Evaluation
// stops when it is reached, and the expression fails (a filter does not
// match).
//
// It is calibrated to a time budget of about 10 ms per evaluation on the
// reference machine (docs/benchmarks.md, BenchmarkCostUnit): the most
// expensive unit of cost measured, one step of a comprehension over a
// decoded 3,000-item body, takes about 1 µs. Typical webhook filters and
// keys cost tens of units; a comprehension over a list of a few thousand
// items does not fit.
const MaxCost = 10_000

// Compiler compiles expressions against mailroom's CEL environment. It is
// safe for concurrent use; build one and share it, since building the
// environment is the expensive part.
type Compiler struct {
	env *cel.Env
}

// NewCompiler builds the CEL environment.
func NewCompiler() (*Compiler, error) {
	env, err := cel.NewEnv(
		cel.Variable("body", cel.DynType),
		cel.Variable("raw", cel.StringType),
		cel.Variable("headers", cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable("query", cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable("path", cel.StringType),
		cel.Variable("source", cel.StringType),
	)
	if err != nil {
		return nil, fmt.Errorf("build cel environment: %w", err)
	}
	return &Compiler{env: env}, nil
}

// Program is a compiled expression. It is safe for concurrent use.
type Program struct {
	expr string
	prg  cel.Program
	// field, if non-nil, answers EvalString from the raw body when it can.
	field *fieldExpr
}

// String returns the source expression.
func (p *Program) String() string { return p.expr }

// Compile parses and checks expr. The error says where in expr it fails.
func (c *Compiler) Compile(expr string) (*Program, error) {
	ast, iss := c.env.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("compile %q: %w", expr, iss.Err())
	}
	prg, err := c.env.Program(ast, programOptions...)
	if err != nil {
		return nil, fmt.Errorf("compile %q: %w", expr, err)
	}
	return &Program{expr: expr, prg: prg, field: parseFieldExpr(expr)}, nil
}

// programOptions bound every program's evaluation at [MaxCost].
//
// CEL charges a substring search the product of a tenth of each length,
// about a hundred times what it takes next to a comprehension step: with
// that charge, raw.contains("...") over a 100 KiB body would not fit a
// budget it uses a few percent of. It is charged one unit per KiB
// searched instead, which measures like the rest (BenchmarkCostUnit).
var programOptions = []cel.ProgramOption{
	cel.CostLimit(MaxCost),
	cel.InterruptCheckFrequency(100),
	cel.CostTrackerOptions(interpreter.OverloadCostTracker(overloads.ContainsString, func(args []ref.Val, _ ref.Val) *uint64 {
		var n uint64
		for _, a := range args {
			if s, ok := a.(types.String); ok {
				n += uint64(len(s))
			}
		}
		cost := 1 + n/1024
		return &cost
	})),
}

// Check compiles expr and discards the program, for config validation of
// expressions that yield a value (dedup keys, event types).
func (c *Compiler) Check(expr string) error {
	_, err := c.Compile(expr)
	return err
}

// CheckFilter compiles a filter as [Compiler.CompileFilter] does and
// discards the program. Every filter (connections, wait tasks, async
// tools) is checked with it, so what is accepted is what can run.
func (c *Compiler) CheckFilter(expr string) error {
	_, err := c.CompileFilter(expr)
	return err
}

// CompileFilter compiles a filter, which must yield a bool.
func (c *Compiler) CompileFilter(expr string) (*Program, error) {
	ast, iss := c.env.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("compile filter %q: %w", expr, iss.Err())
	}
	if t := ast.OutputType(); t != cel.BoolType && t != cel.DynType {
		return nil, fmt.Errorf("compile filter %q: yields %s, want bool", expr, t)
	}
	return c.Compile(expr)
}

// Match evaluates p as a filter: true only when it yields true.
func (p *Program) Match(in *Input) bool {
	ok, _ := p.MatchCost(in)
	return ok
}

// MatchCost evaluates p as a filter, as [Program.Match] does, and also
// returns the CEL cost the evaluation took; a cost over [MaxCost] means it
// was stopped there (and did not match).
func (p *Program) MatchCost(in *Input) (match bool, cost uint64) {
	v, det, err := p.prg.Eval(in.activation())
	if det != nil && det.ActualCost() != nil {
		cost = *det.ActualCost()
	}
	if err != nil {
		return false, cost
	}
	b, ok := v.(types.Bool)
	return ok && bool(b), cost
}

// Eval evaluates p and returns its value.
func (p *Program) Eval(in *Input) (ref.Val, error) {
	v, _, err := p.prg.Eval(in.activation())
	if err != nil {
		return nil, fmt.Errorf("evaluate %q: %w", p.expr, err)
	}
	return v, nil
}

// EvalString evaluates p and renders a scalar result as a string: the
// form dedup keys and event types take. Null or an empty string yields "".
// A string, an int or uint (a JSON integer, rendered exactly as it was
// written) and a bool are rendered; a double is refused with an error,
// because a JSON number that decodes to a double (a fraction, an exponent,
// an integer beyond 64 bits) has lost its text, and two distinct ids must
// never become one key.
//
// Simple field expressions (body.id, body.data.object.id,
// has(body.type) ? body.type : "") over a JSON object body are answered
// by scanning the raw body for that field, without decoding the body or
// running CEL; the result is the same.
func (p *Program) EvalString(in *Input) (string, error) {
	if p.field != nil && !in.parsed {
		if s, ok := p.field.eval(in); ok {
			return s, nil
		}
	}
	v, err := p.Eval(in)
	if err != nil {
		return "", err
	}
	switch x := v.(type) {
	case types.String:
		return string(x), nil
	case types.Int:
		return strconv.FormatInt(int64(x), 10), nil
	case types.Uint:
		return strconv.FormatUint(uint64(x), 10), nil
	case types.Double:
		return "", fmt.Errorf("evaluate %q: yields the number %v, which is not an integer of at most 64 bits, so its exact text is lost; use a string field", p.expr, float64(x))
	case types.Bool:
		return strconv.FormatBool(bool(x)), nil
	case types.Null:
		return "", nil
	}
	return "", fmt.Errorf("evaluate %q: yields %s, want a string or number", p.expr, v.Type().TypeName())
}

// Input is what expressions see of one request. Build it with [NewInput];
// the body is parsed once, on first use.
type Input struct {
	Source  string
	Path    string
	Query   url.Values
	Header  http.Header
	Body    []byte
	act     map[string]any
	decoded any
	parsed  bool
	// json is whether Body is valid JSON, once the fast path asked
	// (jsonUnknown before): the dedup key and the event type both ask.
	json jsonValidity
}

// jsonValidity is what [Input.validJSON] found.
type jsonValidity uint8

const (
	jsonUnknown jsonValidity = iota
	jsonValid
	jsonInvalid
)

// validJSON reports whether in's body is valid JSON ([rawjson.Valid]),
// checking it only the first time.
func (in *Input) validJSON() bool {
	if in.json == jsonUnknown {
		in.json = jsonInvalid
		if rawjson.Valid(in.Body) {
			in.json = jsonValid
		}
	}
	return in.json == jsonValid
}

// NewInput returns the input for a request.
func NewInput(source, path string, query url.Values, header http.Header, body []byte) *Input {
	return &Input{Source: source, Path: path, Query: query, Header: header, Body: body}
}

// Decoded returns the body as expressions see it (see [decodeBody]): JSON
// as maps and lists with exact numbers, a form as a map of strings,
// anything else as a string.
func (in *Input) Decoded() any {
	if in.parsed {
		return in.decoded
	}
	in.parsed = true
	in.decoded = decodeBody(in.Header.Get("Content-Type"), in.Body)
	return in.decoded
}

// Prepare decodes the body and builds what expressions see now. An Input
// is not safe for concurrent use until Prepare has returned; after it,
// any number of goroutines may evaluate programs over it.
func (in *Input) Prepare() { in.activation() }

func (in *Input) activation() map[string]any {
	if in.act != nil {
		return in.act
	}
	headers := make(map[string]string, len(in.Header))
	for k, vs := range in.Header {
		headers[strings.ToLower(k)] = strings.Join(vs, ", ")
	}
	in.act = map[string]any{
		"body":    in.Decoded(),
		"raw":     string(in.Body),
		"headers": headers,
		"query":   firstValues(in.Query),
		"path":    in.Path,
		"source":  in.Source,
	}
	return in.act
}
