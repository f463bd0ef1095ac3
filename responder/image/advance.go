package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/responder-ir/responder/responder/evidence"
)

// Advance images blocks [j.Next, end) into the upload and moves j.Next to
// end. end must be a multiple of j.BlocksPerUnit() or j.Blocks. Each call
// leaves every part it started uploaded; a compressed chunk ends its zstd
// frame, and a chunk that ends before the volume does is padded to S3's
// minimum part size with a zstd skippable frame (which decoders ignore).
// On an error (a refused block checksum among them) j is unchanged in what
// matters for a retry, and the caller decides between retrying and Abort.
func (im *Imager) Advance(ctx context.Context, j *Job, end int64, opt Options) error {
	if end > j.Blocks || end <= j.Next || (end != j.Blocks && end%j.BlocksPerUnit() != 0) {
		return fmt.Errorf("snapshot %s: chunk end %d: want a multiple of %d after block %d, or %d", j.SnapshotID, end, j.BlocksPerUnit(), j.Next, j.Blocks)
	}
	w, err := evidence.AsPartWriter(im.Store)
	if err != nil {
		return err
	}
	raw, err := unmarshal(j.RawState)
	if err != nil {
		return err
	}
	// Uncompressed, the stored bytes are the raw disk: one hash serves.
	stored := raw
	if j.Compression == CompressZstd {
		if stored, err = unmarshal(j.StoredState); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sink := &partSink{ctx: ctx, w: w, j: j, hash: stored, next: j.PartCount + 1, slots: make(chan struct{}, opt.partsInFlight())}
	c := &chunk{j: j, raw: raw, sink: sink, out: io.Writer(sink)}
	if j.Compression == CompressZstd {
		enc, err := zstd.NewWriter(sink, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
		if err != nil {
			return err
		}
		c.enc, c.out = enc, enc
	}
	written, err := im.copyBlocks(ctx, j, end, opt, c)
	if err == nil {
		err = c.close(end == j.Blocks)
	}
	parts, perr := sink.wait()
	if err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	if j.RawState, err = marshal(raw); err != nil {
		return err
	}
	if j.StoredState, err = marshal(stored); err != nil {
		return err
	}
	j.Parts = append(j.Parts, parts...)
	j.PartCount += int32(len(parts))
	j.RawSize += (end - j.Next) * j.BlockSize
	j.StoredSize += sink.size
	j.Written += written
	j.Next = end
	return nil
}

// chunk writes the raw disk: into its hash and, through the encoder when
// compressed, into the part sink.
type chunk struct {
	j    *Job
	raw  hash.Hash
	sink *partSink
	enc  *zstd.Encoder
	out  io.Writer
	zero []byte
}

func (c *chunk) write(block []byte) error {
	if c.enc != nil {
		c.raw.Write(block) // else the sink hashes it as stored
	}
	_, err := c.out.Write(block)
	return err
}

func (c *chunk) zeros(n int64) error {
	if c.zero == nil {
		c.zero = make([]byte, c.j.BlockSize)
	}
	for ; n > 0; n-- {
		if err := c.write(c.zero); err != nil {
			return err
		}
	}
	return nil
}

// close ends the zstd frame and flushes the last part, padded unless it
// is the end of the image.
func (c *chunk) close(last bool) error {
	if c.enc != nil {
		if err := c.enc.Close(); err != nil {
			return err
		}
	}
	if !last && c.sink.buf.Len() > 0 && c.sink.buf.Len() < minPartSize {
		if c.enc == nil {
			return fmt.Errorf("snapshot %s: an uncompressed chunk must end on a part boundary", c.j.SnapshotID)
		}
		c.sink.pad(minPartSize - c.sink.buf.Len())
	}
	return c.sink.flush()
}

// partSink cuts what it is given into parts of at least j.PartSize bytes,
// hashes them as stored, and uploads them, a few at a time.
type partSink struct {
	ctx   context.Context
	w     evidence.PartWriter
	j     *Job
	hash  hash.Hash
	buf   bytes.Buffer
	size  int64
	next  int32
	slots chan struct{}

	mu    sync.Mutex
	wg    sync.WaitGroup
	parts []evidence.UploadedPart
	err   error
}

func (s *partSink) Write(p []byte) (int, error) {
	s.buf.Write(p)
	if int64(s.buf.Len()) >= s.j.PartSize {
		if err := s.flush(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// pad appends a zstd skippable frame of n bytes in all (n >= 8).
func (s *partSink) pad(n int) {
	var hdr [8]byte
	binary.LittleEndian.PutUint32(hdr[:4], 0x184D2A50)
	binary.LittleEndian.PutUint32(hdr[4:], uint32(n-8))
	s.buf.Write(hdr[:])
	s.buf.Write(make([]byte, n-8))
}

func (s *partSink) flush() error {
	if s.buf.Len() == 0 {
		return nil
	}
	if err := s.failed(); err != nil {
		return err
	}
	body := s.buf.Bytes()
	s.buf = bytes.Buffer{} // the part keeps its bytes; no copy
	s.hash.Write(body)
	s.size += int64(len(body))
	n := s.next
	s.next++
	select {
	case s.slots <- struct{}{}:
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
	s.wg.Add(1)
	go func() {
		defer func() { <-s.slots; s.wg.Done() }()
		p, err := s.w.WritePart(s.ctx, &s.j.Upload, n, body)
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil && s.err == nil {
			s.err = err
		}
		s.parts = append(s.parts, p)
	}()
	return nil
}

func (s *partSink) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// wait returns the parts uploaded, by number.
func (s *partSink) wait() ([]evidence.UploadedPart, error) {
	s.wg.Wait()
	if s.err != nil {
		return nil, s.err
	}
	parts := s.parts
	for i := 1; i < len(parts); i++ {
		for k := i; k > 0 && parts[k].Number < parts[k-1].Number; k-- {
			parts[k], parts[k-1] = parts[k-1], parts[k]
		}
	}
	return parts, nil
}

// ChecksumError is a block whose data does not match the checksum the EBS
// direct API sent with it: the image is refused.
type ChecksumError struct {
	SnapshotID string
	Block      int64
	Want, Got  string // base64 SHA-256
	Algorithm  string
}

func (e *ChecksumError) Error() string {
	if e.Algorithm != "SHA256" {
		return fmt.Sprintf("snapshot %s block %d: checksum algorithm %q, want SHA256: block refused", e.SnapshotID, e.Block, e.Algorithm)
	}
	return fmt.Sprintf("snapshot %s block %d: data SHA-256 %s does not match the checksum %s AWS sent: block refused", e.SnapshotID, e.Block, e.Got, e.Want)
}

// verify checks a block against the checksum that came with it.
func verify(snapshot string, index int64, data []byte, algorithm, checksum string) error {
	sum := sha256.Sum256(data)
	got := base64.StdEncoding.EncodeToString(sum[:])
	if algorithm != "SHA256" || got != checksum {
		return &ChecksumError{SnapshotID: snapshot, Block: index, Want: checksum, Got: got, Algorithm: algorithm}
	}
	return nil
}
