package consensus

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/hashicorp/raft"
	"github.com/vxwire/vxwire/internal/atomicfile"
)

// File names of the store inside its directory.
const (
	logFile    = "log"
	stableFile = "stable.json"
)

// Record operations of the log file.
const (
	opStore  = 1 // payload: one raft.Log as JSON
	opDelete = 2 // payload: first and last index of a range, big endian
)

// maxRecord bounds one record of the log file; a longer length prefix is
// taken as a torn or corrupt tail.
const maxRecord = 16 << 20

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errNotFound is what raft expects from StableStore.Get for a missing key.
var errNotFound = errors.New("not found")

// Store is raft's LogStore and StableStore, kept in a directory: the log
// is an append-only file of checksummed records (store one entry, delete a
// range), fsynced before each write returns; the stable keys (current term,
// vote) are one JSON file replaced atomically. On open the log file is
// replayed and a torn record at its end is cut off. The whole log is also
// kept in memory: raft compacts it after each snapshot, so it stays small.
// Methods are safe for concurrent use.
type Store struct {
	dir string

	mu      sync.Mutex
	f       *os.File
	logs    map[uint64]*raft.Log
	first   uint64
	last    uint64
	records int // records in the file, live or not, to decide compaction
	stable  map[string][]byte
}

var (
	_ raft.LogStore    = (*Store)(nil)
	_ raft.StableStore = (*Store)(nil)
)

// OpenStore opens (creating if needed) the store in dir.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("consensus: cannot create %s: %w", dir, err)
	}
	s := &Store{dir: dir, logs: make(map[uint64]*raft.Log), stable: make(map[string][]byte)}
	b, err := os.ReadFile(filepath.Join(dir, stableFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("consensus: cannot read stable state: %w", err)
	default:
		if err := json.Unmarshal(b, &s.stable); err != nil {
			return nil, fmt.Errorf("consensus: %s: malformed: %w", filepath.Join(dir, stableFile), err)
		}
	}
	if err := s.replay(); err != nil {
		return nil, err
	}
	return s, nil
}

// replay reads the log file, cuts a torn tail and opens it for appending.
func (s *Store) replay() error {
	path := filepath.Join(s.dir, logFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("consensus: cannot open log: %w", err)
	}
	r := bufio.NewReader(f)
	var good int64
	for {
		op, payload, n, err := readRecord(r)
		if err != nil {
			break // end of file, or a torn record: keep what came before
		}
		if err := s.unlockedApply(op, payload); err != nil {
			break
		}
		good += n
		s.records++
	}
	if err := f.Truncate(good); err != nil {
		f.Close()
		return fmt.Errorf("consensus: cannot cut torn log tail: %w", err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("consensus: cannot seek log: %w", err)
	}
	s.f = f
	return nil
}

// readRecord reads one record: length, CRC-32C of op and payload, op,
// payload. n is the record's size in bytes.
func readRecord(r io.Reader) (op byte, payload []byte, n int64, err error) {
	var hdr [9]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, 0, err
	}
	size := binary.BigEndian.Uint32(hdr[0:4])
	if size > maxRecord {
		return 0, nil, 0, errors.New("record too long")
	}
	payload = make([]byte, size)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, 0, err
	}
	op = hdr[8]
	crc := crc32.Update(crc32.Checksum([]byte{op}, crcTable), crcTable, payload)
	if crc != binary.BigEndian.Uint32(hdr[4:8]) {
		return 0, nil, 0, errors.New("bad checksum")
	}
	return op, payload, int64(len(hdr)) + int64(size), nil
}

func appendRecord(b []byte, op byte, payload []byte) []byte {
	var hdr [9]byte
	binary.BigEndian.PutUint32(hdr[0:4], uint32(len(payload)))
	binary.BigEndian.PutUint32(hdr[4:8], crc32.Update(crc32.Checksum([]byte{op}, crcTable), crcTable, payload))
	hdr[8] = op
	return append(append(b, hdr[:]...), payload...)
}

// unlockedApply applies one record to the in-memory log.
func (s *Store) unlockedApply(op byte, payload []byte) error {
	switch op {
	case opStore:
		var l raft.Log
		if err := json.Unmarshal(payload, &l); err != nil {
			return err
		}
		s.logs[l.Index] = &l
		if s.first == 0 || l.Index < s.first {
			s.first = l.Index
		}
		s.last = max(s.last, l.Index)
	case opDelete:
		if len(payload) != 16 {
			return errors.New("bad delete record")
		}
		s.unlockedDelete(binary.BigEndian.Uint64(payload[0:8]), binary.BigEndian.Uint64(payload[8:16]))
	default:
		return fmt.Errorf("unknown record %d", op)
	}
	return nil
}

func (s *Store) unlockedDelete(lo, hi uint64) {
	for i := range s.logs {
		if i >= lo && i <= hi {
			delete(s.logs, i)
		}
	}
	s.first, s.last = 0, 0
	for i := range s.logs {
		if s.first == 0 || i < s.first {
			s.first = i
		}
		s.last = max(s.last, i)
	}
}

// FirstIndex implements raft.LogStore.
func (s *Store) FirstIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first, nil
}

// LastIndex implements raft.LogStore.
func (s *Store) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, nil
}

// GetLog implements raft.LogStore.
func (s *Store) GetLog(index uint64, log *raft.Log) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.logs[index]
	if !ok {
		return raft.ErrLogNotFound
	}
	*log = *l
	return nil
}

// StoreLog implements raft.LogStore.
func (s *Store) StoreLog(log *raft.Log) error { return s.StoreLogs([]*raft.Log{log}) }

// StoreLogs implements raft.LogStore: the entries are on disk when it
// returns.
func (s *Store) StoreLogs(logs []*raft.Log) error {
	var b []byte
	for _, l := range logs {
		p, err := json.Marshal(l)
		if err != nil {
			return fmt.Errorf("consensus: cannot encode log entry: %w", err)
		}
		b = appendRecord(b, opStore, p)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.unlockedWrite(b, len(logs)); err != nil {
		return err
	}
	for _, l := range logs {
		c := *l
		s.logs[l.Index] = &c
		if s.first == 0 || l.Index < s.first {
			s.first = l.Index
		}
		s.last = max(s.last, l.Index)
	}
	return nil
}

// DeleteRange implements raft.LogStore.
func (s *Store) DeleteRange(lo, hi uint64) error {
	var p [16]byte
	binary.BigEndian.PutUint64(p[0:8], lo)
	binary.BigEndian.PutUint64(p[8:16], hi)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.unlockedWrite(appendRecord(nil, opDelete, p[:]), 1); err != nil {
		return err
	}
	s.unlockedDelete(lo, hi)
	if s.records > 2*len(s.logs)+1024 {
		return s.unlockedCompact()
	}
	return nil
}

func (s *Store) unlockedWrite(b []byte, records int) error {
	if s.f == nil {
		return errors.New("consensus: store closed")
	}
	if _, err := s.f.Write(b); err != nil {
		return fmt.Errorf("consensus: cannot write log: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("consensus: cannot sync log: %w", err)
	}
	s.records += records
	return nil
}

// unlockedCompact rewrites the log file with the live entries only.
func (s *Store) unlockedCompact() error {
	var b []byte
	for i := s.first; i != 0 && i <= s.last; i++ {
		l, ok := s.logs[i]
		if !ok {
			continue
		}
		p, err := json.Marshal(l)
		if err != nil {
			return fmt.Errorf("consensus: cannot encode log entry: %w", err)
		}
		b = appendRecord(b, opStore, p)
	}
	path := filepath.Join(s.dir, logFile)
	if err := atomicfile.Write(path, b, 0o600); err != nil {
		return fmt.Errorf("consensus: cannot compact log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("consensus: cannot reopen log: %w", err)
	}
	s.f.Close()
	s.f, s.records = f, len(s.logs)
	return nil
}

// Set implements raft.StableStore.
func (s *Store) Set(key, val []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make(map[string][]byte, len(s.stable)+1)
	for k, v := range s.stable {
		next[k] = v
	}
	next[string(key)] = append([]byte(nil), val...)
	b, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("consensus: cannot encode stable state: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(s.dir, stableFile), b, 0o600); err != nil {
		return fmt.Errorf("consensus: %w", err)
	}
	s.stable = next
	return nil
}

// Get implements raft.StableStore.
func (s *Store) Get(key []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.stable[string(key)]
	if !ok {
		return nil, errNotFound
	}
	return append([]byte(nil), v...), nil
}

// SetUint64 implements raft.StableStore.
func (s *Store) SetUint64(key []byte, val uint64) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], val)
	return s.Set(key, b[:])
}

// GetUint64 implements raft.StableStore; a missing key reads as 0.
func (s *Store) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if errors.Is(err, errNotFound) {
		return 0, nil
	}
	if err != nil || len(v) != 8 {
		return 0, fmt.Errorf("consensus: stable key %q malformed", key)
	}
	return binary.BigEndian.Uint64(v), nil
}

// Close closes the log file.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
