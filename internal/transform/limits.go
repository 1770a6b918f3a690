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
func (r *run) restrict() {
	vm := r.vm
	m := &meter{vm: vm, left: MaxAllocBytes}
	r.meter = m
	global := vm.GlobalObject()
	for _, name := range absentGlobals {
		_ = global.Delete(name)
	}
	length := func(v goja.Value) int64 {
		if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
			return 0
		}
		if s, ok := primitiveString(v); ok {
			return int64(len(s))
		}
		o := v.ToObject(vm)
		l := o.Get("length")
		if l == nil {
			return 0
		}
		f := l.ToFloat()
		if math.IsNaN(f) || f <= 0 {
			return 0
		}
		return int64(min(f, math.MaxInt64/2))
	}
	str := func(v goja.Value) int64 { return int64(len(v.String())) }
	// this converts the this of a String.prototype call to the string it
	// stands for, once, so that its length is known before the call.
	this := func(call *goja.FunctionCall) int64 {
		if _, ok := primitiveString(call.This); !ok {
			call.This = vm.ToValue(call.This.String())
		}
		return str(call.This)
	}
	arg := func(call goja.FunctionCall, i int) goja.Value { return call.Argument(i) }
	object := func(name string) *goja.Object { return global.Get(name).ToObject(vm) }

	// String.prototype: outputs set by an argument.
	sp := object("String").Get("prototype").ToObject(vm)
	wrapCall(vm, sp, "repeat", func(call goja.FunctionCall, orig func(goja.FunctionCall) goja.Value) goja.Value {
		n, count := this(&call), arg(call, 0).ToFloat()
		if count > 0 && !math.IsInf(count, 0) {
			m.charge(mul(n, int64(min(count, math.MaxInt64/2))))
		}
		return orig(call)
	})
	pad := func(call goja.FunctionCall, orig func(goja.FunctionCall) goja.Value) goja.Value {
		this(&call)
		if n := arg(call, 0).ToFloat(); n > 0 {
			m.charge(int64(min(n, math.MaxInt64/2)))
		}
		return orig(call)
	}
	wrapCall(vm, sp, "padStart", pad)
	wrapCall(vm, sp, "padEnd", pad)
	for _, name := range []string{"replace", "replaceAll"} {
		wrapCall(vm, sp, name, func(call goja.FunctionCall, orig func(goja.FunctionCall) goja.Value) goja.Value {
			n := this(&call)
			repl := arg(call, 1)
			if fn, ok := goja.AssertFunction(repl); ok {
				// Each replacement the function returns is charged as it
				// comes back: the result string collects them all.
				call.Arguments = append([]goja.Value{arg(call, 0)}, vm.ToValue(func(c goja.FunctionCall) goja.Value {
					v, err := fn(c.This, c.Arguments...)
					if err != nil {
						panic(err)
					}
					m.charge(str(v))
					return v
				}))
			} else {
				m.charge(replaceCost(n, repl.String()))
			}
			return orig(call)
		})
	}
	wrapCall(vm, sp, "split", func(call goja.FunctionCall, orig func(goja.FunctionCall) goja.Value) goja.Value {
		m.charge(mul(this(&call)+1, elementBytes))
		return orig(call)
	})
	// Object.keys and the like over a string list its every character.
	op := object("Object")
	for _, name := range []string{"keys", "values", "entries", "getOwnPropertyNames", "getOwnPropertyDescriptors"} {
		wrap(vm, op, name, func(call goja.FunctionCall) {
			if s, ok := primitiveString(arg(call, 0)); ok {
				m.charge(mul(int64(len(s)), 4*elementBytes))
			}
		})
	}

	// Array.prototype: every method but the constant-time ones walks
	// 0..length, whatever the array holds; those that build charge the
	// array they build.
	ap := object("Array").Get("prototype").ToObject(vm)
	walkOnly := map[string]bool{"every": true, "some": true, "forEach": true, "reduce": true, "reduceRight": true,
		"find": true, "findIndex": true, "findLast": true, "findLastIndex": true, "indexOf": true, "lastIndexOf": true,
		"includes": true, "shift": true}
	// toString calls this.join, which charges.
	constant := map[string]bool{"constructor": true, "at": true, "pop": true, "keys": true, "values": true, "entries": true, "toString": true}
	for _, name := range ap.GetOwnPropertyNames() {
		if constant[name] {
			continue
		}
		if _, ok := goja.AssertFunction(ap.Get(name)); !ok {
			continue
		}
		per := int64(elementBytes)
		if walkOnly[name] {
			per = 1
		}
		switch name {
		case "push", "unshift":
			wrap(vm, ap, name, func(call goja.FunctionCall) {
				m.charge(mul(int64(len(call.Arguments)), elementBytes))
				if name == "unshift" {
					m.charge(length(call.This))
				}
			})
		case "concat":
			wrap(vm, ap, name, func(call goja.FunctionCall) {
				n := length(call.This)
				for _, a := range call.Arguments {
					n += max(1, length(a))
				}
				m.charge(mul(n, elementBytes))
			})
		case "slice":
			wrap(vm, ap, name, func(call goja.FunctionCall) {
				n := length(call.This)
				from, to := relIndex(arg(call, 0), n, 0), relIndex(arg(call, 1), n, n)
				m.charge(mul(max(to-from, 0), elementBytes))
			})
		case "join", "toLocaleString":
			// The separator between every two elements, then the
			// string built: nested arrays are joined by nested calls,
			// each charging its own result as it returns.
			wrapCall(vm, ap, name, func(call goja.FunctionCall, orig func(goja.FunctionCall) goja.Value) goja.Value {
				n := length(call.This)
				sep := int64(1)
				if name == "join" && !goja.IsUndefined(arg(call, 0)) {
					sep = str(arg(call, 0))
				}
				m.charge(n + mul(n, sep))
				out := orig(call)
				m.charge(str(out))
				return out
			})
		default:
			wrap(vm, ap, name, func(call goja.FunctionCall) { m.charge(mul(length(call.This), per)) })
		}
	}
	arrayCtor := object("Array")
	wrap(vm, arrayCtor, "from", func(call goja.FunctionCall) { m.charge(mul(length(arg(call, 0)), elementBytes)) })
	// Array and string iterators: spread ([...a], f(...a)) and for-of
	// step through them, building an element per step.
	for _, seed := range []goja.Value{vm.NewArray(), vm.ToValue("")} {
		it, ok := goja.AssertFunction(seed.ToObject(vm).GetSymbol(goja.SymIterator))
		if !ok {
			continue
		}
		iter, err := it(seed)
		if err != nil {
			continue
		}
		if proto := iter.ToObject(vm).Prototype(); proto != nil {
			wrap(vm, proto, "next", func(goja.FunctionCall) { m.charge(elementBytes) })
		}
	}
	// Calls with an array-like of arguments copy it onto the stack.
	fp := object("Function").Get("prototype").ToObject(vm)
	wrap(vm, fp, "apply", func(call goja.FunctionCall) { m.charge(mul(length(arg(call, 1)), elementBytes)) })
	reflectObj := object("Reflect")
	wrap(vm, reflectObj, "apply", func(call goja.FunctionCall) { m.charge(mul(length(arg(call, 2)), elementBytes)) })
	wrap(vm, reflectObj, "construct", func(call goja.FunctionCall) { m.charge(mul(length(arg(call, 1)), elementBytes)) })
	for _, name := range []string{"fromCharCode", "fromCodePoint"} {
		wrap(vm, object("String"), name, func(call goja.FunctionCall) { m.charge(int64(len(call.Arguments))) })
	}

	// JSON.stringify serialises a value once per reference to it: it
	// runs with a replacer that charges every member as it is written.
	wrapCall(vm, object("JSON"), "stringify", func(call goja.FunctionCall, orig func(goja.FunctionCall) goja.Value) goja.Value {
		call.Arguments = []goja.Value{arg(call, 0), r.meteredReplacer(arg(call, 1), arg(call, 2)), arg(call, 2)}
		return orig(call)
	})
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

// wrap replaces obj[name], a built-in function, with one that calls before
// first (which may throw) and then the built-in, with the same this and
// arguments. The built-in is called as the Go function it is, so its
// exceptions and interrupts pass through unchanged.
func wrap(vm *goja.Runtime, obj *goja.Object, name string, before func(goja.FunctionCall)) {
	wrapCall(vm, obj, name, func(call goja.FunctionCall, orig func(goja.FunctionCall) goja.Value) goja.Value {
		before(call)
		return orig(call)
	})
}

// wrapCall replaces obj[name], a built-in function, with f, which gets the
// built-in to call. The property keeps its attributes (writable,
// configurable, not enumerable), its name and its length.
func wrapCall(vm *goja.Runtime, obj *goja.Object, name string, f func(goja.FunctionCall, func(goja.FunctionCall) goja.Value) goja.Value) {
	fv := obj.Get(name)
	if fv == nil {
		return
	}
	orig, ok := fv.Export().(func(goja.FunctionCall) goja.Value)
	if !ok {
		return
	}
	w := vm.ToValue(func(call goja.FunctionCall) goja.Value { return f(call, orig) }).ToObject(vm)
	_ = w.DefineDataProperty("name", vm.ToValue(name), goja.FLAG_FALSE, goja.FLAG_TRUE, goja.FLAG_FALSE)
	if length := fv.ToObject(vm).Get("length"); length != nil {
		_ = w.DefineDataProperty("length", length, goja.FLAG_FALSE, goja.FLAG_TRUE, goja.FLAG_FALSE)
	}
	_ = obj.DefineDataProperty(name, w, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)
}
