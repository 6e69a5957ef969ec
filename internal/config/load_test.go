package config

import (
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// useResolvConfs points Load at the given resolv.conf files for one test.
func useResolvConfs(t *testing.T, names ...string) {
	t.Helper()
	saved := resolvConfs
	resolvConfs = names
	t.Cleanup(func() { resolvConfs = saved })
}

// writeFile writes a file with exactly mode perm, whatever the umask.
func writeFile(t *testing.T, name, body string, perm os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(name, []byte(body), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(name, perm); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestLoadKeys(t *testing.T) {
	dir := t.TempDir()
	useResolvConfs(t, writeFile(t, filepath.Join(dir, "resolv.conf"), "nameserver 192.0.2.53\n", 0o644))
	key := writeFile(t, filepath.Join(dir, "h1.key"), testPrivAlice+"\n", 0o600)
	secret := writeFile(t, filepath.Join(dir, "secret"), "0123456789abcdef\r\n", 0o400)
	conf := func(t *testing.T, lines ...[]string) string {
		t.Helper()
		return writeFile(t, filepath.Join(t.TempDir(), "h1.toml"), doc(lines...), 0o600)
	}
	keyLine := func(path string) []string { return []string{`private_key_file = "` + path + `"`} }
	secretLine := func(path string) []string { return []string{`secret_file = "` + path + `"`} }
	check := func(t *testing.T, p string, want ...string) {
		t.Helper()
		_, err := Load(p)
		for i := range want {
			want[i] = p + ":" + want[i]
		}
		if got := messages(t, err); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}

	t.Run("ok", func(t *testing.T) {
		p := conf(t, hostBlock, keyLine(key), secretLine(secret), peerBlock,
			[]string{`public_key = "` + testPubBob + `"`}, blueBlock, []string{`encrypted = true`})
		c, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		h := c.Host
		if !h.HasPrivateKey || h.PrivateKey != mustKey(t, testPrivAlice) {
			t.Errorf("private key not loaded: %v", h.HasPrivateKey)
		}
		if c.HostPublicKey() != mustKey(t, testPubAlice) {
			t.Errorf("HostPublicKey = %s", encodeKey(c.HostPublicKey()))
		}
		if string(h.Secret) != "0123456789abcdef" {
			t.Errorf("Secret = %q", h.Secret)
		}
		if h.APIGID != -1 {
			t.Errorf("APIGID = %d without api_group", h.APIGID)
		}
	})
	t.Run("surrounding whitespace", func(t *testing.T) {
		k := writeFile(t, filepath.Join(t.TempDir(), "k"), "\n  "+testPrivAlice+" \t\n\n", 0o600)
		c, err := Load(conf(t, hostBlock, keyLine(k)))
		if err != nil || c.Host.PrivateKey != mustKey(t, testPrivAlice) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("key readable by others", func(t *testing.T) {
		k := writeFile(t, filepath.Join(t.TempDir(), "h1.key"), testPrivAlice, 0o644)
		check(t, conf(t, hostBlock, keyLine(k)),
			"4: host.private_key_file: "+k+" is readable by group or others (mode 0644); chmod 600 it")
	})
	t.Run("key readable by group", func(t *testing.T) {
		k := writeFile(t, filepath.Join(t.TempDir(), "h1.key"), testPrivAlice, 0o640)
		check(t, conf(t, hostBlock, keyLine(k)),
			"4: host.private_key_file: "+k+" is readable by group or others (mode 0640); chmod 600 it")
	})
	t.Run("key writable by group", func(t *testing.T) {
		k := writeFile(t, filepath.Join(t.TempDir(), "h1.key"), testPrivAlice, 0o620)
		check(t, conf(t, hostBlock, keyLine(k)),
			"4: host.private_key_file: "+k+" is writable or executable by group or others (mode 0620); chmod 600 it")
	})
	t.Run("key through a symlink", func(t *testing.T) {
		k := writeFile(t, filepath.Join(t.TempDir(), "h1.key"), testPrivAlice, 0o644)
		link := filepath.Join(t.TempDir(), "link")
		if err := os.Symlink(k, link); err != nil {
			t.Fatal(err)
		}
		check(t, conf(t, hostBlock, keyLine(link)),
			"4: host.private_key_file: "+link+" is readable by group or others (mode 0644); chmod 600 it")
	})
	t.Run("key missing", func(t *testing.T) {
		k := filepath.Join(dir, "absent.key")
		check(t, conf(t, hostBlock, keyLine(k)), "4: host.private_key_file: "+k+" does not exist")
	})
	t.Run("key is a directory", func(t *testing.T) {
		check(t, conf(t, hostBlock, keyLine(dir)), "4: host.private_key_file: "+dir+" is not a regular file")
	})
	t.Run("key content", func(t *testing.T) {
		for _, body := range []string{"", "not a key\n", testPubBob[:43] + "\n", testPubBob + testPubBob, "[Interface]\nPrivateKey = " + testPrivAlice + "\n"} {
			k := writeFile(t, filepath.Join(t.TempDir(), "h1.key"), body, 0o600)
			check(t, conf(t, hostBlock, keyLine(k)),
				"4: host.private_key_file: "+k+" does not hold a base64 WireGuard private key (44 characters, as wg genkey prints)")
		}
	})
	t.Run("key zero", func(t *testing.T) {
		k := writeFile(t, filepath.Join(t.TempDir(), "h1.key"), strings.Repeat("A", 43)+"=\n", 0o600)
		check(t, conf(t, hostBlock, keyLine(k)),
			"4: host.private_key_file: "+k+" holds the all-zero key; generate one with wg genkey")
	})
	t.Run("peer uses the host's key", func(t *testing.T) {
		check(t, conf(t, hostBlock, keyLine(key), secretLine(secret), peerBlock, []string{`public_key = "` + testPubAlice + `"`}),
			"9: peer[0].public_key: "+testPubAlice+" is the host's own public key (of host.private_key_file)")
	})
	t.Run("peers without a secret", func(t *testing.T) {
		check(t, conf(t, hostBlock, peerBlock),
			"1: host.secret_file: the host has peers, so gossip must be authenticated, but secret_file is not set; "+SecretHint)
	})
	t.Run("no peers, no secret", func(t *testing.T) {
		if _, err := Load(conf(t, hostBlock, blueBlock)); err != nil {
			t.Errorf("a host without peers needs no secret: %v", err)
		}
	})
	t.Run("secret short", func(t *testing.T) {
		s := writeFile(t, filepath.Join(t.TempDir(), "secret"), "0123456789abcde\n", 0o600)
		check(t, conf(t, hostBlock, secretLine(s)),
			"4: host.secret_file: "+s+" holds 15 bytes; the secret must be at least 16 bytes long")
	})
	t.Run("secret empty", func(t *testing.T) {
		s := writeFile(t, filepath.Join(t.TempDir(), "secret"), "\n\n", 0o600)
		check(t, conf(t, hostBlock, secretLine(s)), "4: host.secret_file: "+s+" is empty")
	})
	t.Run("secret binary", func(t *testing.T) {
		body := "\x00\xff\n\x01 inner newline kept \x02\n"
		s := writeFile(t, filepath.Join(t.TempDir(), "secret"), body, 0o600)
		c, err := Load(conf(t, hostBlock, secretLine(s)))
		if err != nil || string(c.Host.Secret) != strings.TrimSuffix(body, "\n") {
			t.Errorf("got %q, %v", c.Host.Secret, err)
		}
	})
	t.Run("secret readable by others", func(t *testing.T) {
		s := writeFile(t, filepath.Join(t.TempDir(), "secret"), "0123456789abcdef", 0o604)
		check(t, conf(t, hostBlock, secretLine(s)),
			"4: host.secret_file: "+s+" is readable by group or others (mode 0604); chmod 600 it")
	})
	t.Run("all problems together", func(t *testing.T) {
		k := writeFile(t, filepath.Join(t.TempDir(), "h1.key"), testPrivAlice, 0o666)
		check(t, conf(t, hostBlock, keyLine(k), secretLine(filepath.Join(dir, "absent")), []string{`port = 0`}),
			"4: host.private_key_file: "+k+" is readable by group or others (mode 0666); chmod 600 it",
			"5: host.secret_file: "+filepath.Join(dir, "absent")+" does not exist",
			"6: host.port: port 0 is out of range 1..65535")
	})
}

func TestLoadAPIGroup(t *testing.T) {
	useResolvConfs(t)
	conf := func(t *testing.T, group string) string {
		return writeFile(t, filepath.Join(t.TempDir(), "h1.toml"), doc(hostBlock, []string{`api_group = "` + group + `"`}), 0o600)
	}
	t.Run("missing", func(t *testing.T) {
		p := conf(t, "vxwire-no-such-group")
		_, err := Load(p)
		want := p + `:4: host.api_group: group "vxwire-no-such-group" does not exist`
		if got := messages(t, err); len(got) != 1 || got[0] != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("exists", func(t *testing.T) {
		g, err := user.LookupGroupId("0")
		if err != nil {
			t.Skipf("no group 0: %v", err)
		}
		c, err := Load(conf(t, g.Name))
		if err != nil {
			t.Fatal(err)
		}
		if c.Host.APIGroup != g.Name || c.Host.APIGID != 0 {
			t.Errorf("APIGroup %q, APIGID %d", c.Host.APIGroup, c.Host.APIGID)
		}
	})
}

func TestLoadDNSUpstream(t *testing.T) {
	dir := t.TempDir()
	stub := writeFile(t, filepath.Join(dir, "stub"), "nameserver 127.0.0.53\noptions edns0 trust-ad\n", 0o644)
	upstream := writeFile(t, filepath.Join(dir, "upstream"), "nameserver 192.0.2.53\nnameserver 2001:db8::53\n", 0o644)
	other := writeFile(t, filepath.Join(dir, "other"), "nameserver 198.51.100.53\n", 0o644)
	absent := filepath.Join(dir, "absent")
	want := []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53"), netip.MustParseAddrPort("[2001:db8::53]:53")}
	load := func(t *testing.T, lines ...[]string) (*Config, string, error) {
		t.Helper()
		p := writeFile(t, filepath.Join(t.TempDir(), "h1.toml"), doc(lines...), 0o600)
		c, err := Load(p)
		return c, p, err
	}
	tests := []struct {
		name  string
		files []string
		want  []netip.AddrPort
	}{
		{"first file", []string{upstream, other}, want},
		{"stub only: the next file", []string{stub, upstream}, want},
		{"missing: the next file", []string{absent, upstream}, want},
		{"nothing usable", []string{stub, absent}, nil},
		{"no files", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			useResolvConfs(t, tt.files...)
			c, _, err := load(t, hostBlock)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Host.DNSUpstream, tt.want) {
				t.Errorf("DNSUpstream = %v, want %v", c.Host.DNSUpstream, tt.want)
			}
		})
	}
	t.Run("explicit list wins", func(t *testing.T) {
		useResolvConfs(t, upstream)
		c, _, err := load(t, hostBlock, []string{`dns_upstream = ["198.51.100.1"]`})
		if err != nil {
			t.Fatal(err)
		}
		if want := []netip.AddrPort{netip.MustParseAddrPort("198.51.100.1:53")}; !slices.Equal(c.Host.DNSUpstream, want) {
			t.Errorf("DNSUpstream = %v", c.Host.DNSUpstream)
		}
	})
	t.Run("unreadable", func(t *testing.T) {
		useResolvConfs(t, dir, upstream)
		_, p, err := load(t, hostBlock)
		want := p + ":1: host.dns_upstream: cannot read " + dir + ": is a directory; list the servers in dns_upstream"
		if got := messages(t, err); len(got) != 1 || got[0] != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}
