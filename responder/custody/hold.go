package custody

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/hashicorp/go-multierror"

	"github.com/responder-ir/responder/internal/errlist"
	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
)

// ErrNoLegalHold is returned when the store cannot hold objects.
var ErrNoLegalHold = errors.New("legal holds need an S3 evidence bucket with Object Lock (--evidence-bucket)")

// HoldResult is what Hold did to each object of a case.
type HoldResult struct {
	CaseID string
	Action string // evidence.CustodyHoldOn or CustodyHoldOff
	// Objects are the case's objects as they were found, before the custody
	// record of this action was written.
	Objects []ObjectHold
	// Record is the custody record written, nil when no hold took effect
	// (nothing is recorded then).
	Record *evidence.CustodyRecord
	// RecordError says why the custody record could not be written, or,
	// when placing a hold, why the record itself could not be held.
	RecordError string
}

// ObjectHold is one object's legal hold after Hold.
type ObjectHold struct {
	Path string `json:"path"`
	// Done: read back, the object's legal hold is what was asked.
	Done  bool   `json:"done"`
	Error string `json:"error,omitempty"`
}

// Failed counts the objects whose hold did not take effect.
func (r *HoldResult) Failed() int {
	n := 0
	for _, o := range r.Objects {
		if !o.Done {
			n++
		}
	}
	return n
}

// Hold puts (on) or lifts (off) the S3 legal hold on every object of a case,
// reads each one back, and records who did it in a write-once custody record
// (itself held when placing) listing the objects whose hold took effect. When
// none did, nothing is recorded. The error counts the objects that failed,
// and says apart whether the custody record could not be written or held.
func (c *Custodian) Hold(ctx context.Context, caseID string, on bool) (*HoldResult, error) {
	if err := evidence.ValidateCaseID(caseID); err != nil {
		return nil, &responder.InputError{Err: err}
	}
	holder, ok := c.Store.(evidence.Holder)
	if !ok {
		return nil, ErrNoLegalHold
	}
	files, err := c.Store.Files(ctx, caseID)
	if err != nil {
		return nil, err
	}
	who, err := c.Caller.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return nil, fmt.Errorf("identify the caller: %w", err)
	}
	res := &HoldResult{CaseID: caseID, Action: evidence.CustodyHoldOff}
	if on {
		res.Action = evidence.CustodyHoldOn
	}
	for _, f := range files {
		res.Objects = append(res.Objects, setHold(ctx, holder, caseID, f, on))
	}
	if res.Failed() < len(res.Objects) {
		c.record(ctx, holder, res, aws.ToString(who.Arn), on)
	}
	return res, res.err()
}

// setHold sets the legal hold of one object and reads it back.
func setHold(ctx context.Context, holder evidence.Holder, caseID, path string, on bool) ObjectHold {
	o := ObjectHold{Path: path}
	if err := holder.SetLegalHold(ctx, caseID, path, on); err != nil {
		o.Error = err.Error()
		return o
	}
	st, err := holder.LockState(ctx, caseID, path)
	switch {
	case err != nil:
		o.Error = fmt.Sprintf("read back the legal hold of %s: %v", path, err)
	case st.LegalHold != on:
		o.Error = fmt.Sprintf("the legal hold of %s reads %s after the request", path, onOff(st.LegalHold))
	default:
		o.Done = true
	}
	return o
}

// record writes the custody record of the holds that took effect, once,
// and, when placing a hold, holds the record too.
func (c *Custodian) record(ctx context.Context, holder evidence.Holder, res *HoldResult, actor string, on bool) {
	now := c.now()
	rec := &evidence.CustodyRecord{CaseID: res.CaseID, Action: res.Action, Actor: actor, At: now,
		Record: evidence.CustodyRecordName(now, res.Action)}
	for _, o := range res.Objects {
		if o.Done {
			rec.Objects = append(rec.Objects, o.Path)
		} else {
			rec.Failures = append(rec.Failures, o.Error)
		}
	}
	body, err := json.MarshalIndent(rec, "", "  ")
	if err == nil {
		_, err = c.Store.Put(ctx, rec.CaseID, rec.Record, body, "application/json")
	}
	if err != nil {
		res.RecordError = fmt.Sprintf("store the custody record %s: %v", rec.Record, err)
		return
	}
	res.Record = rec
	if on {
		if o := setHold(ctx, holder, rec.CaseID, rec.Record, true); !o.Done {
			res.RecordError = "the custody record itself is not held: " + o.Error
		}
	}
}

// err says what failed: how many of the case's objects, and the record.
func (r *HoldResult) err() error {
	var errs *multierror.Error
	if n := r.Failed(); n > 0 {
		var each *multierror.Error
		for _, o := range r.Objects {
			if !o.Done {
				each = multierror.Append(each, errors.New(o.Error))
			}
		}
		errs = multierror.Append(errs, fmt.Errorf("%d of %d objects failed: %w", n, len(r.Objects), errlist.OneLine(each)))
		if r.Record == nil && r.RecordError == "" {
			errs = multierror.Append(errs, errors.New("no hold took effect, so no custody record was written"))
		}
	}
	if r.RecordError != "" {
		errs = multierror.Append(errs, errors.New(r.RecordError))
	}
	return errlist.OneLine(errs)
}

func onOff(on bool) string {
	if on {
		return "ON"
	}
	return "OFF"
}
