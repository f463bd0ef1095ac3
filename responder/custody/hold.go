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

// Hold puts (on) or lifts (off) the S3 legal hold on every object of a case,
// and records who did it in a write-once custody record (itself held).
func (c *Custodian) Hold(ctx context.Context, caseID string, on bool) (*evidence.CustodyRecord, error) {
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
	now := c.now()
	rec := &evidence.CustodyRecord{CaseID: caseID, Action: evidence.CustodyHoldOff, Actor: aws.ToString(who.Arn), At: now}
	if on {
		rec.Action = evidence.CustodyHoldOn
	}
	rec.Record = evidence.CustodyRecordName(now, rec.Action)
	for _, f := range files {
		if err := holder.SetLegalHold(ctx, caseID, f, on); err != nil {
			rec.Failures = append(rec.Failures, err.Error())
			continue
		}
		rec.Objects = append(rec.Objects, f)
	}
	if err := c.storeRecord(ctx, holder, rec, on); err != nil {
		return rec, err
	}
	if len(rec.Failures) > 0 {
		var errs *multierror.Error
		for _, f := range rec.Failures {
			errs = multierror.Append(errs, errors.New(f))
		}
		return rec, fmt.Errorf("%d of %d objects failed: %w", len(rec.Failures), len(files), errlist.OneLine(errs))
	}
	return rec, nil
}

// storeRecord writes the custody record once and, when the hold is being
// placed, holds the record too.
func (c *Custodian) storeRecord(ctx context.Context, holder evidence.Holder, rec *evidence.CustodyRecord, on bool) error {
	body, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if _, err := c.Store.Put(ctx, rec.CaseID, rec.Record, body, "application/json"); err != nil {
		return fmt.Errorf("store the custody record: %w", err)
	}
	if on {
		if err := holder.SetLegalHold(ctx, rec.CaseID, rec.Record, true); err != nil {
			rec.Failures = append(rec.Failures, err.Error())
		}
	}
	return nil
}
