package hook

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzBundle feeds BUNDLE/config.json as a runtime writes it: decoding
// never panics, and an accepted config yields a clean absolute root (or
// none) and a non-empty container name.
func FuzzBundle(f *testing.F) {
	f.Add([]byte(`{"hostname":"web","root":{"path":"rootfs","readonly":true},"mounts":[{"destination":"/etc/resolv.conf","options":["ro"]}]}`))
	f.Add([]byte(`{"root":{"path":"/var/lib/c/rootfs"}}`))
	f.Add([]byte(`{"mounts":[{"destination":"/etc/../etc","options":null}]}`))
	f.Add([]byte(`{"hostname":"` + "\u00e9" + `"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		bc, err := readBundle(dir)
		if err != nil {
			return
		}
		if r := bc.rootfs(dir); r != "" && (!filepath.IsAbs(r) || filepath.Clean(r) != r) {
			t.Fatalf("rootfs %q is not a clean absolute path", r)
		}
		_ = bc.resolvReadOnly()
		if name := containerName(State{ID: "0123456789abcdef"}, bc); name == "" {
			t.Fatalf("no container name for %+v", bc)
		}
	})
}
