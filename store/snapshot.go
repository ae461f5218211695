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

	"github.com/cockroachdb/pebble/v2"
)

// snapshotMagic starts every snapshot stream; the digit is the format version.
var snapshotMagic = []byte("ZQSNAP1\n")

// Snapshot is a point-in-time copy of the whole store, ready to stream.
type Snapshot struct {
	snap    *pebble.Snapshot
	applied uint64
}

// Snapshot captures the store as it is now. The caller must not apply
// entries concurrently with this call (Raft guarantees that for FSM.Snapshot);
// streaming the result may overlap later applies.
func (s *Store) Snapshot() (*Snapshot, error) {
	applied, _, err := s.Applied()
	if err != nil {
		return nil, err
	}
	return &Snapshot{snap: s.db.NewSnapshot(), applied: applied}, nil
}

// AppliedIndex is the applied index the snapshot contains.
func (sn *Snapshot) AppliedIndex() uint64 { return sn.applied }

// Close releases the snapshot.
func (sn *Snapshot) Close() { _ = sn.snap.Close() }

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

// Restore replaces the store's entire contents with a snapshot stream. The
// applied index is cleared first and arrives last, so a restore cut short
// leaves a store that reports itself empty and is restored again on start.
func (s *Store) Restore(r io.Reader) error {
	if err := s.db.DeleteRange([]byte{0x00}, []byte{0xFF}, pebble.NoSync); err != nil {
		return fmt.Errorf("store: restore: clear: %w", err)
	}
	h := sha256.New()
	br := bufio.NewReaderSize(r, 1<<20)
	tr := &hashingReader{r: br, h: h}
	if _, err := ReadSnapshotHeader(tr); err != nil {
		return err
	}
	b := s.db.NewBatch()
	var applied []byte
	for {
		klen, err := binary.ReadUvarint(tr)
		if err != nil {
			b.Close()
			return fmt.Errorf("%w: %v", ErrBadSnapshot, err)
		}
		if klen == 0 {
			break
		}
		key, err := readN(tr, klen)
		if err != nil {
			b.Close()
			return err
		}
		vlen, err := binary.ReadUvarint(tr)
		if err != nil {
			b.Close()
			return fmt.Errorf("%w: %v", ErrBadSnapshot, err)
		}
		val, err := readN(tr, vlen)
		if err != nil {
			b.Close()
			return err
		}
		if bytes.Equal(key, keyApplied) {
			applied = val
			continue
		}
		if err := b.Set(key, val, nil); err != nil {
			b.Close()
			return fmt.Errorf("store: restore: %w", err)
		}
		if b.Len() > 4<<20 {
			if err := b.Commit(pebble.NoSync); err != nil {
				return fmt.Errorf("store: restore: commit: %w", err)
			}
			b = s.db.NewBatch()
		}
	}
	sum := h.Sum(nil)
	want := make([]byte, sha256.Size)
	if _, err := io.ReadFull(br, want); err != nil || !bytes.Equal(sum, want) {
		b.Close()
		return fmt.Errorf("%w: checksum mismatch", ErrBadSnapshot)
	}
	if applied != nil {
		if err := b.Set(keyApplied, applied, nil); err != nil {
			b.Close()
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
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	return b, nil
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
