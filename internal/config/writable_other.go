//go:build !unix

package config

// writableDir reports why the process cannot create entries in dir, or in
// the nearest existing directory above it. Without access(2) it only
// checks that such a directory exists; creating files reports the rest.
func writableDir(dir string) error {
	_, err := nearestDir(dir)
	return err
}
