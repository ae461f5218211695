package raftnode

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/zaqar-raft/zaqar/fsm"
	"github.com/zaqar-raft/zaqar/store"
)

// Recover rewrites the Raft configuration of a stopped node to peers, for
// bringing a cluster back after a majority of its nodes is permanently
// lost (hashicorp/raft's RecoverCluster). Run it on every surviving node
// with the same peers, then start them: they elect a leader among
// themselves. Entries the lost majority had committed but no survivor had
// received are lost; entries a survivor held but that were never committed
// may now be committed.
func Recover(dataDir, nodeID string, st *store.Store, peers []Peer) error {
	if len(peers) == 0 {
		return errors.New("raftnode: recover needs the surviving peers")
	}
	found := false
	var conf raft.Configuration
	for _, p := range peers {
		found = found || p.ID == nodeID
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Address)})
	}
	if !found {
		return fmt.Errorf("raftnode: this node (%s) is not among the peers to recover with", nodeID)
	}
	dir := filepath.Join(dataDir, "raft")
	if _, err := os.Stat(filepath.Join(dir, "raft.db")); err != nil {
		return fmt.Errorf("raftnode: no raft state in %s: %w", dataDir, err)
	}
	logs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	if err != nil {
		return fmt.Errorf("raftnode: open raft log: %w", err)
	}
	defer logs.Close()
	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft-recover", Level: hclog.Warn, Output: os.Stderr})
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hlog)
	if err != nil {
		return fmt.Errorf("raftnode: open snapshot store: %w", err)
	}
	f, err := fsm.New(st)
	if err != nil {
		return err
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(nodeID)
	rc.Logger = hlog
	rc.NoSnapshotRestoreOnStart = true
	_, trans := raft.NewInmemTransport(raft.ServerAddress(nodeID))
	if err := raft.RecoverCluster(rc, releasingFSM{f}, logs, logs, snaps, trans, conf); err != nil {
		return fmt.Errorf("raftnode: recover: %w", err)
	}
	return nil
}

// releasingFSM releases each snapshot once it is persisted: RecoverCluster
// persists the snapshot it takes but never releases it, and an unreleased
// store snapshot holds the store's read lock, so closing the store would
// wait forever.
type releasingFSM struct{ *fsm.FSM }

func (r releasingFSM) Snapshot() (raft.FSMSnapshot, error) {
	sn, err := r.FSM.Snapshot()
	if err != nil {
		return nil, err
	}
	return releasingSnapshot{sn}, nil
}

type releasingSnapshot struct{ raft.FSMSnapshot }

func (r releasingSnapshot) Persist(sink raft.SnapshotSink) error {
	defer r.FSMSnapshot.Release()
	return r.FSMSnapshot.Persist(sink)
}

// Release is done by Persist.
func (releasingSnapshot) Release() {}
