// Package image makes disk images of the case's snapshot copies without an
// instance: it reads a copy in the forensics account through the EBS direct
// APIs, checks every block against the SHA-256 AWS sends with it, and
// streams a raw image (sparse blocks as zeros), optionally zstd-compressed,
// into the evidence bucket as a multipart upload. The SHA-256 of the raw
// disk and of the stored object are recorded in the case as an artifact,
// in an "image" run.
//
// The work is resumable in chunks (Begin, Advance, Finish) so that a Step
// Functions state can image a long volume in several invocations; Image
// does it all in one.
package image

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/responder-ir/responder/internal/errlist"
	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/step"
)

// Names the image run records.
const (
	Playbook = "image"
	StepName = step.DiskImageRecord
	phase    = "acquisition"
)

// Statuses of an image run (evidence.Run.Status); the case status is left
// as it is.
const (
	Completed = "imaged"
	Failed    = "image-failed"
)

// Defaults.
const (
	// DefaultRate is the GetSnapshotBlock requests per second per snapshot
	// the EBS direct APIs allow (the per-snapshot quota); the imager stays
	// under it rather than be throttled.
	DefaultRate = 1000
	// DefaultConcurrency block reads in flight: with ~100 ms a read (EBS
	// user guide, "Optimize performance for EBS direct APIs"), enough to
	// reach DefaultRate.
	DefaultConcurrency = 128
	// DefaultPartsInFlight parts uploading at once.
	DefaultPartsInFlight = 4
)

// Options tune the reads and uploads.
type Options struct {
	Concurrency   int     // GetSnapshotBlock calls in flight (default DefaultConcurrency)
	Rate          float64 // GetSnapshotBlock calls a second (default DefaultRate)
	PartsInFlight int     // UploadPart calls in flight (default DefaultPartsInFlight)
}

func (o Options) concurrency() int   { return orDefault(o.Concurrency, DefaultConcurrency) }
func (o Options) partsInFlight() int { return orDefault(o.PartsInFlight, DefaultPartsInFlight) }
func (o Options) rate() float64 {
	if o.Rate > 0 {
		return o.Rate
	}
	return DefaultRate
}

// burst is the limiter's bucket: a quarter of the per-second rate (at
// most the reads in flight), not the whole of it as the snapshot's own
// bucket holds. A read leaves some time after its token was granted (a
// goroutine scheduled late, a slow connection); with buckets of equal
// size, a late read arriving beside punctual ones would be throttled.
// The headroom absorbs up to three quarters of a second of such delay;
// the sustained rate is unchanged.
func (o Options) burst() int {
	return max(1, min(o.concurrency(), int(o.rate()/4)))
}

func orDefault(v, d int) int {
	if v > 0 {
		return v
	}
	return d
}

// Request asks for images of a case's snapshot copies.
type Request struct {
	CaseID string
	// SnapshotID picks one copy: its ID in the forensics account or the
	// ID of the case snapshot it copies. Empty: every completed copy.
	SnapshotID  string
	Compression string // CompressZstd (default) or CompressNone
	Options     Options
}

// Validate checks a request without calling AWS.
func (r *Request) Validate() error {
	var errs *multierror.Error
	if err := evidence.ValidateCaseID(r.CaseID); err != nil {
		errs = multierror.Append(errs, err)
	}
	if r.SnapshotID != "" && !snapshotIDPattern.MatchString(r.SnapshotID) {
		errs = multierror.Append(errs, fmt.Errorf("invalid snapshot ID %q: want snap- and hex digits", r.SnapshotID))
	}
	switch r.Compression {
	case "", CompressZstd, CompressNone:
	default:
		errs = multierror.Append(errs, fmt.Errorf("compression %q: want zstd or none", r.Compression))
	}
	if r.Options.Concurrency < 0 || r.Options.Rate < 0 || r.Options.PartsInFlight < 0 {
		errs = multierror.Append(errs, fmt.Errorf("concurrency, rate and parts in flight must not be negative"))
	}
	if err := errlist.OneLine(errs); err != nil {
		return &responder.InputError{Err: err}
	}
	return nil
}

// Imager reads snapshot copies in the forensics account into images.
type Imager struct {
	EBS    cloud.EBS
	Store  evidence.Store
	Caller cloud.STS // identifies who runs it (optional)
	// Signer signs the records the staged image saves (optional).
	Signer evidence.Signer
	Log    *slog.Logger
	Now    func() time.Time
}

// New builds the imager from the clients cloud.Load built (EBS with the
// caller's own credentials, in the forensics account) and the evidence
// store (an S3 bucket).
func New(c *cloud.Clients, store evidence.Store) *Imager {
	im := &Imager{EBS: c.EBS, Store: store, Caller: c.STS}
	if c.CallerSTS != nil {
		im.Caller = c.CallerSTS
	}
	return im
}

func (im *Imager) now() time.Time {
	if im.Now != nil {
		return im.Now().UTC()
	}
	return time.Now().UTC()
}

func (im *Imager) log() *slog.Logger {
	if im.Log != nil {
		return im.Log
	}
	return slog.Default()
}

// Result is the outcome of Image.
type Result struct {
	Manifest  *evidence.Manifest
	Artifacts []evidence.Artifact
	Steps     []evidence.StepRecord
	Status    string
	// Err aggregates every image that failed and a failure to save.
	Err error
}

// stepView is what an image step records before and after.
type stepView struct {
	SnapshotID       string `json:"snapshot_id"`
	SourceSnapshotID string `json:"source_snapshot_id,omitempty"`
	Path             string `json:"path"`
	Blocks           int64  `json:"blocks,omitempty"`
	WrittenBlocks    int64  `json:"written_blocks,omitempty"`
	RawSHA256        string `json:"raw_sha256,omitempty"`
	RawSize          int64  `json:"raw_size,omitempty"`
	SHA256           string `json:"sha256,omitempty"`
	Size             int64  `json:"size,omitempty"`
	Parts            int    `json:"parts,omitempty"`
	// RefusedBlock is the block whose checksum did not match (-1: none).
	RefusedBlock *int64 `json:"refused_block,omitempty"`
	Aborted      bool   `json:"upload_aborted,omitempty"`
}

func raw(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
