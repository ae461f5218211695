package store

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// snapshotMagic starts every snapshot stream; the digit is the format version.
var snapshotMagic = []byte("ZQSNAP1\n")

// Snapshot is a point-in-time copy of the whole store, ready to stream. It
// holds the store's read lock until Close, so a restore waits for it.
type Snapshot struct {
	snap    *pebble.Snapshot
	applied uint64
	release func()
	once    sync.Once
}

// Snapshot captures the store as it is now. The caller must not apply
// entries concurrently with this call (Raft guarantees that for FSM.Snapshot);
// streaming the result may overlap later applies.
func (s *Store) Snapshot() (*Snapshot, error) {
	s.mu.RLock()
	applied, _, err := appliedIn(s.db)
	if err != nil {
		s.mu.RUnlock()
		return nil, err
	}
	return &Snapshot{snap: s.db.NewSnapshot(), applied: applied, release: s.mu.RUnlock}, nil
}

// AppliedIndex is the applied index the snapshot contains.
func (sn *Snapshot) AppliedIndex() uint64 { return sn.applied }

// Close releases the snapshot.
func (sn *Snapshot) Close() {
	sn.once.Do(func() {
		_ = sn.snap.Close()
		sn.release()
	})
}

// WriteTo streams the snapshot: magic, applied index, then length-prefixed
// key/value pairs, a zero-length key as end marker, and a SHA-256 of
// everything before it.
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	bw := bufio.NewWriterSize(cw, 1<<20)
	h := sha256.New()
	out := io.MultiWriter(bw, h)
	var buf []byte
	buf = append(buf, snapshotMagic...)
	buf = binary.BigEndian.AppendUint64(buf, sn.applied)
	if _, err := out.Write(buf); err != nil {
		return cw.n, err
	}
	it, err := sn.snap.NewIter(nil)
	if err != nil {
		return cw.n, fmt.Errorf("store: snapshot iterator: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		buf = buf[:0]
		buf = binary.AppendUvarint(buf, uint64(len(it.Key())))
		buf = append(buf, it.Key()...)
		v := it.Value()
		buf = binary.AppendUvarint(buf, uint64(len(v)))
		buf = append(buf, v...)
		if _, err := out.Write(buf); err != nil {
			it.Close()
			return cw.n, err
		}
	}
	if err := it.Close(); err != nil {
		return cw.n, fmt.Errorf("store: snapshot iterate: %w", err)
	}
	if _, err := out.Write([]byte{0}); err != nil {
		return cw.n, err
	}
	if _, err := bw.Write(h.Sum(nil)); err != nil {
		return cw.n, err
	}
	err = bw.Flush()
	return cw.n, err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ErrBadSnapshot means a snapshot stream is truncated or corrupt.
var ErrBadSnapshot = errors.New("store: bad snapshot stream")

// ReadSnapshotHeader returns the applied index recorded at the start of a
// snapshot stream, reading only the header.
func ReadSnapshotHeader(r io.Reader) (uint64, error) {
	hdr := make([]byte, len(snapshotMagic)+8)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return 0, fmt.Errorf("%w: header: %v", ErrBadSnapshot, err)
	}
	if !bytes.Equal(hdr[:len(snapshotMagic)], snapshotMagic) {
		return 0, fmt.Errorf("%w: unknown format", ErrBadSnapshot)
	}
	return binary.BigEndian.Uint64(hdr[len(snapshotMagic):]), nil
}

// VerifySnapshot reads a whole snapshot stream and checks its checksum,
// returning the applied index it records.
func VerifySnapshot(r io.Reader) (uint64, error) {
	return scanSnapshot(r, func(_, _ []byte) error { return nil })
}

// scanSnapshot reads a snapshot stream, calling fn for each key and value,
// and verifies the checksum at the end. It returns the applied index of
// the header. The slices fn receives are freshly allocated; it may keep
// them.
func scanSnapshot(r io.Reader, fn func(key, val []byte) error) (uint64, error) {
	h := sha256.New()
	br := bufio.NewReaderSize(r, 1<<20)
	tr := &hashingReader{r: br, h: h}
	applied, err := ReadSnapshotHeader(tr)
	if err != nil {
		return 0, err
	}
	for {
		klen, err := binary.ReadUvarint(tr)
		if err != nil {
			return 0, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
		}
		if klen == 0 {
			break
		}
		key, err := readN(tr, klen)
		if err != nil {
			return 0, err
		}
		vlen, err := binary.ReadUvarint(tr)
		if err != nil {
			return 0, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
		}
		val, err := readN(tr, vlen)
		if err != nil {
			return 0, err
		}
		if err := fn(key, val); err != nil {
			return 0, err
		}
	}
	want := make([]byte, sha256.Size)
	if _, err := io.ReadFull(br, want); err != nil || !bytes.Equal(h.Sum(nil), want) {
		return 0, fmt.Errorf("%w: checksum mismatch", ErrBadSnapshot)
	}
	return applied, nil
}

// Restore replaces the store's entire contents with a snapshot stream. The
// stream is loaded into a fresh database beside the current one and
// verified; only then is the current database closed and the new one moved
// into its place. Readers never see a partial restore, and a stream that
// fails verification leaves the store untouched.
func (s *Store) Restore(r io.Reader) error {
	tmpDir := s.dir + restoreSuffix
	if err := os.RemoveAll(tmpDir); err != nil {
		return fmt.Errorf("store: restore: clear %s: %w", tmpDir, err)
	}
	tmp, err := openPebble(tmpDir, s.opts)
	if err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	if err := load(tmp, r); err != nil {
		tmp.Close()
		os.RemoveAll(tmpDir)
		return err
	}
	if err := tmp.Close(); err != nil {
		os.RemoveAll(tmpDir)
		return fmt.Errorf("store: restore: close loaded copy: %w", err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: restore: close current: %w", err)
	}
	oldDir := s.dir + oldSuffix
	if err := os.Rename(s.dir, oldDir); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	if err := os.Rename(tmpDir, s.dir); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	if s.db, err = openPebble(s.dir, s.opts); err != nil {
		return fmt.Errorf("store: restore: reopen: %w", err)
	}
	if err := os.RemoveAll(oldDir); err != nil {
		return fmt.Errorf("store: restore: remove previous copy: %w", err)
	}
	return nil
}

const (
	restoreSuffix = ".restoring"
	oldSuffix     = ".replaced"
)

// recoverSwap completes or undoes a Restore cut short by a crash: a loaded
// copy that was not moved into place is discarded (the snapshot will be
// restored again), and a replaced database with nothing in its place is
// put back.
func recoverSwap(dir string) error {
	if err := os.RemoveAll(dir + restoreSuffix); err != nil {
		return fmt.Errorf("store: discard interrupted restore: %w", err)
	}
	oldDir := dir + oldSuffix
	if _, err := os.Stat(oldDir); err != nil {
		return nil
	}
	if _, err := os.Stat(dir); err == nil {
		return os.RemoveAll(oldDir)
	}
	if err := os.Rename(oldDir, dir); err != nil {
		return fmt.Errorf("store: undo interrupted restore: %w", err)
	}
	return nil
}

// load writes a verified snapshot stream into db, syncing at the end. The
// applied index is written last.
func load(db *pebble.DB, r io.Reader) error {
	b := db.NewBatch()
	defer func() { b.Close() }()
	var applied []byte
	_, err := scanSnapshot(r, func(key, val []byte) error {
		if bytes.Equal(key, keyApplied) {
			applied = val
			return nil
		}
		if err := b.Set(key, val, nil); err != nil {
			return fmt.Errorf("store: restore: %w", err)
		}
		if b.Len() > 4<<20 {
			if err := b.Commit(pebble.NoSync); err != nil {
				return fmt.Errorf("store: restore: commit: %w", err)
			}
			b.Close()
			b = db.NewBatch()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if applied != nil {
		if err := b.Set(keyApplied, applied, nil); err != nil {
			return fmt.Errorf("store: restore: %w", err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("store: restore: commit: %w", err)
	}
	return nil
}

func readN(r io.Reader, n uint64) ([]byte, error) {
	if n > 1<<30 {
		return nil, fmt.Errorf("%w: record of %d bytes", ErrBadSnapshot, n)
	}
	if n <= 1<<16 {
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
		}
		return b, nil
	}
	// A large length may be corrupt: grow with the bytes actually read
	// instead of allocating what the length claims up front.
	var buf bytes.Buffer
	if _, err := io.CopyN(&buf, r, int64(n)); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	return buf.Bytes(), nil
}

type hashingReader struct {
	r *bufio.Reader
	h hash.Hash
}

func (t *hashingReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.h.Write(p[:n])
	return n, err
}

func (t *hashingReader) ReadByte() (byte, error) {
	c, err := t.r.ReadByte()
	if err == nil {
		t.h.Write([]byte{c})
	}
	return c, err
}

// Digest returns a SHA-256 over every replicated key and value (the applied
// index excluded), so two replicas that applied the same log compare equal.
func (s *Store) Digest() ([32]byte, error) {
	var sum [32]byte
	s.mu.RLock()
	defer s.mu.RUnlock()
	snap := s.db.NewSnapshot()
	defer snap.Close()
	it, err := snap.NewIter(nil)
	if err != nil {
		return sum, err
	}
	h := sha256.New()
	var buf []byte
	for ok := it.First(); ok; ok = it.Next() {
		if bytes.Equal(it.Key(), keyApplied) {
			continue
		}
		buf = buf[:0]
		buf = binary.AppendUvarint(buf, uint64(len(it.Key())))
		buf = append(buf, it.Key()...)
		buf = binary.AppendUvarint(buf, uint64(len(it.Value())))
		buf = append(buf, it.Value()...)
		h.Write(buf)
	}
	if err := it.Close(); err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}
