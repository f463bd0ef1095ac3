package main

import (
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
)

// storeOptions select where cases are kept.
type storeOptions struct {
	Bucket   string
	Dir      string
	KMSKeyID string
}

func storeFlags(o *storeOptions) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "evidence-bucket", Usage: "keep the case in this S3 bucket, under cases/<case-id>/", Destination: &o.Bucket, EnvVars: []string{"RESPONDER_EVIDENCE_BUCKET"}},
		&cli.StringFlag{Name: "evidence-dir", Usage: "keep the case in this local directory, under <dir>/<case-id>/ (when no bucket is given); a command that records checks it can write there before any AWS call", Value: "./cases", Destination: &o.Dir},
		&cli.StringFlag{Name: "evidence-kms-key", Usage: "SSE-KMS key for objects in the evidence bucket (default: the bucket's default encryption)", Destination: &o.KMSKeyID},
	}
}

func (o *storeOptions) validate(c *cli.Context) error {
	if o.Bucket != "" && c.IsSet("evidence-dir") {
		return exitf(exitUsage, "--evidence-bucket and --evidence-dir are exclusive: choose one")
	}
	if o.KMSKeyID != "" && o.Bucket == "" {
		return exitf(exitUsage, "--evidence-kms-key needs --evidence-bucket")
	}
	return nil
}

func (o *storeOptions) store(clients *cloud.Clients) evidence.Store {
	if o.Bucket != "" {
		return &evidence.Bucket{API: clients.S3, Name: o.Bucket, KMSKeyID: o.KMSKeyID, Presign: clients.Presign}
	}
	return &evidence.Folder{Root: o.Dir}
}

// checkWritable refuses, before any AWS call, a local evidence folder that
// cannot take the case: a command that changes AWS must never find, after
// the change, nowhere to record it. A bucket is not checked here (that needs
// AWS calls; the engine keeps a record it could not store).
func (o *storeOptions) checkWritable(caseID string) error {
	if o.Bucket != "" {
		return nil
	}
	if err := (&evidence.Folder{Root: o.Dir}).CheckWritable(caseID); err != nil {
		return exitf(exitUsage, "--evidence-dir: %v", err)
	}
	return nil
}

// awsOptions select credentials and Region.
type awsOptions struct {
	Region  string
	Profile string
	// Env names the config file's environment that fills the flags not
	// given (applyConfig).
	Env string
	// RetryTimeout bounds the retries of one AWS operation (watchRetries).
	RetryTimeout time.Duration
}

func awsFlags(o *awsOptions) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "region", Usage: "AWS Region of the instance (default: AWS_REGION or the profile's)", Destination: &o.Region},
		&cli.StringFlag{Name: "profile", Usage: "shared config profile (default: AWS_PROFILE or default)", Destination: &o.Profile},
		envFlag(&o.Env),
		retryFlag(&o.RetryTimeout),
	}
}

// storeClients loads AWS clients only when the store is a bucket: a local
// case folder needs no AWS access.
func storeClients(c *cli.Context, d deps, a awsOptions, s storeOptions) (*cloud.Clients, error) {
	if s.Bucket == "" {
		return &cloud.Clients{}, nil
	}
	return loadClients(c.Context, d, cloud.Options{Region: a.Region, Profile: a.Profile})
}

// logger writes structured lines to standard error.
func logger(s *streams, verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(s.Err, &slog.HandlerOptions{Level: level}))
}

// roleOptions are the role a command assumes in the instance's account.
type roleOptions struct {
	RoleARN    string
	ExternalID string
}

// roleFlags are --role-arn and --external-id; purpose says what the role is
// for in this command.
func roleFlags(o *roleOptions, purpose string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "role-arn", Usage: "role to assume in the instance's account" + purpose, Destination: &o.RoleARN},
		&cli.StringFlag{Name: "external-id", Usage: "ExternalId for --role-arn", Destination: &o.ExternalID},
	}
}

// roleARN is the shape of an IAM role ARN (IAM User Guide, "IAM
// identifiers": a path, then a name of letters, digits and +=,.@_-).
var roleARN = regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:role/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}$`)

// validate refuses an ExternalId without a role to use it with, and a role
// that is not an IAM role ARN (a fleet's {account} stands for an account),
// before any AWS call.
func (o roleOptions) validate() error {
	if o.ExternalID != "" && o.RoleARN == "" {
		return exitf(exitUsage, "--external-id needs --role-arn")
	}
	if o.RoleARN != "" && !roleARN.MatchString(strings.ReplaceAll(o.RoleARN, "{account}", "111122223333")) {
		return exitf(exitUsage, "--role-arn %q: want an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)", o.RoleARN)
	}
	return nil
}

// signingOptions select the KMS key that signs the records a command saves.
type signingOptions struct {
	SigningKey string
}

func signingFlags(o *signingOptions) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "signing-key", Usage: "sign each run's record with this asymmetric KMS `KEY` (ECC_NIST_P256, SIGN_VERIFY; ARN, key ID or alias) of the forensics account (the stack's SigningKeyArn), with your own credentials; the signature and the public key are stored beside the record", Destination: &o.SigningKey, EnvVars: []string{"RESPONDER_SIGNING_KEY"}},
	}
}

// validate checks the key reference before any AWS call.
func (o signingOptions) validate() error {
	if o.SigningKey == "" {
		return nil
	}
	if err := evidence.ValidateSigningKey(o.SigningKey); err != nil {
		return exitf(exitUsage, "--signing-key: %v", err)
	}
	return nil
}

// signer is the record signer of the key, nil when none is given.
func (o signingOptions) signer(clients *cloud.Clients) evidence.Signer {
	if o.SigningKey == "" || clients.Signing == nil {
		return nil
	}
	return &evidence.KMSSigner{API: clients.Signing, KeyID: o.SigningKey}
}

// maxClockSkewFlag is the skew between the local clock that stamped a
// record and AWS's Date above which a run's times are flagged.
func maxClockSkewFlag(dst *time.Duration) cli.Flag {
	return &cli.DurationFlag{Name: "max-clock-skew", Usage: "flag a run whose local clock was further than this from AWS's (the Date of its responses, kept with every call)", Value: evidence.DefaultMaxClockSkew, Destination: dst}
}

// caseStartError is the exit of a command on a case whose work could not
// start: bad input (exit 2), the case not found or any other reason (exit
// 4); nil stays nil.
func caseStartError(caseID string, err error) error {
	var ie *responder.InputError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ie):
		return exitf(exitUsage, "%v", err)
	case errors.Is(err, evidence.ErrNotFound):
		return exitf(exitCannotStart, "case %s not found: %v", caseID, err)
	}
	return exitf(exitCannotStart, "%v", err)
}
