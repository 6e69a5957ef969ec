package tests

// Packet capture with tshark, the independent decoder. A capture is bounded
// twice, by `timeout` and by tshark's own `-a duration:`, since tshark has
// been seen to hang. tshark's capture process writes the file a little
// behind the wire, so tests wait until the file holds the traffic they
// expect (captureUntil) rather than for a fixed time.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// captureFor is tshark's own bound (-a duration) on any capture.
const captureFor = 90 * time.Second

// capture is one running tshark.
type capture struct {
	e      *env
	cmd    *exec.Cmd // timeout(1), which relays signals to tshark
	file   string    // pcapng written by tshark
	stderr string    // tshark's stderr
	done   chan struct{}
}

// startCapture starts tshark on interface ifname inside namespace n with the
// capture filter filter ("" for none), and returns once tshark says it is
// capturing. Cleanup stops it.
func (e *env) startCapture(n *netns, ifname, filter string) *capture {
	e.t.Helper()
	base := filepath.Join(e.dir, fmt.Sprintf("%s-%s-%d", n.name, ifname, time.Now().UnixNano()))
	c := &capture{e: e, file: base + ".pcapng", stderr: base + ".tshark.log", done: make(chan struct{})}
	errf, err := os.Create(c.stderr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer errf.Close()
	args := []string{"-k", "5", fmt.Sprint(int((captureFor + 15*time.Second).Seconds())),
		"ip", "netns", "exec", n.name,
		"tshark", "-n", "-q", "-i", ifname, "-a", fmt.Sprintf("duration:%d", int(captureFor.Seconds())), "-w", c.file}
	if filter != "" {
		args = append(args, "-f", filter)
	}
	c.cmd = exec.Command("timeout", args...)
	c.cmd.Stdout, c.cmd.Stderr = errf, errf
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		e.t.Fatalf("start tshark: %v", err)
	}
	go func() {
		_ = c.cmd.Wait()
		close(c.done)
	}()
	e.t.Cleanup(c.stop)
	e.eventually(30*time.Second, "tshark capturing on "+ifname+" in "+n.name, func() error {
		log, _ := os.ReadFile(c.stderr)
		switch {
		case strings.Contains(string(log), "Capturing on"):
			return nil
		case !c.running():
			return permanent(fmt.Errorf("tshark exited:\n%s", log))
		}
		return fmt.Errorf("not capturing yet")
	})
	return c
}

func (c *capture) running() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// stop ends the capture: SIGINT (tshark then finishes the file), SIGTERM,
// SIGKILL, each after a bounded wait. It may be called more than once.
func (c *capture) stop() {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGKILL} {
		if !c.running() {
			return
		}
		_ = c.cmd.Process.Signal(sig)
		select {
		case <-c.done:
			return
		case <-time.After(10 * time.Second):
		}
	}
}

// fields decodes the capture file with `tshark -r -T fields`, one row per
// frame, one column per field. Fields that occur more than once in a frame
// (eth.src of the outer and the inner frame) are joined with commas, outer
// first. Every row has one column per field. The file may still be growing: a frame cut short at its end is
// left out.
func (c *capture) fields(fields ...string) ([][]string, error) {
	args := []string{"-n", "-r", c.file, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out, stderr, err := run(30*time.Second, "tshark", args...)
	if err != nil && (out == "" || !strings.Contains(stderr, "cut short")) {
		return nil, err
	}
	var rows [][]string
	for line := range strings.Lines(out) {
		line = strings.TrimRight(line, "\n")
		if line != "" {
			row := strings.Split(line, "\t")
			rows = append(rows, append(row, make([]string, max(0, len(fields)-len(row)))...))
		}
	}
	return rows, nil
}

// captureUntil polls the capture file until ok accepts its rows, then
// stops the capture and returns the complete rows.
func (c *capture) captureUntil(what string, ok func(rows [][]string) bool, fields ...string) [][]string {
	c.e.t.Helper()
	c.e.eventually(30*time.Second, "capture holds "+what, func() error {
		rows, err := c.fields(fields...)
		if err != nil {
			return err
		}
		if !ok(rows) {
			return fmt.Errorf("not yet; %d frames so far", len(rows))
		}
		return nil
	})
	c.stop()
	rows, err := c.fields(fields...)
	if err != nil {
		c.e.t.Fatal(err)
	}
	return rows
}

// last returns the last comma-separated value of a field: the innermost
// occurrence, such as the inner frame's eth.type.
func last(field string) string {
	return field[strings.LastIndexByte(field, ',')+1:]
}
