package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vxwire/vxwire/internal/config"
)

func TestRunUsageErrors(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no command", nil, exitUsage, "Usage:"},
		{"unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"up without file", []string{"up"}, exitUsage, "up needs -c FILE"},
		{"up bad flag", []string{"up", "--bogus"}, exitUsage, "flag provided but not defined: -bogus"},
		{"up bad level", []string{"up", "-c", "x.toml", "--log-level", "loud"}, exitUsage, `--log-level "loud"`},
		{"config without check", []string{"config"}, exitUsage, "vxwire config check -c FILE"},
		{"config check without file", []string{"config", "check"}, exitUsage, "config check needs -c FILE"},
		{"status extra arg", []string{"status", "extra"}, exitUsage, `unexpected argument "extra"`},
		{"status no daemon", []string{"status", "--socket", "/nonexistent/vxwire.sock"}, exitNoConn, "cannot reach the daemon"},
		{"config check missing file", []string{"config", "check", "-c", "/nonexistent/h1.toml"}, exitFail, "/nonexistent/h1.toml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tt.args, strings.NewReader(""), &out, &errb)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tt.wantCode, errb.String())
			}
			if !strings.Contains(errb.String(), tt.wantErr) {
				t.Fatalf("stderr %q does not mention %q", errb.String(), tt.wantErr)
			}
		})
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "h1.toml")
	os.WriteFile(good, []byte("[host]\nname = \"h1\"\naddress = \"198.18.0.1\"\n"), 0o600)
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[host]\nname = \"h1\"\naddress = \"198.18.0.1\"\n[[network]]\nname = \"blue\"\nvni = 256\nsubnet = \"10.77.0.0/33\"\n"), 0o600)
	var out, errb bytes.Buffer
	if code := run([]string{"config", "check", "-c", good}, nil, &out, &errb); code != exitOK {
		t.Fatalf("valid file: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "ok") {
		t.Fatalf("stdout %q", out.String())
	}
	errb.Reset()
	if code := run([]string{"config", "check", "-c", bad}, nil, &out, &errb); code != exitFail {
		t.Fatalf("invalid file: exit %d", code)
	}
	if !strings.Contains(errb.String(), "bad.toml:7: network[0].subnet") {
		t.Fatalf("error %q does not name file:line and field", errb.String())
	}

	// Peers without a secret: gossip would be open to anyone.
	open := filepath.Join(dir, "open.toml")
	os.WriteFile(open, []byte("[host]\nname = \"h1\"\naddress = \"198.18.0.1\"\n[[peer]]\nname = \"h2\"\naddress = \"198.18.0.2\"\n"), 0o600)
	errb.Reset()
	if code := run([]string{"config", "check", "-c", open}, nil, &out, &errb); code == exitOK {
		t.Fatal("config with peers and no secret_file passed config check")
	}
	for _, want := range []string{"open.toml:1: host.secret_file", "vxwire gensecret", "head -c 32 /dev/urandom | base64"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("error %q does not mention %q", errb.String(), want)
		}
	}
}

func TestGensecret(t *testing.T) {
	seen := map[string]bool{}
	for range 2 {
		var out, errb bytes.Buffer
		if code := run([]string{"gensecret"}, nil, &out, &errb); code != exitOK {
			t.Fatalf("gensecret: exit %d: %s", code, errb.String())
		}
		s := strings.TrimSuffix(out.String(), "\n")
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != 32 {
			t.Fatalf("gensecret printed %q: want 32 bytes in base64 (%v)", out.String(), err)
		}
		if len(s) < config.MinSecretLen {
			t.Fatalf("secret %q is shorter than config.MinSecretLen", s)
		}
		if seen[s] {
			t.Fatalf("gensecret printed %q twice", s)
		}
		seen[s] = true
	}
	var out, errb bytes.Buffer
	if code := run([]string{"gensecret", "extra"}, nil, &out, &errb); code == exitOK {
		t.Errorf("gensecret with an argument succeeded")
	}
}

func TestKeysMatchWireGuardTools(t *testing.T) {
	var priv, pub, errb bytes.Buffer
	if code := run([]string{"genkey"}, nil, &priv, &errb); code != exitOK {
		t.Fatalf("genkey: exit %d: %s", code, errb.String())
	}
	if code := run([]string{"pubkey"}, strings.NewReader(priv.String()), &pub, &errb); code != exitOK {
		t.Fatalf("pubkey: exit %d: %s", code, errb.String())
	}
	var junk bytes.Buffer
	if code := run([]string{"pubkey"}, strings.NewReader("not a key\n"), &junk, &errb); code != exitFail {
		t.Fatalf("pubkey of garbage: exit %d", code)
	}
	wg, err := exec.LookPath("wg")
	if err != nil {
		t.Skip("wg (Debian package wireguard-tools) not installed; cannot compare with it")
	}
	cmd := exec.Command(wg, "pubkey")
	cmd.Stdin = strings.NewReader(priv.String())
	want, err := cmd.Output()
	if err != nil {
		t.Fatalf("wg pubkey: %v", err)
	}
	if pub.String() != string(want) {
		t.Fatalf("pubkey %q, wg pubkey %q", pub.String(), want)
	}
}
