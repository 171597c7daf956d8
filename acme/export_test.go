package acme

import (
	"crypto"

	"github.com/dcvaas/dcvaas/crypt"
)

// AccountKey opens a stored account key, for tests that act as the
// account's owner at the CA (deactivating it).
func AccountKey(kr *crypt.Keyring, caName, directory, keyEnc string) (crypto.Signer, error) {
	p, err := kr.Decrypt(keyEnc, accountKeyAD(caName, directory))
	if err != nil {
		return nil, err
	}
	return decodeKey(p)
}
