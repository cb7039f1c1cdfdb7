// Package atomicfile replaces files that a running collector reads (the keys
// file, the pricing file) so that a reader sees either the old or the new
// content, never a partial file, and a crash leaves one of the two.
package atomicfile // import "github.com/fallom/fallom-collector/internal/atomicfile"

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// OwnerError is returned, before anything is replaced, when the file belongs
// to another user and group than the writer's and the new file cannot be
// given them back.
type OwnerError struct {
	UID, GID int
	Err      error
}

func (e *OwnerError) Error() string {
	return fmt.Sprintf("the file belongs to uid %d gid %d and the rewritten file could not be given that owner back (%v); nothing was changed",
		e.UID, e.GID, e.Err)
}

func (e *OwnerError) Unwrap() error { return e.Err }

// Write replaces path with data: it writes a temporary file in the same
// directory, syncs it and renames it over path. A new file gets newMode and
// a missing directory is created with dirMode; an existing file keeps its
// mode and its owner and group (a CLI run as root on a file of the user the
// collector runs as must not leave a file the collector cannot read; if the
// owner cannot be given back, *OwnerError and nothing changes). path must
// not be a symbolic link: the rename would replace the link. Errors say which
// step failed; callers add which file it was.
func Write(path string, data []byte, newMode, dirMode os.FileMode) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("creating directory: %w", err)
	}
	mode := newMode
	old, statErr := os.Stat(path)
	if statErr == nil {
		mode = old.Mode().Perm()
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating temporary file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if old != nil {
		if err = keepOwner(tmp, old); err != nil {
			_ = tmp.Close()
			return err
		}
	}
	if _, err = tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("writing temporary file: %w", err)
	}
	if err = tmp.Chmod(mode); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("setting file mode: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("syncing temporary file: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("closing temporary file: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replacing file: %w", err)
	}
	// Make the rename durable; failure here does not undo the write.
	if d, dirErr := os.Open(dir); dirErr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// keepOwner gives the new file (tmp) the owner and group of the file it
// replaces, when they are not the writer's own (the temporary file has
// those already).
func keepOwner(tmp *os.File, old fs.FileInfo) error {
	st, ok := old.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	uid, gid := int(st.Uid), int(st.Gid)
	if uid == os.Geteuid() && gid == os.Getegid() {
		return nil
	}
	if err := tmp.Chown(uid, gid); err != nil {
		return &OwnerError{UID: uid, GID: gid, Err: err}
	}
	return nil
}
