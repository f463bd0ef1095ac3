package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"

	"github.com/responder-ir/responder/responder/cloud"
)

// block is one written block of the snapshot, fetched in the background.
type block struct {
	index int64
	data  chan fetched
}

type fetched struct {
	data []byte
	err  error
}

// copyBlocks writes blocks [j.Next, end) in order: the written ones as
// GetSnapshotBlock answers them (at most opt.Concurrency at once, paced at
// opt.Rate a second), the sparse ones as zeros. It returns how many blocks
// it read from the snapshot.
func (im *Imager) copyBlocks(ctx context.Context, j *Job, end int64, opt Options, c *chunk) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	blocks := make(chan block, opt.concurrency())
	listErr := make(chan error, 1)
	go func() { listErr <- im.fetchAll(ctx, j, end, opt, blocks) }()

	pos, written := j.Next, int64(0)
	for b := range blocks {
		if err := c.zeros(b.index - pos); err != nil {
			return written, err
		}
		r := <-b.data
		if r.err != nil {
			return written, r.err
		}
		if err := c.write(r.data); err != nil {
			return written, err
		}
		pos, written = b.index+1, written+1
	}
	if err := <-listErr; err != nil {
		return written, err
	}
	return written, c.zeros(end - pos)
}

// fetchAll lists the written blocks in [j.Next, end) page by page and
// starts a fetch of each, in index order, then closes out.
func (im *Imager) fetchAll(ctx context.Context, j *Job, end int64, opt Options, out chan<- block) error {
	defer close(out)
	sem := semaphore.NewWeighted(int64(opt.concurrency()))
	limit := rate.NewLimiter(rate.Limit(opt.rate()), opt.burst())
	in := &ebs.ListSnapshotBlocksInput{SnapshotId: &j.SnapshotID, StartingBlockIndex: aws.Int32(int32(j.Next)), MaxResults: aws.Int32(10000)}
	for {
		page, err := im.EBS.ListSnapshotBlocks(ctx, in)
		if err != nil {
			return fmt.Errorf("snapshot %s: list blocks from %d: %w", j.SnapshotID, j.Next, err)
		}
		for _, blk := range page.Blocks {
			index := int64(aws.ToInt32(blk.BlockIndex))
			if index < j.Next {
				continue
			}
			if index >= end {
				return nil
			}
			if err := sem.Acquire(ctx, 1); err != nil {
				return err
			}
			b := block{index: index, data: make(chan fetched, 1)}
			go func(token *string) {
				defer sem.Release(1)
				data, err := im.getBlock(ctx, j, index, token, limit)
				b.data <- fetched{data, err}
			}(blk.BlockToken)
			select {
			case out <- b:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if aws.ToString(page.NextToken) == "" {
			return nil
		}
		in.NextToken = page.NextToken
	}
}

// Retries of a throttled or failed block read beyond the SDK's own (the
// SDK retries RequestThrottledException and 5xx; this covers clients
// without its retryer and ConcurrentLimitExceededException, which it does
// not retry).
const (
	blockAttempts = 5
	blockBackoff  = 50 * time.Millisecond
)

var retryCodes = map[string]bool{
	"RequestThrottledException": true, "ConcurrentLimitExceededException": true,
	"ThrottlingException": true, "InternalServerException": true,
}

// getBlock reads and checks one block.
func (im *Imager) getBlock(ctx context.Context, j *Job, index int64, token *string, limit *rate.Limiter) ([]byte, error) {
	var err error
	for attempt := 0; attempt < blockAttempts; attempt++ {
		if attempt > 0 {
			if werr := sleep(ctx, blockBackoff<<attempt); werr != nil {
				return nil, werr
			}
		}
		if werr := limit.Wait(ctx); werr != nil {
			return nil, werr
		}
		var out *ebs.GetSnapshotBlockOutput
		out, err = im.EBS.GetSnapshotBlock(ctx, &ebs.GetSnapshotBlockInput{SnapshotId: &j.SnapshotID, BlockIndex: aws.Int32(int32(index)), BlockToken: token})
		if err == nil {
			return readBlock(j, index, out)
		}
		if !retryCodes[cloud.ErrorCode(err)] {
			break
		}
	}
	return nil, fmt.Errorf("snapshot %s block %d: %w", j.SnapshotID, index, err)
}

func readBlock(j *Job, index int64, out *ebs.GetSnapshotBlockOutput) ([]byte, error) {
	defer out.BlockData.Close()
	data := make([]byte, j.BlockSize)
	n, err := io.ReadFull(out.BlockData, data)
	if err != nil && err != io.ErrUnexpectedEOF {
		return nil, fmt.Errorf("snapshot %s block %d: read: %w", j.SnapshotID, index, err)
	}
	if extra, _ := out.BlockData.Read(make([]byte, 1)); extra > 0 {
		return nil, fmt.Errorf("snapshot %s block %d: more than the block size %d", j.SnapshotID, index, j.BlockSize)
	}
	data = data[:n]
	if err := verify(j.SnapshotID, index, data, string(out.ChecksumAlgorithm), aws.ToString(out.Checksum)); err != nil {
		return nil, err
	}
	if int64(len(data)) != j.BlockSize {
		return nil, fmt.Errorf("snapshot %s block %d: %d bytes, want the block size %d", j.SnapshotID, index, len(data), j.BlockSize)
	}
	return data, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// IsChecksumError reports whether err is a refused block checksum.
func IsChecksumError(err error) bool {
	var ce *ChecksumError
	return errors.As(err, &ce)
}
