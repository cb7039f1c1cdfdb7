package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// The page size of a SQLite file is fixed when its first page is written,
// and in WAL mode it cannot change at all (not even by VACUUM). Open sets
// it on a new, empty file before WAL is enabled; an existing file keeps its
// own, and ConvertPageSize rewrites it on request.

// filePageSize reads the page size from the header of an existing database
// file; 0 when the file does not exist or is empty (SQLite treats both as a
// new database), or its header is not a SQLite header (SQLite will say so).
func filePageSize(path string) (int, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: read the header of %s: %w", path, err)
	}
	defer f.Close()
	var header [100]byte
	if _, err := io.ReadFull(f, header[:]); err != nil {
		return 0, nil // shorter than a header: empty, SQLite writes a new one
	}
	if !bytes.HasPrefix(header[:], []byte("SQLite format 3\x00")) {
		return 0, nil
	}
	// Offset 16, big-endian; 1 means 65536 (https://www.sqlite.org/fileformat.html).
	n := int(binary.BigEndian.Uint16(header[16:18]))
	if n == 1 {
		n = 65536
	}
	return n, nil
}

// PageSize is the page size of the store's database file.
func (s *Store) PageSize() int { return s.pageSize }

// ConvertPageSize rewrites the database file at path with pages of pageSize
// bytes (VACUUM, with the journal switched out of WAL for it and back
// after), keeping every row. It needs the database to itself: while a
// collector or any other process has it open, switching out of WAL fails
// and nothing changes. VACUUM writes a copy of the database first, so it
// needs free disk space about the size of the file, and takes about as
// long as reading and writing it. Returns the page size before and after;
// a file that has pageSize already is left alone.
func ConvertPageSize(ctx context.Context, path string, pageSize int) (before, after int, err error) {
	if err := checkPageSize(pageSize); err != nil {
		return 0, 0, err
	}
	if st, err := os.Stat(path); err != nil {
		return 0, 0, fmt.Errorf("sqlite: %w", err)
	} else if !st.Mode().IsRegular() {
		return 0, 0, fmt.Errorf("sqlite: %s is not a regular file", path)
	}
	// busy_timeout 0: a database in use fails at once instead of waiting.
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(0)")
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx) // every PRAGMA below on the same connection
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	defer conn.Close()
	pragma := func(stmt string) (string, error) {
		var v string
		err := conn.QueryRowContext(ctx, "PRAGMA "+stmt).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			err = nil
		}
		return v, err
	}
	var v string
	if v, err = pragma("page_size"); err != nil {
		return 0, 0, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	fmt.Sscan(v, &before)
	if before == pageSize {
		return before, before, nil
	}
	mode, err := pragma("journal_mode")
	if err != nil {
		return before, before, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	if mode, err = pragma("journal_mode=DELETE"); err != nil || mode != "delete" {
		return before, before, fmt.Errorf("sqlite: %s is in use (stop the collector and anything else that has it open, then retry): "+
			"switching the journal out of WAL failed: %v", path, errOr(err, "journal_mode is "+mode))
	}
	// From here on, put the file back in WAL mode whatever happens.
	defer func() {
		if m, werr := pragma("journal_mode=WAL"); werr != nil || m != "wal" {
			err = errors.Join(err, fmt.Errorf("sqlite: %s: switching the journal back to WAL failed (%v): "+
				"the collector does so at its next start", path, errOr(werr, "journal_mode is "+m)))
		}
	}()
	if _, err = pragma(fmt.Sprintf("page_size=%d", pageSize)); err != nil {
		return before, before, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	if _, err = conn.ExecContext(ctx, "VACUUM"); err != nil {
		return before, before, fmt.Errorf("sqlite: VACUUM %s: %w", path, err)
	}
	if v, err = pragma("page_size"); err != nil {
		return before, 0, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	fmt.Sscan(v, &after)
	if after != pageSize {
		return before, after, fmt.Errorf("sqlite: %s: page size is %d after VACUUM, not %d", path, after, pageSize)
	}
	return before, after, nil
}

func errOr(err error, otherwise string) error {
	if err != nil {
		return err
	}
	return errors.New(strings.TrimSpace(otherwise))
}
