package keys

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ResolveLink follows path through symbolic links to the file they name
// (which may not exist yet). The CLI writes there, so a keys file that is a
// link (to a shared volume, a secrets mount) stays a link, and the extension
// watches that file's directory as well as the link's.
func ResolveLink(path string) (string, error) {
	for range 40 {
		fi, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			return path, nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return path, nil
		}
		target, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		path = target
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links", path)
}

// lockForEdit takes an exclusive lock for a read-modify-write of the keys
// file at target, so concurrent `keys` runs (a revoke racing two creates)
// see each other's writes instead of overwriting them. The lock is an
// flock(2) on a companion file "<target>.lock": the keys file itself is
// replaced by rename, so a lock on it would be on the old inode. The
// companion file is left in place (removing it would let two runs lock two
// different inodes).
func lockForEdit(target string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		return nil, fmt.Errorf("creating directory for keys file: %w", err)
	}
	f, err := os.OpenFile(target+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the keys file lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking the keys file: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}
