package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// conn is one keep-alive HTTP/1.1 connection of the load generator. It
// writes pre-formatted requests and parses just enough of each response
// (status, Content-Length or chunked body, Connection: close) to reuse the
// connection, so that the generator costs the box as little CPU as
// possible: net/http's client would take a large share of a 2-core machine
// away from the server it measures.
type conn struct {
	addr string
	c    net.Conn
	r    *bufio.Reader
	w    []byte
}

func dial(addr string) (*conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return &conn{addr: addr, c: c, r: bufio.NewReaderSize(c, 16<<10)}, nil
}

func (c *conn) close() {
	if c.c != nil {
		c.c.Close()
		c.c = nil
	}
}

// do sends the request head and body and returns the response status. The
// connection is closed (and must be redialled) on any error or when the
// server asked to close it.
func (c *conn) do(head, body []byte, timeout time.Duration) (int, error) {
	if c.c == nil {
		nc, err := dial(c.addr)
		if err != nil {
			return 0, err
		}
		*c = *nc
	}
	c.c.SetDeadline(time.Now().Add(timeout))
	c.w = append(append(c.w[:0], head...), body...)
	if _, err := c.c.Write(c.w); err != nil {
		c.close()
		return 0, fmt.Errorf("write request: %w", err)
	}
	status, keep, err := readResponse(c.r)
	if err != nil {
		c.close()
		return 0, err
	}
	if !keep {
		c.close()
	}
	return status, nil
}

// readResponse reads one HTTP/1.1 response and discards its body. keep
// reports whether the connection may be reused.
func readResponse(r *bufio.Reader) (status int, keep bool, err error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return 0, false, fmt.Errorf("read status line: %w", err)
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	keep = line[7] == '1'
	length := int64(-1)
	chunked := false
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return 0, false, fmt.Errorf("read header: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(v), 10, 64); err != nil {
				return 0, false, fmt.Errorf("bad Content-Length %q", v)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("Connection")):
			if bytes.EqualFold(v, []byte("close")) {
				keep = false
			}
		}
	}
	switch {
	case chunked:
		if err := discardChunked(r); err != nil {
			return 0, false, err
		}
	case length >= 0:
		if _, err := r.Discard(int(length)); err != nil {
			return 0, false, fmt.Errorf("read body: %w", err)
		}
	case status == http.StatusNoContent || status == http.StatusNotModified || status < 200:
	default:
		// No length: the body runs to the end of the connection.
		io.Copy(io.Discard, r)
		keep = false
	}
	return status, keep, nil
}

func discardChunked(r *bufio.Reader) error {
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("read chunk size: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseInt(string(line), 16, 64)
		if err != nil {
			return fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			// Trailers end with an empty line.
			for {
				l, err := r.ReadSlice('\n')
				if err != nil {
					return fmt.Errorf("read trailer: %w", err)
				}
				if len(bytes.TrimRight(l, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if _, err := r.Discard(int(n) + 2); err != nil {
			return fmt.Errorf("read chunk: %w", err)
		}
	}
}
