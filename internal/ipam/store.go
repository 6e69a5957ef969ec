package ipam

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/vxwire/vxwire/internal/atomicfile"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// errLocked is what lockExclusive (lock_*.go) returns when another
// process holds the lock.
var errLocked = errors.New("locked by another process")

// Key identifies an allocation: one endpoint on one network.
type Key struct {
	Network  string
	Endpoint string
}

// Store persists this host's allocations. Implementations must be safe
// for concurrent use. Load returns a map owned by the caller.
type Store interface {
	// Load returns every persisted allocation.
	Load() (map[Key]netip.Addr, error)
	// Save persists (or replaces) the allocation of k.
	Save(k Key, ip netip.Addr) error
	// Delete removes the allocation of k; deleting a missing key is not an
	// error.
	Delete(k Key) error
}

// Store file names inside the state directory.
const (
	stateFile = "ipam.json"
	lockFile  = "ipam.lock"
)

// stateVersion is the format version written to and required in the file.
const stateVersion = 1

// FileStore is a Store kept in one JSON file, ipam.json, under a state
// directory. Every change rewrites the file atomically (temporary file,
// fsync, rename, fsync of the directory), so a crash leaves either the old
// or the new content. An exclusive flock on ipam.lock, held from
// NewFileStore until Close, keeps a second daemon on the same directory
// out. Methods are safe for concurrent use.
type FileStore struct {
	dir  string
	lock *os.File

	mu     sync.Mutex
	allocs map[Key]netip.Addr
	closed bool
}

var _ Store = (*FileStore)(nil)

// NewFileStore opens (creating if needed) the store in dir and locks it.
// It fails if another process holds the lock or the file is malformed.
func NewFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ipam: cannot create state directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ipam: cannot open lock file: %w", err)
	}
	success := false
	defer func() {
		if !success {
			_ = lock.Close()
		}
	}()
	if err := lockExclusive(lock); err != nil {
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("ipam: state directory %s is in use by another process", dir)
		}
		return nil, fmt.Errorf("ipam: cannot lock state directory %s: %w", dir, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	allocs := map[Key]netip.Addr{}
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("ipam: cannot read state: %w", err)
	default:
		if allocs, err = parseState(b); err != nil {
			return nil, fmt.Errorf("ipam: %s: %w", filepath.Join(dir, stateFile), err)
		}
	}
	success = true
	return &FileStore{dir: dir, lock: lock, allocs: allocs}, nil
}

// Load implements Store.
func (s *FileStore) Load() (map[Key]netip.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errStoreClosed
	}
	out := make(map[Key]netip.Addr, len(s.allocs))
	for k, v := range s.allocs {
		out[k] = v
	}
	return out, nil
}

// Save implements Store.
func (s *FileStore) Save(k Key, ip netip.Addr) error {
	return s.update(func(m map[Key]netip.Addr) { m[k] = ip })
}

// Delete implements Store.
func (s *FileStore) Delete(k Key) error {
	return s.update(func(m map[Key]netip.Addr) { delete(m, k) })
}

// Close releases the lock. The store cannot be used afterwards.
func (s *FileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.lock.Close(); err != nil {
		return fmt.Errorf("ipam: cannot release lock: %w", err)
	}
	return nil
}

var errStoreClosed = errors.New("ipam: store closed")

// update applies f to a copy of the allocations and writes the copy; the
// in-memory state only changes once the file has.
func (s *FileStore) update(f func(map[Key]netip.Addr)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errStoreClosed
	}
	next := make(map[Key]netip.Addr, len(s.allocs)+1)
	for k, v := range s.allocs {
		next[k] = v
	}
	f(next)
	if err := s.write(encodeState(next)); err != nil {
		return err
	}
	s.allocs = next
	return nil
}

func (s *FileStore) write(b []byte) error {
	if err := atomicfile.Write(filepath.Join(s.dir, stateFile), b, 0o600); err != nil {
		return fmt.Errorf("ipam: %w", err)
	}
	return nil
}

// fileState is the JSON form of the store file.
type fileState struct {
	Version     int         `json:"version"`
	Allocations []fileAlloc `json:"allocations"`
}

type fileAlloc struct {
	Network  string     `json:"network"`
	Endpoint string     `json:"endpoint"`
	Address  netip.Addr `json:"address"`
}

// encodeState renders allocations deterministically, sorted by key.
func encodeState(m map[Key]netip.Addr) []byte {
	st := fileState{Version: stateVersion, Allocations: make([]fileAlloc, 0, len(m))}
	for k, v := range m {
		st.Allocations = append(st.Allocations, fileAlloc{k.Network, k.Endpoint, v})
	}
	slices.SortFunc(st.Allocations, func(a, b fileAlloc) int {
		if c := cmp.Compare(a.Network, b.Network); c != 0 {
			return c
		}
		return cmp.Compare(a.Endpoint, b.Endpoint)
	})
	// Compact, not indented: the whole file is written and synced on
	// every allocation, so its size is paid once per attach.
	b, _ := json.Marshal(st) // cannot fail for these types
	return append(b, '\n')
}

// parseState reads the store file strictly: known fields only, the current
// version, valid addresses, no duplicate keys or addresses per network.
func parseState(b []byte) (map[Key]netip.Addr, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var st fileState
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("malformed state: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("malformed state: data after the object")
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("state version %d, want %d", st.Version, stateVersion)
	}
	m := make(map[Key]netip.Addr, len(st.Allocations))
	used := make(map[netKey]string, len(st.Allocations))
	for i, a := range st.Allocations {
		k := Key{a.Network, a.Endpoint}
		switch {
		case a.Network == "" || a.Endpoint == "":
			return nil, fmt.Errorf("allocation %d: network and endpoint are required", i)
		case !a.Address.IsValid() || a.Address.Zone() != "":
			return nil, fmt.Errorf("allocation %d: invalid address", i)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("allocation %d: endpoint %s of network %s listed twice", i, a.Endpoint, a.Network)
		}
		nk := netKey{a.Network, a.Address}
		if other, dup := used[nk]; dup {
			return nil, fmt.Errorf("allocation %d: address %s of network %s given to %s and %s", i, a.Address, a.Network, other, a.Endpoint)
		}
		m[k], used[nk] = a.Address, a.Endpoint
	}
	return m, nil
}

// netKey names an address of a network.
type netKey struct {
	Network string
	IP      netip.Addr
}
