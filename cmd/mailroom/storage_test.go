package main

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runToExit runs the binary with args until it exits (at most 30s) and
// returns its exit code and output.
func runToExit(t *testing.T, cmd *exec.Cmd) (int, string) {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode(), out.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, out.String()
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v did not exit within 30s (it should refuse to start):\n%s", cmd.Args, out.String())
		return 0, ""
	}
}

// sharedDir makes a directory every user may enter (t.TempDir is private
// to its owner), removed after the test.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mailroom-shared-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// nobody is the user the permission cases run as when the test runs as
// root, for whom permission bits do not apply.
const nobody = 65534

// TestSQLitePathMistakes: a database path whose directory does not exist
// is refused in words that name the directory and the way out (it is not
// created, so a typo does not start an empty database); --create-dirs
// creates it; and a path the process may not write is reported as
// "permission denied", for the file and for its directory (SQLite's WAL
// files go beside it), never as SQLite's "unable to open database file".
func TestSQLitePathMistakes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := binary(t)
	serve := func(db string, extra ...string) *exec.Cmd {
		return exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0", "--db", "sqlite://" + db}, extra...)...)
	}

	t.Run("MissingDirectoryRefused", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "mistyped", "sub")
		db := filepath.Join(missing, "mailroom.db")
		code, out := runToExit(t, serve(db))
		if code == 0 {
			t.Fatalf("serve started on a missing directory:\n%s", out)
		}
		for _, want := range []string{"directory does not exist", missing, "--create-dirs"} {
			if !strings.Contains(out, want) {
				t.Errorf("output does not say %q:\n%s", want, out)
			}
		}
		if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the missing directory was created (stat: %v)", err)
		}
	})

	t.Run("CreateDirsCreates", func(t *testing.T) {
		db := filepath.Join(t.TempDir(), "new", "sub", "mailroom.db")
		inst := startWith(t, []string{"serve", "--listen", "127.0.0.1:0", "--db", "sqlite://" + db, "--create-dirs"})
		resp, err := http.Get("http://" + inst.addr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("/readyz = %d", resp.StatusCode)
		}
		if _, err := os.Stat(db); err != nil {
			t.Errorf("database file: %v", err)
		}
	})

	// asUnprivileged runs cmd as nobody when the test is root; otherwise
	// permission bits already apply to it.
	asUnprivileged := func(t *testing.T, cmd *exec.Cmd) *exec.Cmd {
		if os.Geteuid() == 0 {
			// The binary must be reachable by nobody.
			shared := filepath.Join(sharedDir(t), "mailroom")
			b, err := os.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(shared, b, 0o755); err != nil {
				t.Fatal(err)
			}
			cmd.Path, cmd.Args[0] = shared, shared
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
			cmd.Env = append(os.Environ(), "HOME=/", "GOCOVERDIR=")
		}
		return cmd
	}
	// readOnlyDir is a directory the unprivileged process may enter but
	// not write.
	readOnlyDir := func(t *testing.T) string {
		dir := sharedDir(t)
		if os.Geteuid() != 0 {
			if err := os.Chmod(dir, 0o555); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(dir, 0o755) })
		}
		return dir
	}
	checkDenied := func(t *testing.T, code int, out string, wants ...string) {
		t.Helper()
		if code == 0 {
			t.Fatalf("serve started on an unwritable path:\n%s", out)
		}
		for _, want := range append(wants, "permission denied") {
			if !strings.Contains(out, want) {
				t.Errorf("output does not say %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "unable to open database file") {
			t.Errorf("output repeats SQLite's code instead of the reason:\n%s", out)
		}
	}

	t.Run("UnwritableDirectory", func(t *testing.T) {
		dir := readOnlyDir(t)
		db := filepath.Join(dir, "mailroom.db")
		code, out := runToExit(t, asUnprivileged(t, serve(db)))
		checkDenied(t, code, out, db)
	})

	t.Run("WritableFileInUnwritableDirectory", func(t *testing.T) {
		dir := readOnlyDir(t)
		db := filepath.Join(dir, "mailroom.db")
		if os.Geteuid() == 0 {
			if err := os.WriteFile(db, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(db, nobody, nobody); err != nil {
				t.Fatal(err)
			}
		} else {
			os.Chmod(dir, 0o755)
			if err := os.WriteFile(db, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			os.Chmod(dir, 0o555)
		}
		code, out := runToExit(t, asUnprivileged(t, serve(db)))
		checkDenied(t, code, out, "cannot create files in directory "+dir)
	})
}

// TestReadyzReflectsDiskFull: /readyz answers 503 while the database's
// file system is full (ingestion answers 503 too), and 200 again once
// there is room. The file system is a small tmpfs mounted for the test,
// which needs root.
func TestReadyzReflectsDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", dir).CombinedOutput(); err != nil {
		msg := "cannot mount a tmpfs (needs root): " + strings.TrimSpace(string(out))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	inst := startWith(t, []string{"serve", "--listen", "127.0.0.1:0", "--db", "sqlite://" + filepath.Join(dir, "mailroom.db")})
	base := "http://" + inst.addr
	status := func(method, path, body string) int {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := status(http.MethodPost, "/api/v1/sources", `{"name":"raw","verify":{"type":"none"}}`); code != http.StatusCreated {
		t.Fatalf("create source: %d", code)
	}
	waitUntil(t, "the source to accept requests", func() bool { return status(http.MethodPost, "/e/raw", `{"n":1}`) == http.StatusOK })
	if code := status(http.MethodGet, "/readyz", ""); code != http.StatusOK {
		t.Fatalf("/readyz before the disk fills = %d", code)
	}

	fill := filepath.Join(dir, "fill")
	f, err := os.Create(fill)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill the file system: %v", err)
			}
			break
		}
	}
	f.Close()
	// The probe's outcome is cached for a second; wait for a fresh one.
	waitUntil(t, "/readyz to answer 503 on a full disk", func() bool { return status(http.MethodGet, "/readyz", "") == http.StatusServiceUnavailable })
	if code := status(http.MethodPost, "/e/raw", `{"n":2,"pad":"`+strings.Repeat("x", 64<<10)+`"}`); code != http.StatusServiceUnavailable {
		t.Errorf("ingest on a full disk = %d, want 503", code)
	}

	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "/readyz to answer 200 with room again", func() bool { return status(http.MethodGet, "/readyz", "") == http.StatusOK })
	if code := status(http.MethodPost, "/e/raw", `{"n":3}`); code != http.StatusOK {
		t.Errorf("ingest with room again = %d, want 200", code)
	}
}
