package delivery

import (
	"encoding/pem"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A domain's directory:
//
//	DIR/<domain>/.dcvaas-sync          marks it as ours (prune touches nothing else)
//	DIR/<domain>/v-<time>/*.pem        one complete version per certificate
//	DIR/<domain>/current -> v-<time>   swapped with one rename(2)
//	DIR/<domain>/fullchain.pem -> current/fullchain.pem  (and the other four)
//
// A new version is written and synced in full beside the old, then
// `current` is replaced atomically: a reader sees the old set or the new
// one, never a new certificate with an old key. The previous version is
// kept (a reader may still have it open); older ones go.

const marker = ".dcvaas-sync"

// pemFiles are the files of a version, with their modes: the key and the
// bundle holding it are for the owner only.
var pemFiles = []struct {
	name string
	mode os.FileMode
}{
	{"fullchain.pem", 0o644}, {"cert.pem", 0o644}, {"chain.pem", 0o644},
	{"privkey.pem", 0o600}, {"bundle.pem", 0o600},
}

func writeSet(dir, etag string, c apiCertificate) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, marker), []byte("managed by dcvaas sync\n"), 0o644); err != nil {
		return err
	}
	fullchain := ensureNewline(c.CertificatePEM)
	key := ensureNewline(c.PrivateKeyPEM)
	contents := map[string]string{
		"fullchain.pem": fullchain,
		"cert.pem":      leaf(fullchain),
		"chain.pem":     ensureNewline(c.ChainPEM),
		"privkey.pem":   key,
		"bundle.pem":    fullchain + key,
	}
	version := "v-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	vdir := filepath.Join(dir, version)
	if err := os.Mkdir(vdir, 0o755); err != nil {
		return err
	}
	for _, f := range pemFiles {
		if err := writeSynced(filepath.Join(vdir, f.name), []byte(contents[f.name]), f.mode); err != nil {
			os.RemoveAll(vdir)
			return err
		}
	}
	if err := writeSynced(filepath.Join(vdir, ".etag"), []byte(etag+"\n"), 0o644); err != nil {
		os.RemoveAll(vdir)
		return err
	}
	syncDir(vdir)
	previous, _ := os.Readlink(filepath.Join(dir, "current"))
	tmp := filepath.Join(dir, ".current.tmp")
	os.Remove(tmp)
	if err := os.Symlink(version, tmp); err != nil {
		os.RemoveAll(vdir)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, "current")); err != nil {
		os.RemoveAll(vdir)
		return err
	}
	for _, f := range pemFiles {
		link := filepath.Join(dir, f.name)
		if target, err := os.Readlink(link); err == nil && target == filepath.Join("current", f.name) {
			continue
		}
		os.Remove(link)
		if err := os.Symlink(filepath.Join("current", f.name), link); err != nil {
			return err
		}
	}
	syncDir(dir)
	// Keep current and the previous version; older ones are nobody's.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, "v-") && n != version && n != previous {
			os.RemoveAll(filepath.Join(dir, n))
		}
	}
	return nil
}

func writeSynced(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// prune removes the directories (ours only) of domains not in seen.
func (a *Agent) prune(seen map[string]bool) []string {
	pruned := []string{}
	entries, err := os.ReadDir(a.cfg.Dir)
	if err != nil {
		return pruned
	}
	for _, e := range entries {
		if !e.IsDir() || seen[e.Name()] {
			continue
		}
		dir := filepath.Join(a.cfg.Dir, e.Name())
		if _, err := os.Stat(filepath.Join(dir, marker)); err != nil {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			a.cfg.Logger.Warn("prune", "dir", dir, "err", err)
			continue
		}
		pruned = append(pruned, e.Name())
	}
	return pruned
}

func ensureNewline(s string) string {
	if s != "" && !strings.HasSuffix(s, "\n") {
		return s + "\n"
	}
	return s
}

// leaf is the first certificate of a PEM chain.
func leaf(chain string) string {
	b, _ := pem.Decode([]byte(chain))
	if b == nil {
		return ""
	}
	return string(pem.EncodeToMemory(b))
}
