package dcvaas

import "time"

// DNSSECKey is one signing key of the verify zone as stored (package
// dnssec gives it meaning). The private half is sealed with the keyring;
// the times are its schedule, the same on every node: in the zone's DNSKEY
// RRset from PublishedAt until RemovedAt, signing from ActiveAt until
// RetiredAt (zero: not scheduled).
type DNSSECKey struct {
	ID            string
	Zone          string // lowercase, no trailing dot
	Flags         int    // 257 key-signing key, 256 zone-signing key
	KeyTag        int
	PublicKey     string // base64, as in the DNSKEY record
	PrivateKeyEnc string // PKCS #8 DER sealed by crypt.Keyring, AD "dnssec-key:" + ID
	PublishedAt   time.Time
	ActiveAt      time.Time
	RetiredAt     time.Time
	RemovedAt     time.Time
	CreatedAt     time.Time
}
