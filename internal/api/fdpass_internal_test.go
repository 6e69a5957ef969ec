//go:build unix

package api

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCredConnReadAtDeadline checks that a read whose deadline passes
// returns a count of 0 with the timeout, as net.Conn's Read does. Before
// this fix it returned ReadMsgUnix's -1, and the API server panicked
// ("bufio: reader returned negative count from Read") on every client
// connection that sent no request within ReadHeaderTimeout or stayed idle
// past IdleTimeout; net/http recovered, but logged a stack for each.
func TestCredConnReadAtDeadline(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := ln.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	cc := &credConn{Conn: c}
	defer cc.Close()

	// The probe: a byte that arrives is read as such.
	if _, err := client.Write([]byte{7}); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	if n, err := cc.Read(b); n != 1 || err != nil || b[0] != 7 {
		t.Fatalf("Read = %d, %v, %v; want 1 byte 7", n, err, b[0])
	}

	// A deadline that passes while the read waits (one already past
	// fails before the system call, with a count of 0).
	if err := cc.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	n, err := cc.Read(b)
	if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read after the deadline = %d, %v; want 0 and the deadline error", n, err)
	}
}
