package tap

import (
	"errors"
	"os"
	"testing"
)

// TestAdoptRefusesOther checks that Adopt refuses a descriptor that is not
// a TAP (here a pipe, as a caller of the API could send) and closes it.
func TestAdoptRefusesOther(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = Adopt(w, Config{NetNS: "/proc/1/ns/net", Name: "eth0", MTU: 1450}, nil)
	if !errors.Is(err, ErrNotTAP) {
		t.Fatalf("Adopt(pipe) = %v, want ErrNotTAP", err)
	}
	if _, err := w.Write([]byte{1}); err == nil {
		t.Fatal("Adopt left the refused descriptor open")
	}
}
