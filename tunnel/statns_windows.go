package tunnel

import "errors"

// statNetNS fails: Windows has no network namespaces.
func statNetNS(string) (nsID, error) {
	return nsID{}, errors.New("network namespaces need Linux")
}
