package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// The raw* types mirror the file layout. Leaves are untyped so that the
// decoder never stops at the first wrong type: every leaf is type-checked
// afterwards, and all problems are reported together. go-toml still
// rejects unknown keys and values of the wrong shape (a string where a
// table belongs).
type rawFile struct {
	Host     *rawHost      `toml:"host"`
	Peer     []rawPeer     `toml:"peer"`
	Network  []rawNetwork  `toml:"network"`
	Endpoint []rawEndpoint `toml:"endpoint"`
	Publish  []rawPublish  `toml:"publish"`
	Service  []rawService  `toml:"service"`
	Forward  []rawForward  `toml:"forward"`
	Expose   []rawExpose   `toml:"expose"`
}

type rawHost struct {
	Name           any `toml:"name"`
	Address        any `toml:"address"`
	GossipAddress  any `toml:"gossip_address"`
	Port           any `toml:"port"`
	StateDir       any `toml:"state_dir"`
	APISocket      any `toml:"api_socket"`
	DockerPlugin   any `toml:"docker_plugin"`
	MTU            any `toml:"mtu"`
	PrivateKeyFile any `toml:"private_key_file"`
	SecretFile     any `toml:"secret_file"`
	WGPort         any `toml:"wg_port"`
	WGName         any `toml:"wg_name"`
	TunnelAddress  any `toml:"tunnel_address"`
	RotateEvery    any `toml:"rotate_every"`
	GossipPort     any `toml:"gossip_port"`
	RaftPort       any `toml:"raft_port"`
	PeerTimeout    any `toml:"peer_timeout"`
	DNSUpstream    any `toml:"dns_upstream"`
	Metrics        any `toml:"metrics"`
	APIGroup       any `toml:"api_group"`
	EgressDeny     any `toml:"egress_deny"`
	FloodRate      any `toml:"flood_rate"`
	FloodBurst     any `toml:"flood_burst"`
	Procs          any `toml:"procs"`
	Rootless       any `toml:"rootless"`
	BehindNAT      any `toml:"behind_nat"`
	Socks          any `toml:"socks"`
	SocksOutside   any `toml:"socks_outside"`
}

type rawPeer struct {
	Name          any `toml:"name"`
	Address       any `toml:"address"`
	GossipAddress any `toml:"gossip_address"`
	Port          any `toml:"port"`
	PublicKey     any `toml:"public_key"`
	WGPort        any `toml:"wg_port"`
	TunnelAddress any `toml:"tunnel_address"`
	Kernel        any `toml:"kernel"`
	Keepalive     any `toml:"keepalive"`
}

type rawNetwork struct {
	Name      any `toml:"name"`
	VNI       any `toml:"vni"`
	Subnet    any `toml:"subnet"`
	Gateway   any `toml:"gateway"`
	MTU       any `toml:"mtu"`
	Encrypted any `toml:"encrypted"`
	Egress    any `toml:"egress"`
}

type rawForward struct {
	Network any `toml:"network"`
	Listen  any `toml:"listen"`
	To      any `toml:"to"`
	Proto   any `toml:"proto"`
}

type rawExpose struct {
	Network any `toml:"network"`
	Port    any `toml:"port"`
	To      any `toml:"to"`
	Proto   any `toml:"proto"`
}

type rawEndpoint struct {
	Network any `toml:"network"`
	Name    any `toml:"name"`
	NetNS   any `toml:"netns"`
	IfName  any `toml:"ifname"`
	Address any `toml:"address"`
	MAC     any `toml:"mac"`
	Aliases any `toml:"aliases"`
}

// Parse decodes a config file strictly, fills in defaults and validates
// everything that needs no filesystem access. file names the source in
// error messages and is stored in Config.File; data is not retained.
//
// On failure Parse returns a nil Config and either one *Error or Errors
// holding every problem found. A syntax error, a duplicate key or a value
// of the wrong shape stops decoding, so only that problem is reported.
func Parse(file string, data []byte) (*Config, error) {
	c, errs := parse(file, data)
	if len(errs) > 0 {
		return nil, asError(errs)
	}
	return c, nil
}

// Load reads the config file at path, parses it like Parse and then checks
// the system: each endpoint's netns must exist; host.private_key_file and
// host.secret_file are read into Host.PrivateKey and Host.Secret; no peer
// may use the host's own public key; host.api_group must exist, and its id
// is stored in Host.APIGID; without host.dns_upstream, Host.DNSUpstream is
// read from the host's resolv.conf. All problems, from parsing and from
// the system, are reported together.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read config: %w", err)
	}
	c, errs := parse(path, data)
	if c != nil {
		errs = append(errs, c.checkFiles()...)
		errs = append(errs, c.loadHost()...)
		errs = append(errs, c.loadRootless(currentSystem())...)
	}
	if len(errs) > 0 {
		return nil, asError(errs)
	}
	return c, nil
}

// checkFiles verifies that each endpoint's netns path exists and is not a
// directory. Endpoints whose netns failed validation are skipped.
func (c *Config) checkFiles() []*Error {
	var errs []*Error
	for i, ep := range c.Endpoints {
		if ep.NetNS == "" {
			continue
		}
		field := indexPath("endpoint", i) + ".netns"
		fi, err := os.Stat(ep.NetNS)
		switch {
		case errors.Is(err, os.ErrNotExist):
			errs = append(errs, c.Errorf(field, "%s does not exist", ep.NetNS))
		case err != nil:
			errs = append(errs, c.Errorf(field, "cannot stat %s: %v", ep.NetNS, err))
		case fi.IsDir():
			errs = append(errs, c.Errorf(field, "%s is a directory, not a network namespace", ep.NetNS))
		}
	}
	return errs
}

// parse returns the Config and all problems found. The Config is non-nil
// whenever decoding succeeded, even if validation found problems, so that
// Load can add the filesystem checks; fields that failed validation are
// left at their zero value.
func parse(file string, data []byte) (*Config, []*Error) {
	w := scanPositions(file, data)
	var raw rawFile
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	errs := w.errs
	if err := dec.Decode(&raw); err != nil {
		errs = append(errs, w.decodeErrors(err)...)
		// Unknown keys are reported after the whole document is decoded;
		// any other decode error leaves raw incomplete.
		var strict *toml.StrictMissingError
		if !errors.As(err, &strict) {
			return nil, errs
		}
	}
	v := &validator{
		c:    &Config{File: file, lines: w.lines},
		errs: errs,
	}
	v.convert(&raw)
	v.validate()
	v.errs = append(v.errs, v.c.checkOS(runtime.GOOS)...)
	return v.c, v.errs
}

// decodeErrors converts a go-toml error into positioned errors. Unknown
// keys all come at once in a StrictMissingError; anything else is a single
// DecodeError.
func (w *positions) decodeErrors(err error) []*Error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		out := make([]*Error, 0, len(strict.Errors))
		for i := range strict.Errors {
			out = append(out, w.decodeError(&strict.Errors[i]))
		}
		return out
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		return []*Error{w.decodeError(de)}
	}
	return []*Error{{File: w.file, Msg: strings.TrimPrefix(err.Error(), "toml: ")}}
}

// decodeError names the field of a go-toml error. go-toml reports keys
// without array indices ("network.prot"), so the field is looked up by the
// position of the key in the document, which the walk recorded with
// indices ("network[1].prot").
func (w *positions) decodeError(de *toml.DecodeError) *Error {
	line, col := de.Position()
	field, ok := w.keys[pos{line, col}]
	if !ok {
		field = strings.Join(de.Key(), ".")
	}
	return &Error{File: w.file, Line: line, Field: field, Msg: decodeMessage(de)}
}

// decodeMessage rewords go-toml messages in the terms of the file format,
// hiding the Go types they mention.
func decodeMessage(de *toml.DecodeError) string {
	msg := strings.TrimPrefix(de.Error(), "toml: ")
	switch msg {
	case "unknown field":
		return "unknown key"
	case "missing table":
		return "unknown table"
	}
	var got string
	if _, err := fmt.Sscanf(msg, "cannot decode TOML %s into", &got); err == nil {
		switch {
		case strings.Contains(msg, "[]config.raw"):
			return "expected an array of tables ([[" + lastKey(de.Key()) + "]]), got " + got
		case strings.Contains(msg, "config.raw"):
			return "expected a table ([" + lastKey(de.Key()) + "]), got " + got
		}
	}
	return msg
}

func lastKey(k toml.Key) string {
	if len(k) == 0 {
		return ""
	}
	return k[len(k)-1]
}
