package hook

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const runcCreating = `{"ociVersion":"1.0.2-dev","id":"c1","status":"creating","pid":4242,"bundle":"/b/c1","annotations":{"vxwire.network":"blue"}}`

func TestParseState(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     State
		err      bool
	}{
		{name: "runc createRuntime", in: runcCreating, want: State{OCIVersion: "1.0.2-dev", ID: "c1", Status: "creating", Pid: 4242,
			Bundle: "/b/c1", Annotations: map[string]string{"vxwire.network": "blue"}}},
		{name: "crun poststop", in: `{"ociVersion":"1.0.0","id":"c2","status":"created","pid":0,"bundle":"/b/c2"}`,
			want: State{OCIVersion: "1.0.0", ID: "c2", Status: "created", Bundle: "/b/c2"}},
		{name: "runc poststop without pid", in: `{"ociVersion":"1.0.2-dev","id":"c3","status":"stopped","bundle":"/b"}` + "\n",
			want: State{OCIVersion: "1.0.2-dev", ID: "c3", Status: "stopped", Bundle: "/b"}},
		{name: "unknown fields", in: `{"id":"c4","pid":1,"extra":{"a":[1,2]}}`, want: State{ID: "c4", Pid: 1}},
		{name: "empty", in: ``, err: true},
		{name: "not json", in: `id=c1`, err: true},
		{name: "no id", in: `{"pid":7}`, err: true},
		{name: "negative pid", in: `{"id":"c","pid":-1}`, err: true},
		{name: "pid not a number", in: `{"id":"c","pid":"7"}`, err: true},
		{name: "annotation not a string", in: `{"id":"c","annotations":{"a":1}}`, err: true},
		{name: "two documents", in: runcCreating + runcCreating, err: true},
		{name: "too large", in: `{"id":"c","bundle":"` + strings.Repeat("x", MaxStateSize) + `"}`, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseState(strings.NewReader(tc.in))
			if tc.err {
				if !errors.Is(err, ErrState) {
					t.Fatalf("ParseState = %+v, %v; want an ErrState error", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			a, _ := json.Marshal(got)
			b, _ := json.Marshal(tc.want)
			if !bytes.Equal(a, b) {
				t.Errorf("ParseState = %s, want %s", a, b)
			}
		})
	}
}

func TestParseStage(t *testing.T) {
	for _, s := range []string{"createRuntime", "prestart", "poststop"} {
		if st, err := ParseStage(s); err != nil || string(st) != s {
			t.Errorf("ParseStage(%q) = %q, %v", s, st, err)
		}
	}
	for _, s := range []string{"", "poststart", "createContainer", "CREATERUNTIME"} {
		if _, err := ParseStage(s); err == nil {
			t.Errorf("ParseStage(%q) succeeded", s)
		}
	}
}

// FuzzState checks that ParseState never panics, that what it accepts has
// an id and no negative pid, and that encoding an accepted state and
// parsing it again is a fix point.
func FuzzState(f *testing.F) {
	f.Add([]byte(runcCreating))
	f.Add([]byte(`{"ociVersion":"1.0.0","id":"c2","status":"created","pid":0,"bundle":"/b/c2"}`))
	f.Add([]byte(`{"id":"x","annotations":{}}`))
	f.Add([]byte(`{"id":"\u00e9","pid":1e3}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		st, err := ParseState(bytes.NewReader(in))
		if err != nil {
			return
		}
		if st.ID == "" || st.Pid < 0 {
			t.Fatalf("accepted %+v", st)
		}
		a, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		st2, err := ParseState(bytes.NewReader(a))
		if err != nil {
			t.Fatalf("re-parse of %s: %v", a, err)
		}
		b, _ := json.Marshal(st2)
		if !bytes.Equal(a, b) {
			t.Fatalf("not a fix point: %s then %s", a, b)
		}
	})
}

func TestInferStage(t *testing.T) {
	for _, tc := range []struct {
		st   State
		want Stage
	}{
		{State{Status: "creating", Pid: 7}, StageCreateRuntime},
		{State{Status: "created", Pid: 7}, StageCreateRuntime},
		{State{Status: "stopped"}, StagePoststop},
		{State{Status: "stopped", Pid: 7}, StagePoststop},
		{State{Status: "created"}, StagePoststop}, // crun
	} {
		if got := tc.st.InferStage(); got != tc.want {
			t.Errorf("InferStage(%+v) = %s, want %s", tc.st, got, tc.want)
		}
	}
}
