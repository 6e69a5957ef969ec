package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"strconv"
)

// resolvConfs are the files Load reads the DNS upstream from when the
// config lists none: the first that names a usable server wins. The second
// is where systemd-resolved lists its upstreams when /etc/resolv.conf
// points at its loopback stub. Tests replace them.
var resolvConfs = []string{"/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"}

const (
	// MinSecretLen is the shortest cluster secret accepted, in bytes.
	MinSecretLen = 16
	// maxKeyFileSize bounds what Load reads from a key or secret file.
	maxKeyFileSize = 64 << 10
)

// SecretHint tells how to make a cluster secret, for messages.
const SecretHint = "make one with `vxwire gensecret > /etc/vxwire/secret && chmod 600 /etc/vxwire/secret` " +
	"(or `head -c 32 /dev/urandom | base64 > /etc/vxwire/secret`) on one host, copy it to every host, " +
	"and set secret_file to its path"

// loadHost reads the files and looks up the names of the [host] table,
// filling the fields that Parse leaves unset. Fields that failed
// validation are skipped.
func (c *Config) loadHost() []*Error {
	var errs []*Error
	h := &c.Host
	if h.PrivateKeyFile != "" {
		field := "host.private_key_file"
		data, msg := readPrivateFile(h.PrivateKeyFile)
		if msg == "" {
			switch k, why := parseKey(string(bytes.TrimSpace(data))); why {
			case keyFormat:
				msg = h.PrivateKeyFile + " does not hold a base64 WireGuard private key (44 characters, as wg genkey prints)"
			case keyZero:
				msg = h.PrivateKeyFile + " holds the all-zero key; generate one with wg genkey"
			default:
				h.PrivateKey, h.HasPrivateKey = k, true
			}
		}
		if msg != "" {
			errs = append(errs, c.Errorf(field, "%s", msg))
		}
	}
	if h.HasPrivateKey {
		pub := c.HostPublicKey()
		for i, p := range c.Peers {
			if p.HasPublicKey && p.PublicKey == pub {
				errs = append(errs, c.Errorf(indexPath("peer", i)+".public_key",
					"%s is the host's own public key (of host.private_key_file)", encodeKey(pub)))
			}
		}
	}
	if h.SecretFile == "" && len(c.Peers) > 0 {
		// Without a secret anyone who reaches the gossip port could
		// announce records and networks.
		errs = append(errs, c.Errorf("host.secret_file",
			"the host has peers, so gossip must be authenticated, but secret_file is not set; %s", SecretHint))
	}
	if h.SecretFile != "" {
		data, msg := readPrivateFile(h.SecretFile)
		data = bytes.TrimRight(data, "\r\n")
		switch {
		case msg != "":
		case len(data) == 0:
			msg = h.SecretFile + " is empty"
		case len(data) < MinSecretLen:
			msg = fmt.Sprintf("%s holds %d bytes; the secret must be at least %d bytes long", h.SecretFile, len(data), MinSecretLen)
		default:
			h.Secret = data
		}
		if msg != "" {
			errs = append(errs, c.Errorf("host.secret_file", "%s", msg))
		}
	}
	if h.APIGroup != "" {
		g, err := user.LookupGroup(h.APIGroup)
		var unknown user.UnknownGroupError
		switch {
		case errors.As(err, &unknown):
			errs = append(errs, c.Errorf("host.api_group", "group %q does not exist", h.APIGroup))
		case err != nil:
			errs = append(errs, c.Errorf("host.api_group", "cannot look up group %q: %v", h.APIGroup, err))
		default:
			gid, err := strconv.Atoi(g.Gid)
			if err != nil || gid < 0 {
				errs = append(errs, c.Errorf("host.api_group", "group %q has the non-numeric id %q", h.APIGroup, g.Gid))
			} else {
				h.APIGID = gid
			}
		}
	}
	if len(h.DNSUpstream) == 0 {
		for _, name := range resolvConfs {
			data, err := os.ReadFile(name)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				errs = append(errs, c.Errorf("host.dns_upstream", "cannot read %s: %v; list the servers in dns_upstream", name, unwrapPath(err)))
				break
			}
			if h.DNSUpstream = ParseResolvConf(data); len(h.DNSUpstream) > 0 {
				break
			}
		}
	}
	return errs
}

// readPrivateFile reads a file that must be private to its owner: a
// regular file with no permission bits for group or others. It returns
// the content, or why the file is refused. The content is never part of
// the message.
func readPrivateFile(name string) ([]byte, string) {
	// Stat first so that a FIFO is refused rather than opened, which
	// would block.
	fi, err := os.Stat(name)
	if err == nil && !fi.Mode().IsRegular() {
		return nil, name + " is not a regular file"
	}
	var f *os.File
	if err == nil {
		f, err = os.Open(name)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, name + " does not exist"
	case err != nil:
		return nil, fmt.Sprintf("cannot read %s: %v", name, unwrapPath(err))
	}
	defer f.Close()
	// Check the permissions of the file actually opened.
	if fi, err = f.Stat(); err != nil {
		return nil, fmt.Sprintf("cannot read %s: %v", name, unwrapPath(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, name + " is not a regular file"
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		how := "readable"
		if perm&0o044 == 0 {
			how = "writable or executable"
		}
		return nil, fmt.Sprintf("%s is %s by group or others (mode %04o); chmod 600 it", name, how, perm)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	switch {
	case err != nil:
		return nil, fmt.Sprintf("cannot read %s: %v", name, unwrapPath(err))
	case len(data) > maxKeyFileSize:
		return nil, fmt.Sprintf("%s is larger than %d bytes", name, maxKeyFileSize)
	}
	return data, ""
}

// unwrapPath drops the operation and path that a *fs.PathError repeats,
// since messages name the path already.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
