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
	stateFile   = "ipam.json"
	journalFile = "ipam.journal"
	lockFile    = "ipam.lock"
)

// minCompact is the journal length below which it is never folded into
// the file, however few allocations there are.
const minCompact = 256

// stateVersion is the format version written to and required in the file.
const stateVersion = 1

// FileStore is a Store kept under a state directory as a JSON file,
// ipam.json, plus a journal of the changes made since, ipam.journal: one
// JSON line per Save or Delete, appended and synced before the call
// returns, so that a change costs the same with 10 allocations as with
// 10,000. Once the journal holds more lines than the file has
// allocations (and at open), the file is rewritten atomically
// (temporary file, fsync, rename, fsync of the directory) and the journal
// emptied; so is it at Close, which leaves the file alone holding the
// state. A crash leaves the file whole and the journal with at most a
// torn last line, which the next open drops: the state is that of the
// last change that returned, or of the one in progress. Replaying a
// journal over a file that already holds its changes (a crash between the
// rewrite and the emptying) gives the same state. An exclusive flock on
// ipam.lock, held from NewFileStore until Close, keeps a second daemon on
// the same directory out. Methods are safe for concurrent use.
type FileStore struct {
	dir  string
	lock *os.File

	mu      sync.Mutex
	allocs  map[Key]netip.Addr
	journal *os.File // ipam.journal, opened for appending
	lines   int      // changes in the journal
	size    int64    // its length: a failed append is cut back to it
	closed  bool
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
	s := &FileStore{dir: dir, lock: lock, allocs: allocs}
	if err := s.openJournal(); err != nil {
		return nil, err
	}
	success = true
	return s, nil
}

// openJournal replays the journal a previous run left over s.allocs,
// folds it into the file and opens it, empty, for appending.
func (s *FileStore) openJournal() error {
	path := filepath.Join(s.dir, journalFile)
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("ipam: cannot read journal: %w", err)
	}
	if len(b) > 0 {
		if err := replayJournal(s.allocs, b); err != nil {
			return fmt.Errorf("ipam: %s: %w", path, err)
		}
		if err := s.write(encodeState(s.allocs)); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err == nil {
		err = f.Truncate(0)
		if err == nil && len(b) > 0 {
			err = f.Sync()
		}
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("ipam: cannot open journal: %w", err)
	}
	s.journal = f
	return nil
}

// replayJournal applies the changes of a journal to m, in order: an
// allocation with an address is a Save, one without a Delete. What
// follows the last newline is a change a crash cut short, and is
// dropped; any complete line must be a change, and the result must give
// no address twice.
func replayJournal(m map[Key]netip.Addr, b []byte) error {
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	for i, line := range bytes.Split(bytes.TrimSuffix(b, []byte{'\n'}), []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		a, err := parseJournalLine(line)
		switch {
		case err != nil:
			return fmt.Errorf("line %d: %w", i+1, err)
		case a.Address.IsValid():
			m[Key{a.Network, a.Endpoint}] = a.Address
		default:
			delete(m, Key{a.Network, a.Endpoint})
		}
	}
	return checkUnique(m)
}

// parseJournalLine reads one change of the journal.
func parseJournalLine(line []byte) (fileAlloc, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var a fileAlloc
	if err := dec.Decode(&a); err != nil {
		return a, fmt.Errorf("malformed change: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return a, errors.New("malformed change: data after the object")
	}
	switch {
	case a.Network == "" || a.Endpoint == "":
		return a, errors.New("change: network and endpoint are required")
	case a.Address.Zone() != "":
		return a, errors.New("change: invalid address")
	}
	return a, nil
}

// checkUnique fails if m gives one address of a network twice.
func checkUnique(m map[Key]netip.Addr) error {
	used := make(map[netKey]string, len(m))
	for k, ip := range m {
		nk := netKey{k.Network, ip}
		if other, dup := used[nk]; dup {
			return fmt.Errorf("address %s of network %s given to %s and %s", ip, k.Network, other, k.Endpoint)
		}
		used[nk] = k.Endpoint
	}
	return nil
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
	return s.update(k, ip)
}

// Delete implements Store.
func (s *FileStore) Delete(k Key) error {
	return s.update(k, netip.Addr{})
}

// Close folds the journal into the file, so that a store closed in order
// is ipam.json alone, and releases the lock. The store cannot be used
// afterwards.
func (s *FileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.lines > 0 {
		s.compact()
	}
	s.journal.Close()
	if err := s.lock.Close(); err != nil {
		return fmt.Errorf("ipam: cannot release lock: %w", err)
	}
	return nil
}

var errStoreClosed = errors.New("ipam: store closed")

// update records the allocation of k (ip, or none when ip is the zero
// Addr) in the journal; the in-memory state only changes once the journal
// has. A journal grown longer than the allocations is folded into the
// file: the rewrite of every allocation is paid once per as many changes.
func (s *FileStore) update(k Key, ip netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errStoreClosed
	}
	line, _ := json.Marshal(fileAlloc{k.Network, k.Endpoint, ip}) // cannot fail for these types
	line = append(line, '\n')
	_, err := s.journal.Write(line)
	if err == nil {
		err = s.journal.Sync()
	}
	if err != nil {
		// Leave no torn line for the next change to follow.
		s.journal.Truncate(s.size)
		return fmt.Errorf("ipam: cannot write journal: %w", err)
	}
	s.size += int64(len(line))
	s.lines++
	if ip.IsValid() {
		s.allocs[k] = ip
	} else {
		delete(s.allocs, k)
	}
	if s.lines > max(minCompact, len(s.allocs)) {
		s.compact()
	}
	return nil
}

// compact folds the journal into the file. A failure only leaves the
// journal longer: the change that triggered it is saved already.
func (s *FileStore) compact() {
	if s.write(encodeState(s.allocs)) != nil {
		return
	}
	if s.journal.Truncate(0) != nil || s.journal.Sync() != nil {
		return
	}
	s.lines, s.size = 0, 0
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
