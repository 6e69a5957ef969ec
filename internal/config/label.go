package config

import "errors"

// CheckLabel reports why s cannot name a network, an endpoint or an alias
// (a DNS label: a-z, 0-9 and '-', at most 63 bytes), or nil.
func CheckLabel(s string) error {
	if msg := checkLabel(s); msg != "" {
		return errors.New(msg)
	}
	return nil
}
