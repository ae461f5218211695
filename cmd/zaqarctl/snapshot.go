package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/zaqar-raft/zaqar/store"
)

// saveSnapshot downloads a backup from the node, verifies its checksum and
// only then moves it into place.
func (c *client) saveSnapshot(ctx context.Context, path string, out io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/admin/cluster/backup", nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Roles", "admin")
	if c.token != "" {
		req.Header.Set("X-Auth-Token", c.token)
	}
	hc := *c.http
	hc.Timeout = 0 // a backup takes as long as it takes; the stream is verified
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("backup: %d %s", resp.StatusCode, msg)
	}
	tmp := path + ".partial"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("backup interrupted after %d bytes: %w", n, err)
	}
	applied, err := verifyFile(tmp)
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	fmt.Fprintf(out, "saved %s: %d bytes, state at index %d, checksum verified\n", path, n, applied)
	return nil
}

func verifyFile(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	applied, err := store.VerifySnapshot(f)
	if err != nil {
		return 0, fmt.Errorf("%s is not a valid backup: %w", path, err)
	}
	return applied, nil
}

func verifySnapshot(path string, out io.Writer) error {
	applied, err := verifyFile(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: valid, state at index %d\n", path, applied)
	return nil
}

// restoreSnapshot loads a backup into a new node's data directory, which
// must not hold Raft state: the node then starts a new cluster (bootstrap)
// whose log starts at 1 on top of the restored data.
func restoreSnapshot(path, dataDir string, out io.Writer) error {
	if _, err := verifyFile(path); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dataDir, "raft", "raft.db")); err == nil {
		return errors.New(dataDir + " belongs to an existing node (it has Raft state); restore into an empty data directory")
	}
	st, err := store.Open(filepath.Join(dataDir, "pebble"), store.Options{})
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		st.Close()
		return err
	}
	defer f.Close()
	if err := st.RestoreBackup(f); err != nil {
		st.Close()
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	fmt.Fprintf(out, "restored %s into %s; start the node with -bootstrap to form a new cluster\n", path, dataDir)
	return nil
}
