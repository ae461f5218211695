package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/zaqar-raft/zaqar/raftnode"
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
// must hold no Raft state, and records it there as the Raft snapshot a new
// cluster starts from: the store keeps the backup's applied index I, and
// the Raft snapshot store gets a snapshot at index I whose configuration is
// peers (the new cluster's voters). A node started on that directory needs
// no -bootstrap (its configuration comes from the snapshot); its log goes
// on at I+1, and every node that later joins empty receives the snapshot
// (Raft has no log entry at or below I to send it) instead of a log that
// does not contain the restored data.
//
// Run it on the data directory of every voter named in peers, or on one
// node with peers naming that node alone and grow the cluster with -join.
func restoreSnapshot(path, dataDir, peerList string, out io.Writer) error {
	peers, err := raftnode.ParsePeers(peerList)
	if err != nil {
		return err
	}
	if len(peers) == 0 {
		return errors.New("restore needs the new cluster's voters as id=host:port,...")
	}
	applied, err := verifyFile(path)
	if err != nil {
		return err
	}
	raftDir := filepath.Join(dataDir, "raft")
	if _, err := os.Stat(filepath.Join(raftDir, "raft.db")); err == nil {
		return errors.New(dataDir + " belongs to an existing node (it has Raft state); restore into an empty data directory")
	}
	if m, _ := filepath.Glob(filepath.Join(raftDir, "snapshots", "*")); len(m) > 0 {
		return errors.New(dataDir + " belongs to an existing node (it has Raft snapshots); restore into an empty data directory")
	}
	index := max(applied, 1)

	// The store first: the backup's data and applied index.
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
	if err := st.Restore(f); err != nil {
		st.Close()
		return err
	}
	digest, err := st.Digest()
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}

	// Then the Raft snapshot holding the same stream, and a current term
	// equal to the snapshot's so that the first election starts above it.
	if err := os.MkdirAll(raftDir, 0o755); err != nil {
		return err
	}
	hlog := hclog.New(&hclog.LoggerOptions{Name: "zaqarctl", Level: hclog.Warn, Output: io.Discard})
	snaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, 2, hlog)
	if err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	var conf raft.Configuration
	for _, p := range peers {
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Address)})
	}
	_, trans := raft.NewInmemTransport("")
	const term = 1
	sink, err := snaps.Create(raft.SnapshotVersionMax, index, term, conf, index, trans)
	if err != nil {
		return fmt.Errorf("create raft snapshot: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		_ = sink.Cancel()
		return err
	}
	if _, err := io.Copy(sink, f); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("write raft snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("write raft snapshot: %w", err)
	}
	logs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(raftDir, "raft.db")})
	if err != nil {
		return fmt.Errorf("open raft log: %w", err)
	}
	err = logs.SetUint64([]byte("CurrentTerm"), term)
	if cerr := logs.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write raft term: %w", err)
	}
	fmt.Fprintf(out, "restored %s into %s: state at index %d, digest %x, voters %s; start the node (no -bootstrap needed)\n",
		path, dataDir, applied, digest, peerList)
	return nil
}
