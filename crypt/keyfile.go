package crypt

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// LoadOrCreateKeyFile returns the key kept hex-encoded in the file at path,
// creating the file with a new random key (mode 0600, parent directories
// 0700) when there is none, so that a first start needs no setup. created
// tells the caller to say so loudly: losing that file loses every secret.
//
// Several processes may start at once on a shared volume. The new key is
// written to a temporary file and then hard-linked to path, which, like
// O_EXCL, fails when path exists; unlike O_EXCL it never lets another process
// see a half-written file. The loser of the race reads the winner's key.
func LoadOrCreateKeyFile(path string) (key []byte, created bool, err error) {
	key, err = readKeyFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("crypt: create key directory: %w", err)
	}
	key = make([]byte, KeySize)
	rand.Read(key) // never fails since Go 1.24

	// CreateTemp opens with O_EXCL and mode 0600.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, false, fmt.Errorf("crypt: create key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(hex.EncodeToString(key) + "\n")
	if err == nil {
		err = tmp.Sync() // the key must survive a crash once anything is sealed with it
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, false, fmt.Errorf("crypt: write key file: %w", err)
	}

	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			key, err = readKeyFile(path) // another process won the race
			return key, false, err
		}
		return nil, false, fmt.Errorf("crypt: create key file: %w", err)
	}
	return key, true, nil
}

// readKeyFile returns an error matching fs.ErrNotExist when there is no file.
// Its errors name the path but never the contents.
func readKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("crypt: read key file: %w", err)
	}
	key, err := ParseHexKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("%w (key file %s)", err, path)
	}
	return key, nil
}
