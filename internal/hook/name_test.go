package hook

import (
	"testing"
)

// TestContainerName checks the name rule, and that an unnamed container
// gets the same name the CNI plugin would give it (api.ShortID).
func TestContainerName(t *testing.T) {
	id := "0123456789abcdef0123" // 20 characters: fits a DNS label, still shortened
	tests := []struct {
		name string
		st   State
		bc   bundleConfig
		want string
	}{
		{"annotation", State{ID: id, Annotations: map[string]string{AnnotationName: "web"}}, bundleConfig{Hostname: "h"}, "web"},
		{"hostname", State{ID: id}, bundleConfig{Hostname: "db"}, "db"},
		{"long id", State{ID: id}, bundleConfig{}, "0123456789ab"},
		{"short id", State{ID: "c1"}, bundleConfig{}, "c1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := containerName(tt.st, tt.bc); got != tt.want {
				t.Fatalf("containerName = %q, want %q", got, tt.want)
			}
		})
	}
}
