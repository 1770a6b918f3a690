package transform

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dlclark/regexp2"
	"github.com/dop251/goja"
	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/parser"
)

// goja interrupts JavaScript code at once, but not a built-in function
// that is running: a single call such as "x".repeat(2**30), new
// Array(2**26).fill(0) or JSON.stringify of a structure that shares its
// parts ([a, a] nested 40 deep) allocates gigabytes or runs for minutes
// before the interrupt can take effect, and goja accounts no memory. This
// file closes those doors, so that what a run allocates and how long it
// runs are bounded by its time budget and [MaxAllocBytes]:
//
//   - The built-ins whose work is set by an argument or a length rather
//     than by data that already exists (a repeat count, a padding length,
//     an array's length, which may be 2^32-1 with no element behind it, a
//     replacement string repeated at every match, a structure serialised
//     once per reference) charge what they are about to build or walk to a
//     per-run meter before they run; past [MaxAllocBytes] the call throws
//     and the run ends with [ErrMemory], which the script cannot catch.
//   - BigInt is not available (literals are refused at compile, the
//     constructors are absent): 2n ** (2n ** 40n) is a single operator
//     that no function wrapper can charge.
//   - ArrayBuffer, DataView and the typed arrays are absent: their size is
//     an argument, allocated in one step.
//   - A regular expression that goja runs by backtracking (back-references,
//     look-arounds) is stopped after [MaxRegexpTime]: /^(a|a?)+\1$/ over 28
//     characters otherwise takes minutes in one call.
//
// Work done by JavaScript code itself (loops, string concatenation,
// object creation) stays bounded by the time budget, as it always was.

// MaxAllocBytes bounds what the built-ins of one run may allocate or walk,
// summed over the run (a charge, not a measure of live memory): about a
// byte per string character or walked array element and 16 per array
// element built. Far above what a transformation of a webhook needs, far
// below what would hurt the process.
const MaxAllocBytes = 64 << 20

// MaxRegexpTime bounds one match of a regular expression that goja runs by
// backtracking. The match then fails (no match), and a run that has spent
// its budget ends with [ErrTimeout].
const MaxRegexpTime = 100 * time.Millisecond

// ErrMemory: the run's built-ins went over [MaxAllocBytes].
var ErrMemory = errors.New("transformation exceeded its memory budget")

// absentGlobals are left out of every run's global object (see above).
var absentGlobals = []string{"BigInt", "BigInt64Array", "BigUint64Array", "ArrayBuffer", "SharedArrayBuffer", "DataView",
	"Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array", "Uint32Array",
	"Float32Array", "Float64Array", "Atomics"}

var regexpTimeout sync.Once

// boundRegexps sets the match timeout of every regexp2 pattern compiled
// from now on; goja compiles its backtracking patterns when a run first
// executes them, so calling this before any run covers them all.
func boundRegexps() {
	regexpTimeout.Do(func() { regexp2.DefaultMatchTimeout = MaxRegexpTime })
}

// checkSyntax refuses what a script may not use: BigInt literals.
func checkSyntax(script string) error {
	prog, err := parser.ParseFile(nil, ScriptName, script, 0)
	if err != nil {
		return nil // goja.Compile reports it, with its position
	}
	var found *ast.NumberLiteral
	walkAST(reflect.ValueOf(prog), func(n *ast.NumberLiteral) bool {
		if _, ok := n.Value.(*big.Int); ok {
			found = n
			return false
		}
		return true
	})
	if found != nil {
		line := 1 + strings.Count(script[:min(max(int(found.Idx)-1, 0), len(script))], "\n")
		return fmt.Errorf("BigInt literal %s on line %d: BigInt is not available in transformations (its operators cannot be bounded)", found.Literal, line)
	}
	return nil
}

var (
	numberLiteralType = reflect.TypeOf((*ast.NumberLiteral)(nil))
	astPkg            = numberLiteralType.Elem().PkgPath()
)

// walkAST calls visit for every number literal under v, a node of the
// syntax tree, until visit returns false.
func walkAST(v reflect.Value, visit func(*ast.NumberLiteral) bool) bool {
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			return true
		}
		return walkAST(v.Elem(), visit)
	case reflect.Pointer:
		if v.IsNil() {
			return true
		}
		if v.Type() == numberLiteralType {
			return visit(v.Interface().(*ast.NumberLiteral))
		}
		if v.Type().Elem().PkgPath() != astPkg {
			return true // file.File, scopes: not part of the tree
		}
		return walkAST(v.Elem(), visit)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() && !walkAST(v.Field(i), visit) {
				return false
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			if !walkAST(v.Index(i), visit) {
				return false
			}
		}
	}
	return true
}

// meter is what one run's built-ins have charged, and whether the run was
// stopped (its time budget spent, its context ended). charge is called by
// the run's goroutine only; stop from any.
type meter struct {
	vm      *goja.Runtime
	left    int64
	err     error                 // set once the budget is spent
	stopped atomic.Pointer[error] // set by stop
}

// stop ends the run with err: JavaScript code at its next instruction,
// a metered built-in at its next charge.
func (m *meter) stop(err error) {
	m.stopped.CompareAndSwap(nil, &err)
	m.vm.Interrupt(err)
}

// reason returns why the run was ended by its meter or by stop, or nil.
func (m *meter) reason() error {
	if m.err != nil {
		return m.err
	}
	if p := m.stopped.Load(); p != nil {
		return *p
	}
	return nil
}

// charge takes n from the budget, or ends the run: it interrupts the
// runtime (so that no catch block can carry on) and throws out of the
// built-in that was about to run. A run already stopped ends the same
// way, so that a built-in calling back here many times (a spread, a
// JSON.stringify) stops with it.
func (m *meter) charge(n int64) {
	if p := m.stopped.Load(); p != nil {
		panic(m.vm.NewGoError(*p))
	}
	if m.err == nil && n >= 0 && n <= m.left {
		m.left -= n
		return
	}
	if m.err == nil {
		m.err = fmt.Errorf("%w: its built-in functions would allocate or walk more than %d MiB", ErrMemory, MaxAllocBytes>>20)
	}
	m.vm.Interrupt(m.err)
	panic(m.vm.NewGoError(m.err))
}

// mul returns a*b, saturated at math.MaxInt64 for non-negative operands.
func mul(a, b int64) int64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	if a > math.MaxInt64/b {
		return math.MaxInt64
	}
	return a * b
}

// elementBytes is what a built array element is charged: a goja value.
const elementBytes = 16

// restrict removes the absent globals from r's runtime and wraps the
// built-ins that must charge the meter.
//
// It runs for every run, on a runtime that has built almost none of its
// built-ins yet (goja builds each when first reached, and building one is
// the only way to replace or delete it), so it touches only what it must.
// The hooks are functions of the package, made once per process; a run
// makes a proxy per wrapped built-in, all sharing one handler that finds
// the hook by the built-in (see [run.wrapAll]). The methods of
// Array.prototype are named in [arrayHooks] rather than listed, which
// would build them all; TestArrayHooksCoverPrototype checks the table
// against goja's Array.prototype.
func (r *run) restrict() {
	vm := r.vm
	r.meter = &meter{vm: vm, left: MaxAllocBytes}
	global := vm.GlobalObject()
	for _, name := range absentGlobals {
		_ = global.Delete(name)
	}
	object := func(name string) *goja.Object { return global.Get(name).ToObject(vm) }
	str := object("String")
	r.wrapAll(str.Get("prototype").ToObject(vm), stringProtoHooks)
	r.wrapAll(str, stringHooks)
	r.wrapAll(object("Object"), objectHooks)
	array := object("Array")
	arrayProto := array.Get("prototype").ToObject(vm)
	r.wrapAll(arrayProto, arrayHooks)
	r.wrapAll(array, arrayCtorHooks)
	r.wrapAll(object("Function").Get("prototype").ToObject(vm), functionProtoHooks)
	r.wrapAll(object("Reflect"), reflectHooks)
	r.wrapAll(object("JSON"), jsonHooks)
	// Array and string iterators: spread ([...a], f(...a)) and for-of
	// step through them, building an element per step. The array's is
	// reached through Array.prototype.values (which is its
	// [Symbol.iterator]) rather than the symbol, which would build all of
	// Array.prototype's symbol properties.
	for _, seed := range []struct {
		this goja.Value
		fn   goja.Value
	}{
		{vm.NewArray(), arrayProto.Get("values")},
		{vm.ToValue(""), str.Get("prototype").ToObject(vm).GetSymbol(goja.SymIterator)},
	} {
		it, ok := goja.AssertFunction(seed.fn)
		if !ok {
			continue
		}
		iter, err := it(seed.this)
		if err != nil {
			continue
		}
		if proto := iter.ToObject(vm).Prototype(); proto != nil {
			r.wrapAll(proto, iteratorHooks)
		}
	}
}

// A hook is what a metered built-in runs instead of orig, the built-in:
// it charges r's meter and calls orig, with the same this and arguments.
type hook func(r *run, call goja.FunctionCall, orig func(goja.FunctionCall) goja.Value) goja.Value

// namedHook is the hook of the built-in method name of an object.
type namedHook struct {
	name string
	hook hook
}

// before returns the hook that charges cost before the built-in runs.
func before(cost func(r *run, call goja.FunctionCall) int64) hook {
	return func(r *run, call goja.FunctionCall, orig func(goja.FunctionCall) goja.Value) goja.Value {
		r.meter.charge(cost(r, call))
		return orig(call)
	}
}

// perElement returns the hook of an Array.prototype method that walks
// 0..length of its this, charged per bytes a step.
func perElement(per int64) hook {
	return before(func(r *run, call goja.FunctionCall) int64 { return mul(r.length(call.This), per) })
}

// stringProtoHooks: String.prototype methods whose output is set by an
// argument.
var stringProtoHooks = []namedHook{
	{"repeat", func(r *run, call goja.FunctionCall, orig func(goja.FunctionCall) goja.Value) goja.Value {
		n, count := r.this(&call), call.Argument(0).ToFloat()
		if count > 0 && !math.IsInf(count, 0) {
			r.meter.charge(mul(n, int64(min(count, math.MaxInt64/2))))
		}
		return orig(call)
	}},
	{"padStart", padHook},
	{"padEnd", padHook},
	{"replace", replaceHook},
	{"replaceAll", replaceHook},
	{"split", func(r *run, call goja.FunctionCall, orig func(goja.FunctionCall) goja.Value) goja.Value {
		r.meter.charge(mul(r.this(&call)+1, elementBytes))
		return orig(call)
	}},
}

func padHook(r *run, call goja.FunctionCall, orig func(goja.FunctionCall) goja.Value) goja.Value {
	r.this(&call)
	if n := call.Argument(0).ToFloat(); n > 0 {
		r.meter.charge(int64(min(n, math.MaxInt64/2)))
	}
	return orig(call)
}

func replaceHook(r *run, call goja.FunctionCall, orig func(goja.FunctionCall) goja.Value) goja.Value {
	n := r.this(&call)
	repl := call.Argument(1)
	if fn, ok := goja.AssertFunction(repl); ok {
		// Each replacement the function returns is charged as it
		// comes back: the result string collects them all.
		call.Arguments = append([]goja.Value{call.Argument(0)}, r.vm.ToValue(func(c goja.FunctionCall) goja.Value {
			v, err := fn(c.This, c.Arguments...)
			if err != nil {
				panic(err)
			}
			r.meter.charge(int64(len(v.String())))
			return v
		}))
	} else {
		r.meter.charge(replaceCost(n, repl.String()))
	}
	return orig(call)
}

// stringHooks: String's functions that build a character per argument.
var stringHooks = []namedHook{
	{"fromCharCode", argumentCount},
	{"fromCodePoint", argumentCount},
}

var argumentCount = before(func(r *run, call goja.FunctionCall) int64 { return int64(len(call.Arguments)) })

// objectHooks: Object.keys and the like over a string list its every
// character.
var objectHooks = []namedHook{
	{"keys", stringCharacters},
	{"values", stringCharacters},
	{"entries", stringCharacters},
	{"getOwnPropertyNames", stringCharacters},
	{"getOwnPropertyDescriptors", stringCharacters},
}

var stringCharacters = before(func(r *run, call goja.FunctionCall) int64 {
	if s, ok := primitiveString(call.Argument(0)); ok {
		return mul(int64(len(s)), 4*elementBytes)
	}
	return 0
})

// arrayHooks: every method of Array.prototype but the constant-time ones
// ([arrayConstant]) walks 0..length, whatever the array holds; those that
// build charge the array they build.
var arrayHooks = []namedHook{
	// Walk only.
	{"every", perElement(1)}, {"some", perElement(1)}, {"forEach", perElement(1)},
	{"reduce", perElement(1)}, {"reduceRight", perElement(1)},
	{"find", perElement(1)}, {"findIndex", perElement(1)}, {"findLast", perElement(1)}, {"findLastIndex", perElement(1)},
	{"indexOf", perElement(1)}, {"lastIndexOf", perElement(1)}, {"includes", perElement(1)}, {"shift", perElement(1)},
	// Walk and build (or move) an element per step.
	{"copyWithin", perElement(elementBytes)}, {"fill", perElement(elementBytes)}, {"filter", perElement(elementBytes)},
	{"flat", perElement(elementBytes)}, {"flatMap", perElement(elementBytes)}, {"map", perElement(elementBytes)},
	{"reverse", perElement(elementBytes)}, {"sort", perElement(elementBytes)}, {"splice", perElement(elementBytes)},
	{"with", perElement(elementBytes)}, {"toReversed", perElement(elementBytes)}, {"toSorted", perElement(elementBytes)},
	{"toSpliced", perElement(elementBytes)},
	{"push", before(func(r *run, call goja.FunctionCall) int64 {
		return mul(int64(len(call.Arguments)), elementBytes)
	})},
	{"unshift", func(r *run, call goja.FunctionCall, orig func(goja.FunctionCall) goja.Value) goja.Value {
		r.meter.charge(mul(int64(len(call.Arguments)), elementBytes))
		r.meter.charge(r.length(call.This))
		return orig(call)
	}},
	{"concat", before(func(r *run, call goja.FunctionCall) int64 {
		n := r.length(call.This)
		for _, a := range call.Arguments {
			n += max(1, r.length(a))
		}
		return mul(n, elementBytes)
	})},
	{"slice", before(func(r *run, call goja.FunctionCall) int64 {
		n := r.length(call.This)
		from, to := relIndex(call.Argument(0), n, 0), relIndex(call.Argument(1), n, n)
		return mul(max(to-from, 0), elementBytes)
	})},
	{"join", joinHook(true)},
	{"toLocaleString", joinHook(false)},
}

// arrayConstant are the methods of Array.prototype that run in constant
// time, left unwrapped (toString calls this.join, which charges).
var arrayConstant = []string{"constructor", "at", "pop", "keys", "values", "entries", "toString"}

// joinHook charges the separator between every two elements, then the
// string built: nested arrays are joined by nested calls, each charging
// its own result as it returns. sep: the first argument is the separator
// (join; toLocaleString uses a comma).
func joinHook(sep bool) hook {
	return func(r *run, call goja.FunctionCall, orig func(goja.FunctionCall) goja.Value) goja.Value {
		n := r.length(call.This)
		per := int64(1)
		if sep && !goja.IsUndefined(call.Argument(0)) {
			per = int64(len(call.Argument(0).String()))
		}
		r.meter.charge(n + mul(n, per))
		out := orig(call)
		r.meter.charge(int64(len(out.String())))
		return out
	}
}

var arrayCtorHooks = []namedHook{
	{"from", before(func(r *run, call goja.FunctionCall) int64 { return mul(r.length(call.Argument(0)), elementBytes) })},
}

// iteratorHooks: the next of the array and string iterators.
var iteratorHooks = []namedHook{
	{"next", before(func(*run, goja.FunctionCall) int64 { return elementBytes })},
}

// Calls with an array-like of arguments copy it onto the stack.
var (
	functionProtoHooks = []namedHook{
		{"apply", before(func(r *run, call goja.FunctionCall) int64 { return mul(r.length(call.Argument(1)), elementBytes) })},
	}
	reflectHooks = []namedHook{
		{"apply", before(func(r *run, call goja.FunctionCall) int64 { return mul(r.length(call.Argument(2)), elementBytes) })},
		{"construct", before(func(r *run, call goja.FunctionCall) int64 { return mul(r.length(call.Argument(1)), elementBytes) })},
	}
)

// jsonHooks: JSON.stringify serialises a value once per reference to it:
// it runs with a replacer that charges every member as it is written.
var jsonHooks = []namedHook{
	{"stringify", func(r *run, call goja.FunctionCall, orig func(goja.FunctionCall) goja.Value) goja.Value {
		call.Arguments = []goja.Value{call.Argument(0), r.meteredReplacer(call.Argument(1), call.Argument(2)), call.Argument(2)}
		return orig(call)
	}},
}

// length is the length of v, a string or an array-like, as the built-ins
// that walk it read it; 0 for undefined and null.
func (r *run) length(v goja.Value) int64 {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return 0
	}
	if s, ok := primitiveString(v); ok {
		return int64(len(s))
	}
	l := v.ToObject(r.vm).Get("length")
	if l == nil {
		return 0
	}
	f := l.ToFloat()
	if math.IsNaN(f) || f <= 0 {
		return 0
	}
	return int64(min(f, math.MaxInt64/2))
}

// this converts the this of a String.prototype call to the string it
// stands for, once, so that its length is known before the call, and
// returns that length.
func (r *run) this(call *goja.FunctionCall) int64 {
	if _, ok := primitiveString(call.This); !ok {
		call.This = r.vm.ToValue(call.This.String())
	}
	return int64(len(call.This.String()))
}

// replaceCost is what replacing in a string of n characters with repl
// may build: the string, plus at each of at most n+1 matches the
// replacement, where $& and $1…$99 insert at most n characters over all
// matches (matches do not overlap) and $` and $' up to n at each.
func replaceCost(n int64, repl string) int64 {
	cost := n + mul(n+1, int64(len(repl)))
	for i := 0; i+1 < len(repl); i++ {
		if repl[i] != '$' {
			continue
		}
		switch c := repl[i+1]; {
		case c == '`' || c == '\'':
			cost += mul(n+1, n)
		case c == '&' || c >= '0' && c <= '9' || c == '<':
			cost += n
		}
	}
	if cost < 0 {
		return math.MaxInt64
	}
	return cost
}

// meteredReplacer returns the replacer JSON.stringify runs with: it
// applies the script's replacer (a function, or an array of the keys to
// keep, applied as the specification does) and charges each member: its
// key, a string's length, a few bytes for anything else, and with an
// indent (space) the indentation of its depth.
func (r *run) meteredReplacer(user, space goja.Value) goja.Value {
	vm, m := r.vm, r.meter
	fn, isFn := goja.AssertFunction(user)
	var keep []string // the keys of an array replacer; nil for none
	if o, ok := user.(*goja.Object); ok && !isFn && o.ClassName() == "Array" {
		keep = []string{}
		seen := map[string]bool{}
		for i := range min(o.Get("length").ToInteger(), 1<<20) {
			v := o.Get(strconv.FormatInt(i, 10))
			if isObject(v) {
				continue // String and Number objects: rare, left out
			}
			switch x := v.Export().(type) {
			case string, int64, float64:
				if k := fmt.Sprint(x); !seen[k] {
					seen[k] = true
					keep = append(keep, k)
				}
			}
		}
	}
	indent := int64(0)
	if space != nil && !goja.IsUndefined(space) && !goja.IsNull(space) {
		if s, ok := space.Export().(string); ok {
			indent = int64(min(len(s), 10))
		} else {
			indent = min(max(space.ToInteger(), 0), 10)
		}
	}
	var depth map[*goja.Object]int64
	if indent > 0 {
		depth = map[*goja.Object]int64{}
	}
	return vm.ToValue(func(call goja.FunctionCall) goja.Value {
		key, v := call.Argument(0), call.Argument(1)
		if isFn {
			var err error
			if v, err = fn(call.This, key, v); err != nil {
				panic(err)
			}
		}
		cost := int64(len(key.String())) + elementBytes
		if s, ok := primitiveString(v); ok {
			cost += int64(len(s))
		}
		if o, ok := v.(*goja.Object); ok && keep != nil && o.ClassName() != "Array" && !isCallable(o) {
			// An array replacer keeps these keys, in its order.
			picked := vm.NewObject()
			for _, k := range keep {
				if kv := o.Get(k); kv != nil && !goja.IsUndefined(kv) {
					_ = picked.Set(k, kv)
				}
			}
			v = picked
		}
		if depth != nil {
			d := int64(0)
			if h, ok := call.This.(*goja.Object); ok {
				d = depth[h]
			}
			cost += mul(d+1, indent) + 1
			if o, ok := v.(*goja.Object); ok {
				depth[o] = d + 1
			}
		}
		m.charge(cost)
		return v
	})
}

func isObject(v goja.Value) bool { _, ok := v.(*goja.Object); return ok }

var stringType = reflect.TypeOf("")

// primitiveString returns v's text if v is a string primitive, without
// converting anything else (an object's export copies all of it).
func primitiveString(v goja.Value) (string, bool) {
	if v == nil || isObject(v) || v.ExportType() != stringType {
		return "", false
	}
	return v.String(), true
}

func isCallable(o *goja.Object) bool { _, ok := goja.AssertFunction(o); return ok }

// relIndex is a relative index argument of slice resolved against length
// n: negative counts from the end, undefined is dflt.
func relIndex(v goja.Value, n, dflt int64) int64 {
	if v == nil || goja.IsUndefined(v) {
		return dflt
	}
	f := v.ToFloat()
	switch {
	case math.IsNaN(f):
		return 0
	case f < 0:
		return max(n+int64(max(f, -float64(n))), 0)
	default:
		return min(int64(min(f, float64(n))), n)
	}
}

// wrapAll replaces each named built-in function of obj with a proxy of
// it whose call runs the hook. A proxy costs a run less to build than a
// new function, and it is the built-in in all but its call: same name,
// same length, same properties, as built-ins are proxied in JavaScript
// (Function.prototype.toString shows "function () { [native code] }"
// without the name, as Node does for a proxy). The built-in is called as
// the Go function it is, so its exceptions and interrupts pass through
// unchanged. The property keeps its attributes (writable, configurable,
// not enumerable). None of the wrapped built-ins is a constructor, so the
// proxies are not either.
func (r *run) wrapAll(obj *goja.Object, hooks []namedHook) {
	vm := r.vm
	if r.traps == nil {
		r.wrapped = make(map[*goja.Object]wrapped, 64)
		r.traps = &goja.ProxyTrapConfig{Apply: r.apply}
	}
	for _, h := range hooks {
		fv := obj.Get(h.name)
		if fv == nil {
			continue
		}
		target, ok := fv.(*goja.Object)
		if !ok {
			continue
		}
		r.wrapped[target] = wrapped{hook: h.hook}
		_ = obj.DefineDataProperty(h.name, vm.ToValue(vm.NewProxy(target, r.traps)), goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)
	}
}

// wrapped is a built-in that a proxy of the run wraps, and its hook.
type wrapped struct {
	hook hook
	orig func(goja.FunctionCall) goja.Value // the built-in; nil until first called
}

// apply is the call of every proxy of a wrapped built-in (target).
func (r *run) apply(target *goja.Object, this goja.Value, args []goja.Value) goja.Value {
	w := r.wrapped[target]
	if w.orig == nil {
		// Most runs call few of the wrapped built-ins: each is read as
		// the Go function it is when first called.
		orig, ok := target.Export().(func(goja.FunctionCall) goja.Value)
		if !ok {
			panic(r.vm.NewTypeError("built-in %s is not a native function", target))
		}
		w.orig = orig
		r.wrapped[target] = w
	}
	return w.hook(r, goja.FunctionCall{This: this, Arguments: args}, w.orig)
}
