//go:build unix

package image_test

import (
	"context"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/image"
)

// discardParts is the fake bucket with UploadPart draining the body: the
// benchmark measures the imager (reads, checks, hashing, compression, the
// client side of the upload), not the fake S3's own MD5 and assembly, which
// S3 does server-side.
type discardParts struct{ evidence.PartAPI }

func (d discardParts) UploadPart(_ context.Context, in *s3.UploadPartInput, _ ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	if _, err := io.Copy(io.Discard, in.Body); err != nil {
		return nil, err
	}
	return &s3.UploadPartOutput{ETag: aws.String(`"0"`)}, nil
}

// cpuTime is the user and system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkImageThroughput images a 1 GiB snapshot copy whose 2048 blocks
// are all written (Begin, Advance over the whole volume, then Abort), from
// the fake EBS direct API with 100 ms a call (the latency the EBS user
// guide's performance page assumes) and the per-snapshot GetSnapshotBlock
// rate of 1,000 a second. The bound is min(rate, concurrency/latency)
// blocks of 512 KiB a second plus one latency; "%-of-bound" is the
// measured throughput over it.
//
// "staged-none" images the same disk as the Lambda's states do: Begin, then
// AdvanceFor stages (the first chunk 16 parts' worth of blocks, later ones
// sized to the budget from the rate measured; each stage records its
// progress), the job carried compacted between them.
func BenchmarkImageThroughput(b *testing.B) {
	for _, compression := range []string{image.CompressNone, image.CompressZstd, "staged-none"} {
		b.Run(compression, func(b *testing.B) {
			staged := compression == "staged-none"
			if staged {
				compression = image.CompressNone
			}
			const latency = 100 * time.Millisecond
			all := make([]int32, 2048)
			for i := range all {
				all[i] = int32(i)
			}
			l := newLab(b, all)
			l.ebs.Latency = latency
			l.ebs.SnapshotRate = image.DefaultRate
			store := &evidence.Bucket{API: discardParts{l.cloud.S3()}, Name: bucket}
			im := &image.Imager{EBS: l.ebs, Store: store}
			ctx := context.Background()
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				j, err := im.Begin(ctx, caseID, copyID, image.ImagePath(instance, copyID, compression), compression)
				if err != nil {
					b.Fatal(err)
				}
				if staged {
					advanceStaged(b, im, j)
				} else if err := im.Advance(ctx, j, j.Blocks, image.Options{}); err != nil {
					b.Fatal(err)
				}
				if err := im.Abort(ctx, j); err != nil {
					b.Fatal(err)
				}
			}
			elapsed := b.Elapsed().Seconds()
			b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
			perSecond := min(float64(image.DefaultRate), float64(image.DefaultConcurrency)/latency.Seconds())
			boundSeconds := 2048/perSecond + latency.Seconds()
			b.ReportMetric(1024*float64(b.N)/elapsed, "MiB/s")
			b.ReportMetric(1024/boundSeconds, "bound-MiB/s")
			b.ReportMetric(100*float64(b.N)*boundSeconds/elapsed, "%-of-bound")
			if n := l.ebs.Refused("RequestThrottledException"); n > 0 {
				b.Logf("%d reads throttled", n)
			}
		})
	}
}

// advanceStaged runs AdvanceFor stages until the image is whole.
func advanceStaged(b *testing.B, im *image.Imager, j *image.Job) {
	req := image.StagedRequest{Request: image.Request{CaseID: caseID}}
	for stages := 0; !j.Done(); stages++ {
		p, err := im.AdvanceFor(context.Background(), req, j, image.Pace{}, image.Options{})
		if err != nil || p.Failed || stages > 100 {
			b.Fatalf("stage %d: %v %+v", stages, err, p)
		}
		j = p.Job
	}
}
