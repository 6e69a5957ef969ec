package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vxwire/vxwire/internal/api"
)

// TestPrintStatusFailed: failed endpoints get their own table with the
// reason; without any, the table is left out.
func TestPrintStatusFailed(t *testing.T) {
	st := api.Status{Host: "h1", Address: "198.18.0.1:4789"}
	var b bytes.Buffer
	printStatus(&b, &st)
	if strings.Contains(b.String(), "FAILED") {
		t.Fatalf("a status without failed endpoints shows the table:\n%s", b.String())
	}
	st.Failed = []api.FailedEndpoint{{Network: "blue", Name: "web", NetNS: "/proc/42/ns/net", Reason: "netns /proc/42/ns/net now names another namespace"}}
	b.Reset()
	printStatus(&b, &st)
	for _, want := range []string{"FAILED ENDPOINT", "web", "/proc/42/ns/net", "now names another namespace"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, b.String())
		}
	}
}
