//go:build !linux

package tunnel

import "errors"

// addrWatch would tell of address changes; off Linux there is none, and
// the host's addresses are read every AddressCheck only.
type addrWatch struct {
	// C never receives.
	C chan struct{}
}

func newAddrWatch() (*addrWatch, error) {
	return nil, errors.New("address notifications are supported on linux only")
}

func (w *addrWatch) run() {}

// Close does nothing.
func (w *addrWatch) Close() error { return nil }
