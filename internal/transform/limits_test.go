package transform

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dop251/goja"
)

// TestRunBounded runs scripts whose single built-in calls would allocate
// hundreds of megabytes or run for minutes (the sizes are kept small
// enough that the test, without the bounds, fails without harming the
// machine). Each must end with ErrMemory or ErrTimeout, having allocated
// less than MaxAllocBytes. The cases the meter stops get a budget they
// cannot reach on a loaded machine under -race, so that they end by the
// meter; the others run with the default budget. Not parallel: the
// allocation is read from the process's counters, which other tests would
// move.
func TestRunBounded(t *testing.T) {
	for _, tt := range []struct {
		name   string
		script string
		is     []error // any of
	}{
		{name: "repeat", script: `r.body = "x".repeat(2**28)`, is: []error{ErrMemory}},
		{name: "padEnd", script: `r.body = "x".padEnd(2**28)`, is: []error{ErrMemory}},
		{name: "caught", script: `try { "x".repeat(2**28) } catch (e) {}`, is: []error{ErrMemory}},
		{name: "fill", script: `new Array(2**23).fill(1)`, is: []error{ErrMemory}},
		{name: "walk of a sparse array", script: `new Array(2**30).indexOf(1)`, is: []error{ErrMemory}},
		{name: "apply", script: `const a = []; a.length = 2**24; Math.max.apply(null, a)`, is: []error{ErrMemory}},
		{name: "spread", script: `[...new Array(2**24)]`, is: []error{ErrMemory, ErrTimeout}},
		{name: "join separator", script: `new Array(1e5).join("x".repeat(1e3))`, is: []error{ErrMemory}},
		{name: "replace with $'", script: `"x".repeat(2e4).replace(/x/g, "$'")`, is: []error{ErrMemory}},
		{name: "shared parts stringified", script: `let a = [1]; for (let i = 0; i < 26; i++) a = [a, a]; JSON.stringify(a)`, is: []error{ErrMemory, ErrTimeout}},
		{name: "shared parts joined", script: `let a = [1]; for (let i = 0; i < 26; i++) a = [a, a]; String(a)`, is: []error{ErrMemory, ErrTimeout}},
		{name: "shared parts returned", script: `let a = [1]; for (let i = 0; i < 26; i++) a = [a, a]; r.body = a`, is: []error{ErrMemory, ErrTimeout}},
		{name: "deep indentation", script: `let a = []; for (let i = 0; i < 2000; i++) a = [a]; JSON.stringify(a, null, 10)`, is: []error{ErrMemory, ErrTimeout}},
		// Without MaxRegexpTime this match backtracks for longer than the
		// test binary may run.
		{name: "backtracking", script: `/^(a|a?)+\1$/.test("a".repeat(40) + "b")`, is: []error{ErrTimeout}},
		{name: "BigInt constructor", script: `BigInt(2) ** BigInt(2 ** 40)`, is: []error{ErrThrown}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := &Options{} // the defaults
			if len(tt.is) == 1 && tt.is[0] == ErrMemory {
				opts.Timeout = 5 * time.Second
			}
			p := mustCompile(t, "function handler(r) {\n"+tt.script+"\nreturn r }", opts)
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := p.Run(context.Background(), jsonRequest(`{}`), nil)
			runtime.ReadMemStats(&after)
			if !slicesContainsIs(tt.is, err) {
				t.Errorf("Run error = %v, want one of %v", err, tt.is)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > MaxAllocBytes {
				t.Errorf("the run allocated %d MiB, want less than %d MiB", got>>20, MaxAllocBytes>>20)
			}
		})
	}
}

func slicesContainsIs(targets []error, err error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

func TestCompileRefusesBigInt(t *testing.T) {
	t.Parallel()
	_, err := Compile("function handler(r) {\n  r.body = String(2n ** 64n)\n  return r\n}", nil)
	if err == nil || !strings.Contains(err.Error(), "BigInt literal 2n on line 2") {
		t.Fatalf("Compile error = %v, want the BigInt literal refused", err)
	}
	// The letter n elsewhere is not a literal.
	mustCompile(t, `function handler(r) { r.body = "10n" + /1n/.source; const n1 = 1; return r }`, nil)
}

// TestMeteredBuiltinsAgree checks that the wrapped built-ins still do what
// the specification says (outputs as Node prints them).
func TestMeteredBuiltinsAgree(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ expr, want string }{
		{`JSON.stringify({a: [1, 2, {b: "c", d: 1}], d: 1, e: undefined}, ["d", "a", "b"])`, `{"d":1,"a":[1,2,{"d":1,"b":"c"}]}`},
		{`JSON.stringify({x: 1, y: [1, {z: 2}]}, null, 2)`, "{\n  \"x\": 1,\n  \"y\": [\n    1,\n    {\n      \"z\": 2\n    }\n  ]\n}"},
		{`JSON.stringify({a: 1, b: "x"}, (k, v) => typeof v === "number" ? v * 2 : v)`, `{"a":2,"b":"x"}`},
		{`JSON.stringify({toJSON() { return [1] }})`, `[1]`},
		{`[1, [2, 3], "a"].join("-") + String([4, [5]]) + [1, 2, 3].slice(-2) + [1, 2, 3].slice(1, 2)`, `1-2,3-a4,52,32`},
		{`"abcb".replace("b", "[$&]") + "abcb".replaceAll("b", (m) => m.toUpperCase()) + "ab".repeat(2) + "7".padStart(3, "0")`, `a[b]cbaBcBabab007`},
		{`[...[1, 2], ..."ab"].length + Array.from({length: 2}).length + Math.max.apply(null, [1, 5]) + Object.keys("ab").length`, `13`},
		{`String(typeof Array.prototype.map) + Array.prototype.map.name + Array.prototype.map.length + Object.keys(Array.prototype).length`, `functionmap10`},
		{`String.prototype.repeat.name + String.prototype.repeat.length + JSON.stringify.name + JSON.stringify.length + Object.getOwnPropertyDescriptor(Array.prototype, "map").enumerable + [].map.call([1], (x) => x + 1) + (Object.getPrototypeOf([].indexOf) === Function.prototype) + Reflect.apply(Math.max, null, [1, 3])`, `repeat1stringify3false2true3`},
	} {
		p := mustCompile(t, "function handler(r) { r.body = "+tt.expr+"; return r }", nil)
		res, err := p.Run(context.Background(), jsonRequest(`{}`), nil)
		if err != nil {
			t.Errorf("%s: %v", tt.expr, err)
			continue
		}
		if got := string(res.Request.Body); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.expr, got, tt.want)
		}
	}
}

// TestArrayHooksCoverPrototype checks that every method of goja's
// Array.prototype is either metered (arrayHooks) or known to run in
// constant time (arrayConstant), so that a method a goja upgrade adds is
// not left unmetered unnoticed: restrict names the methods rather than
// listing them at every run.
func TestArrayHooksCoverPrototype(t *testing.T) {
	t.Parallel()
	known := map[string]bool{}
	for _, h := range arrayHooks {
		known[h.name] = true
	}
	for _, name := range arrayConstant {
		known[name] = true
	}
	vm := goja.New()
	proto := vm.Get("Array").ToObject(vm).Get("prototype").ToObject(vm)
	for _, name := range proto.GetOwnPropertyNames() {
		if _, ok := goja.AssertFunction(proto.Get(name)); ok && !known[name] {
			t.Errorf("Array.prototype.%s is neither metered (arrayHooks) nor listed as constant-time (arrayConstant)", name)
		}
	}
	for name := range known {
		if _, ok := goja.AssertFunction(proto.Get(name)); !ok {
			t.Errorf("Array.prototype.%s, named in arrayHooks or arrayConstant, is not a method of goja's Array.prototype", name)
		}
	}
}

// TestMeteredArrayMethodsCharge checks by effect that each metered method
// of Array.prototype is wrapped in a run: called over an array-like of
// length 2**26+1 (which the built-in would walk for seconds), it ends the run
// with ErrMemory before walking it.
func TestMeteredArrayMethodsCharge(t *testing.T) {
	t.Parallel()
	for _, h := range arrayHooks {
		if h.name == "push" {
			continue // charges its arguments, not the length
		}
		t.Run(h.name, func(t *testing.T) {
			t.Parallel()
			p := mustCompile(t, "function handler(r) { Array.prototype."+h.name+".call({length: 2**26 + 1}, () => true); return r }", &Options{Timeout: 5 * time.Second})
			if _, err := p.Run(context.Background(), jsonRequest(`{}`), nil); !errors.Is(err, ErrMemory) {
				t.Errorf("Array.prototype.%s over length 2**26+1: Run error = %v, want ErrMemory", h.name, err)
			}
		})
	}
}
