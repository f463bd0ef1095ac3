package fakeaws

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	ebstypes "github.com/aws/aws-sdk-go-v2/service/ebs/types"
	"github.com/aws/smithy-go"
	"golang.org/x/time/rate"

	"github.com/responder-ir/responder/responder/cloud"
)

const serviceEBS = "EBS"

// EBS direct API facts the fake imitates (EBS user guide, "EBS direct
// APIs"; API reference).
const (
	// EBSBlockSize is the block size of every snapshot: 512 KiB.
	EBSBlockSize = 512 << 10
	// DefaultEBSSnapshotRate is the GetSnapshotBlock requests per second
	// one snapshot serves before RequestThrottledException.
	DefaultEBSSnapshotRate = 1000
	ebsMinResults          = 100
	ebsMaxResults          = 10000
)

var _ cloud.EBS = (*EBS)(nil)

// EBS is a fake of the EBS direct APIs' read side (ListSnapshotBlocks,
// GetSnapshotBlock) for the snapshots of one account. It is separate from
// Cloud's EC2 snapshots: a test adds the blocks of a snapshot ID it knows.
// Safe for concurrent use; set the exported fields before calls start.
type EBS struct {
	// Latency is how long every call waits before it is served.
	Latency time.Duration
	// SnapshotRate is the GetSnapshotBlock requests per second one snapshot
	// serves (burst of the same size); above it the call answers
	// RequestThrottledException. Zero: DefaultEBSSnapshotRate; negative: no
	// limit.
	SnapshotRate float64
	// MaxConcurrent, when positive, is how many calls may be in flight at
	// once; the next answers ConcurrentLimitExceededException. AWS
	// documents the error but no number.
	MaxConcurrent int
	// PageLimit, when positive, caps the blocks of one ListSnapshotBlocks
	// page below MaxResults, as AWS may ("the request can return less
	// blocks than MaxResults").
	PageLimit int

	mu       sync.Mutex
	snaps    map[string]*ebsSnapshot
	limiters map[string]*rate.Limiter
	inFlight int
	calls    map[string]int
	refused  map[string]int // error code -> calls answered with it
}

type ebsSnapshot struct {
	volumeGiB int64
	blocks    map[int32][]byte
	sums      map[int32][sha256.Size]byte // kept with the block, as AWS keeps its checksum
	corrupt   map[int32]bool
}

// NewEBS returns an empty fake EBS direct API.
func NewEBS() *EBS {
	return &EBS{snaps: map[string]*ebsSnapshot{}, limiters: map[string]*rate.Limiter{}, calls: map[string]int{}, refused: map[string]int{}}
}

// AddSnapshot adds a completed snapshot of a volume of volumeGiB GiB whose
// written blocks are blocks (index -> data, at most EBSBlockSize bytes,
// zero-padded); every other block is sparse.
func (e *EBS) AddSnapshot(id string, volumeGiB int64, blocks map[int32][]byte) {
	s := &ebsSnapshot{volumeGiB: volumeGiB, blocks: map[int32][]byte{}, sums: map[int32][sha256.Size]byte{}, corrupt: map[int32]bool{}}
	for i, b := range blocks {
		block := make([]byte, EBSBlockSize)
		copy(block, b)
		s.blocks[i], s.sums[i] = block, sha256.Sum256(block)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.snaps[id] = s
}

// CorruptBlock makes GetSnapshotBlock answer a checksum that does not match
// the block's data, as a block damaged in transit would show.
func (e *EBS) CorruptBlock(id string, index int32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.snaps[id].corrupt[index] = true
}

// DiskSHA256 is the hex SHA-256 of the whole disk a snapshot holds, sparse
// blocks as zeros: what an image of it must hash to.
func (e *EBS) DiskSHA256(id string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.snaps[id]
	h := sha256.New()
	zero := make([]byte, EBSBlockSize)
	for i := int32(0); int64(i) < s.volumeGiB<<30/EBSBlockSize; i++ {
		if b, ok := s.blocks[i]; ok {
			h.Write(b)
		} else {
			h.Write(zero)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// CallCount is how many calls of an operation were served.
func (e *EBS) CallCount(op string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls[op]
}

// Refused is how many calls were answered with an error code.
func (e *EBS) Refused(code string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.refused[code]
}

var snapshotIDPattern = regexp.MustCompile(`^snap-[0-9a-f]+$`)

// enter counts a call in flight, waits the latency, and finds the snapshot.
func (e *EBS) enter(ctx context.Context, op, id string) (*ebsSnapshot, func(), error) {
	e.mu.Lock()
	e.calls[op]++
	if e.MaxConcurrent > 0 && e.inFlight >= e.MaxConcurrent {
		e.mu.Unlock()
		return nil, nil, e.refuse(op, "ConcurrentLimitExceededException", "You have reached the limit for concurrent API requests.")
	}
	e.inFlight++
	e.mu.Unlock()
	leave := func() { e.mu.Lock(); e.inFlight--; e.mu.Unlock() }
	if e.Latency > 0 {
		t := time.NewTimer(e.Latency)
		select {
		case <-ctx.Done():
			t.Stop()
			leave()
			return nil, nil, &smithy.OperationError{ServiceID: serviceEBS, OperationName: op, Err: &smithy.CanceledError{Err: ctx.Err()}}
		case <-t.C:
		}
	}
	if !snapshotIDPattern.MatchString(id) {
		leave()
		return nil, nil, e.refuse(op, "ValidationException", "1 validation error detected: Value '%s' at 'snapshotId' failed to satisfy constraint", id)
	}
	e.mu.Lock()
	s, ok := e.snaps[id]
	e.mu.Unlock()
	if !ok {
		leave()
		return nil, nil, e.refuse(op, "ResourceNotFoundException", "The snapshot '%s' does not exist.", id)
	}
	return s, leave, nil
}

func (e *EBS) refuse(op, code, format string, args ...any) error {
	e.mu.Lock()
	e.refused[code]++
	e.mu.Unlock()
	return wrapError(serviceEBS, op, "", apiError(code, format, args...))
}

// ListSnapshotBlocks pages through the written blocks from
// StartingBlockIndex, in index order.
func (e *EBS) ListSnapshotBlocks(ctx context.Context, in *ebs.ListSnapshotBlocksInput, _ ...func(*ebs.Options)) (*ebs.ListSnapshotBlocksOutput, error) {
	s, leave, err := e.enter(ctx, "ListSnapshotBlocks", aws.ToString(in.SnapshotId))
	if err != nil {
		return nil, err
	}
	defer leave()
	limit := int(aws.ToInt32(in.MaxResults))
	switch {
	case in.MaxResults != nil && (limit < ebsMinResults || limit > ebsMaxResults):
		return nil, e.refuse("ListSnapshotBlocks", "ValidationException", "MaxResults must be between 100 and 10000")
	case limit == 0:
		limit = ebsMaxResults
	}
	if e.PageLimit > 0 {
		limit = min(limit, e.PageLimit)
	}
	start := aws.ToInt32(in.StartingBlockIndex)
	if tok := aws.ToString(in.NextToken); tok != "" {
		n, err := strconv.ParseInt(tok, 10, 32)
		if err != nil {
			return nil, e.refuse("ListSnapshotBlocks", "ValidationException", "invalid NextToken")
		}
		start = int32(n)
	}
	out := &ebs.ListSnapshotBlocksOutput{BlockSize: aws.Int32(EBSBlockSize), VolumeSize: aws.Int64(s.volumeGiB)}
	for _, i := range s.indexesFrom(start) {
		if len(out.Blocks) == limit {
			out.NextToken = aws.String(strconv.Itoa(int(i)))
			break
		}
		out.Blocks = append(out.Blocks, ebstypes.Block{BlockIndex: aws.Int32(i), BlockToken: aws.String(blockToken(i))})
	}
	return out, nil
}

func (s *ebsSnapshot) indexesFrom(start int32) []int32 {
	var out []int32
	for i := range s.blocks {
		if i >= start {
			out = append(out, i)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a] < out[b] })
	return out
}

func blockToken(i int32) string {
	return base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("block-%d", i)))
}

// GetSnapshotBlock answers one written block with its base64 SHA-256.
func (e *EBS) GetSnapshotBlock(ctx context.Context, in *ebs.GetSnapshotBlockInput, _ ...func(*ebs.Options)) (*ebs.GetSnapshotBlockOutput, error) {
	const op = "GetSnapshotBlock"
	id := aws.ToString(in.SnapshotId)
	s, leave, err := e.enter(ctx, op, id)
	if err != nil {
		return nil, err
	}
	defer leave()
	if !e.allow(id) {
		return nil, e.refuse(op, "RequestThrottledException", "The number of API requests has exceeded the maximum allowed API request throttling limit for the snapshot.")
	}
	i := aws.ToInt32(in.BlockIndex)
	data, ok := s.blocks[i]
	if !ok || aws.ToString(in.BlockToken) != blockToken(i) {
		return nil, e.refuse(op, "ValidationException", "The block token for block %d is not valid", i)
	}
	sum := s.sums[i]
	e.mu.Lock()
	if s.corrupt[i] {
		sum[0] ^= 0xff
	}
	e.mu.Unlock()
	return &ebs.GetSnapshotBlockOutput{
		BlockData: io.NopCloser(bytes.NewReader(data)), DataLength: aws.Int32(int32(len(data))),
		Checksum: aws.String(base64.StdEncoding.EncodeToString(sum[:])), ChecksumAlgorithm: ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256,
	}, nil
}

// allow takes a token of the snapshot's GetSnapshotBlock rate.
func (e *EBS) allow(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.SnapshotRate
	if r == 0 {
		r = DefaultEBSSnapshotRate
	}
	if r < 0 {
		return true
	}
	l, ok := e.limiters[id]
	if !ok {
		l = rate.NewLimiter(rate.Limit(r), int(r))
		e.limiters[id] = l
	}
	return l.Allow()
}
