package tunnel

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/vxwire/vxwire/internal/atomicfile"
)

// Each endpoint attached through the API has its own record in
// state_dir/endpoints, NETWORK.NAME.json (a dynEndpoint), written
// atomically when it is attached, changed or failed, and removed when it
// is detached: an attach writes one small file whatever the number of
// endpoints, and a crash leaves every record whole, either as it was
// before the change in progress or as it is after. Earlier versions kept
// every endpoint in one file, endpoints.json, which a start reads and
// splits into records.

const (
	// endpointsDir holds the records of API endpoints.
	endpointsDir = "endpoints"
	// legacyEndpointsFile is the single file of earlier versions.
	legacyEndpointsFile = "endpoints.json"
)

// endpointFile is the path of the record of endpoint k; network and
// endpoint names are DNS labels, so they cannot contain the separator.
func endpointFile(stateDir string, k epKey) string {
	return filepath.Join(stateDir, endpointsDir, k.network+"."+k.name+".json")
}

// unlockedSaveEndpoint makes the record of k match the engine: the
// attached or failed endpoint k, or none. mu must be held.
func (e *Engine) unlockedSaveEndpoint(k epKey) {
	d, ok := e.dynEps[k]
	if !ok {
		d, ok = e.failedEps[k]
	}
	path := endpointFile(e.file.Host.StateDir, k)
	if !ok {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			e.l.Warn("cannot remove endpoint record", "error", err, "network", k.network, "endpoint", k.name)
		}
		return
	}
	b, err := json.Marshal(d)
	if err == nil {
		if err = os.MkdirAll(filepath.Dir(path), 0o700); err == nil {
			err = atomicfile.Write(path, b, 0o600)
		}
	}
	if err != nil {
		e.l.Warn("cannot save endpoint record; a restart will not attach it again", "error", err,
			"network", k.network, "endpoint", k.name)
	}
}

// loadEndpoints reads the API endpoints a previous run saved in dir:
// their records, and the single file of an earlier version, which it
// turns into records (and removes). A record that cannot be read is
// logged and skipped.
func (e *Engine) loadEndpoints(dir string) []dynEndpoint {
	byKey := make(map[epKey]dynEndpoint)
	legacy := filepath.Join(dir, legacyEndpointsFile)
	b, lerr := os.ReadFile(legacy)
	if lerr == nil {
		var list []dynEndpoint
		if err := json.Unmarshal(b, &list); err != nil {
			e.l.Warn("cannot restore endpoints", "error", err)
		}
		for _, d := range list {
			byKey[epKey{d.Endpoint.Network, d.Endpoint.Name}] = d
		}
	}
	ents, derr := os.ReadDir(filepath.Join(dir, endpointsDir))
	if derr != nil && !errors.Is(derr, fs.ErrNotExist) {
		e.l.Warn("cannot read endpoint records", "error", derr)
	}
	for _, ent := range ents {
		if !strings.HasSuffix(ent.Name(), ".json") {
			continue // a temporary file a crash left
		}
		var d dynEndpoint
		b, err := os.ReadFile(filepath.Join(dir, endpointsDir, ent.Name()))
		if err == nil {
			err = json.Unmarshal(b, &d)
		}
		k := epKey{d.Endpoint.Network, d.Endpoint.Name}
		if err == nil && ent.Name() != filepath.Base(endpointFile(dir, k)) {
			err = errors.New("the record names another endpoint")
		}
		if err != nil {
			e.l.Warn("cannot restore endpoint", "error", err, "file", ent.Name())
			continue
		}
		byKey[k] = d // newer than the single file's
	}
	out := make([]dynEndpoint, 0, len(byKey))
	for _, d := range byKey {
		out = append(out, d)
	}
	if lerr == nil {
		e.splitLegacyEndpoints(dir, out)
	}
	return out
}

// dropEndpointRecord removes the record of k, an endpoint not restored.
func (e *Engine) dropEndpointRecord(dir string, k epKey) {
	if err := os.Remove(endpointFile(dir, k)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		e.l.Warn("cannot remove endpoint record", "error", err, "network", k.network, "endpoint", k.name)
	}
}

// splitLegacyEndpoints writes a record for each endpoint of an earlier
// version's single file, then removes the file: a crash in between reads
// both again, and the records win.
func (e *Engine) splitLegacyEndpoints(dir string, list []dynEndpoint) {
	if err := os.MkdirAll(filepath.Join(dir, endpointsDir), 0o700); err != nil {
		e.l.Warn("cannot save endpoint records", "error", err)
		return
	}
	for _, d := range list {
		b, err := json.Marshal(d)
		if err == nil {
			err = atomicfile.Write(endpointFile(dir, epKey{d.Endpoint.Network, d.Endpoint.Name}), b, 0o600)
		}
		if err != nil {
			e.l.Warn("cannot save endpoint records", "error", err)
			return
		}
	}
	if err := os.Remove(filepath.Join(dir, legacyEndpointsFile)); err != nil {
		e.l.Warn("cannot remove the old endpoints file", "error", err)
	}
}
