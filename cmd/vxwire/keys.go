package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	"github.com/vxwire/vxwire/crypto"
)

// cmdGenkey prints a new private key, in the format of `wg genkey`.
func cmdGenkey(args []string, stdout io.Writer) error {
	if err := parseFlags(newFlags("genkey"), args); err != nil {
		return err
	}
	k, err := crypto.GenerateKey()
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, k.String())
	return nil
}

// secretBytes is the size of a secret made by gensecret: 256 bits.
const secretBytes = 32

// cmdGensecret prints a new random cluster secret for [host] secret_file:
// 32 random bytes in base64, as `head -c 32 /dev/urandom | base64` makes.
func cmdGensecret(args []string, stdout io.Writer) error {
	if err := parseFlags(newFlags("gensecret"), args); err != nil {
		return err
	}
	var b [secretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("cannot read random bytes: %w", err)
	}
	fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(b[:]))
	return nil
}

// cmdPubkey reads a private key on stdin and prints its public key, like
// `wg pubkey`.
func cmdPubkey(args []string, stdin io.Reader, stdout io.Writer) error {
	if err := parseFlags(newFlags("pubkey"), args); err != nil {
		return err
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		return fmt.Errorf("cannot read the private key from stdin: %w", err)
	}
	k, err := crypto.ParseKey(strings.TrimSpace(line))
	if err != nil {
		return fmt.Errorf("stdin: %w", err)
	}
	fmt.Fprintln(stdout, k.Public().String())
	return nil
}
