package hook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxStateSize bounds the state document read from standard input. Real
// states are a few hundred bytes; annotations make them larger, never
// this large.
const MaxStateSize = 1 << 20

// State is the OCI runtime state a runtime writes to a hook's standard
// input (runtime-spec runtime.md "State"). Only the fields vxwire uses are
// kept.
type State struct {
	// OCIVersion is the runtime-spec version of the document.
	OCIVersion string `json:"ociVersion"`
	// ID is the container's id, unique on the host.
	ID string `json:"id"`
	// Status is "creating", "created", "running" or "stopped". crun
	// reports "created" at poststop.
	Status string `json:"status"`
	// Pid is the container's init process as seen from the runtime's
	// pid namespace; 0 when it has none (poststop).
	Pid int `json:"pid,omitempty"`
	// Bundle is the absolute path of the bundle directory.
	Bundle string `json:"bundle"`
	// Annotations are the container's annotations from config.json.
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ErrState marks a state document that cannot be used.
var ErrState = errors.New("invalid oci state")

// ParseState decodes one state document from r, reading at most
// MaxStateSize bytes. It rejects documents without an id or with a
// negative pid, and anything after the document other than white space.
func ParseState(r io.Reader) (State, error) {
	var st State
	b, err := io.ReadAll(io.LimitReader(r, MaxStateSize+1))
	if err != nil {
		return st, fmt.Errorf("cannot read the oci state from standard input: %w", err)
	}
	if len(b) > MaxStateSize {
		return st, fmt.Errorf("%w: larger than %d bytes", ErrState, MaxStateSize)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return State{}, fmt.Errorf("%w: %v", ErrState, err)
	}
	switch {
	case st.ID == "":
		return State{}, fmt.Errorf("%w: no container id", ErrState)
	case st.Pid < 0:
		return State{}, fmt.Errorf("%w: negative pid %d", ErrState, st.Pid)
	}
	return st, nil
}

// Stage is the hook point a runtime calls the hook at.
type Stage string

// The stages vxwire acts on. Prestart is the deprecated predecessor of
// createRuntime and is treated the same.
const (
	StageCreateRuntime Stage = "createRuntime"
	StagePrestart      Stage = "prestart"
	StagePoststop      Stage = "poststop"
)

// InferStage returns the stage a runtime calls a hook at, judged from the
// state alone, for hooks.d files that register one command line for
// several stages: a state with a pid of a container that is not stopped
// is createRuntime (runc and crun report "creating" or "created"), any
// other poststop (runc reports "stopped" without a pid, crun "created"
// with pid 0).
func (st State) InferStage() Stage {
	if st.Pid > 0 && st.Status != "stopped" {
		return StageCreateRuntime
	}
	return StagePoststop
}

// ParseStage returns the stage named s.
func ParseStage(s string) (Stage, error) {
	switch st := Stage(s); st {
	case StageCreateRuntime, StagePrestart, StagePoststop:
		return st, nil
	}
	return "", fmt.Errorf("unknown hook stage %q (want createRuntime, prestart or poststop)", s)
}
