package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/custody"
	"github.com/responder-ir/responder/responder/evidence"
)

// verifyOptions are the inputs of `responder verify`.
type verifyOptions struct {
	CaseID string
	roleOptions
	NoSnapshots  bool
	PublicKey    string
	Online       bool
	MaxClockSkew time.Duration
	Output       outputOptions
	AWS          awsOptions
	Store        storeOptions
}

func verifyCommand(s *streams, d deps) *cli.Command {
	o := &verifyOptions{}
	flags := []cli.Flag{
		&cli.StringFlag{Name: "case-id", Usage: "the case to verify", Required: true, Destination: &o.CaseID},
		&cli.BoolFlag{Name: "no-snapshots", Usage: "do not check the snapshots (no AWS access needed for a local case)", Destination: &o.NoSnapshots},
		&cli.StringFlag{Name: "public-key", Usage: "the public key (PEM or DER `FILE`) you trust: every run must be signed with it (else the stored key is used)", Destination: &o.PublicKey},
		maxClockSkewFlag(&o.MaxClockSkew),
		&cli.BoolFlag{Name: "online", Usage: "also ask KMS, with your own credentials, for the public key of each signing key and compare it with the stored one", Destination: &o.Online},
		outputFlag(&o.Output), queryFlag(&o.Output),
	}
	flags = append(flags, roleFlags(&o.roleOptions, ", to check its snapshots")...)
	flags = append(flags, awsFlags(&o.AWS)...)
	flags = append(flags, storeFlags(&o.Store)...)
	return &cli.Command{
		Name:  "verify",
		Usage: "prove a case intact: re-hash every artifact, check the record's seals, Object Lock and snapshots",
		UsageText: "responder verify --case-id ID [--evidence-bucket B | --evidence-dir DIR] [--no-snapshots] [--public-key FILE] [--online]\n\n" +
			"Checks that manifest.json matches the seal of its last run and is the newest record in history\n" +
			"(not put back to an older one), that the case folder holds nothing the record does not list\n" +
			"(custody records aside), that every artifact hashes as recorded, read in the version the record\n" +
			"names, and, in a versioned bucket, that nothing was written twice or deleted and that every\n" +
			"version of manifest.json is a sealed record; then Object Lock, the snapshots and their copies.\n" +
			"Each run's record holds the SHA-256 of the one before (a hash chain) and, when it was signed\n" +
			"(--signing-key), its signature is checked with the public key stored in the case, or with\n" +
			"--public-key; neither needs AWS. --online also compares the stored key with KMS's. A record\n" +
			"without signatures is reported unsigned, never verified as signed.\n\n" +
			"Exit codes: 0 verified (or intact but unsigned: INTACT, UNSIGNED); 1 a mismatch, something missing, or a check that could not be made;\n" +
			"2 bad input; 3 intact so far but snapshots still pending; 4 case not found.",
		Flags: flags,
		Action: func(c *cli.Context) error {
			if err := o.Store.validate(c); err != nil {
				return err
			}
			return runVerify(c, s, d, o)
		},
	}
}

func runVerify(c *cli.Context, s *streams, d deps, o *verifyOptions) error {
	if err := validateOutput(o.Output); err != nil {
		return err
	}
	if err := evidence.ValidateCaseID(o.CaseID); err != nil {
		return exitf(exitUsage, "%v", err)
	}
	if err := o.roleOptions.validate(); err != nil {
		return err
	}
	pinned, err := readPublicKey(o.PublicKey)
	if err != nil {
		return err
	}
	clients := &cloud.Clients{}
	if o.Store.Bucket != "" || !o.NoSnapshots || o.Online {
		var err error
		clients, err = loadClients(c.Context, d, cloud.Options{Region: o.AWS.Region, Profile: o.AWS.Profile,
			RoleARN: o.RoleARN, ExternalID: o.ExternalID, SessionName: sessionName(o.CaseID)})
		if err != nil {
			return err
		}
	}
	// The copies in the forensics account (responder preserve) are checked
	// with the caller's own credentials.
	cu := custody.New(clients, o.Store.store(clients))
	if o.NoSnapshots {
		cu.Snapshots, cu.Copies = nil, nil
	}
	cu.PublicKey, cu.MaxClockSkew = pinned, o.MaxClockSkew
	if o.Online && clients.Signing != nil {
		cu.Keys = clients.Signing
	}
	v, err := cu.Verify(c.Context, o.CaseID)
	switch {
	case errors.Is(err, evidence.ErrNotFound):
		return exitf(exitCannotStart, "case %s not found: %v", o.CaseID, err)
	case err != nil:
		return exitf(exitCannotStart, "verify case %s: %v", o.CaseID, err)
	}
	if err := printVerification(s, o.Output, v); err != nil {
		return exitf(exitContainmentFailed, "print: %v", err)
	}
	switch {
	case v.Failed():
		return &exitError{code: 1, err: fmt.Errorf("case %s FAILED verification", o.CaseID)}
	case v.Pending():
		return &exitError{code: 3, err: fmt.Errorf("case %s intact so far; snapshots still pending", o.CaseID)}
	}
	return nil
}

func printVerification(s *streams, o outputOptions, v *custody.Verification) error {
	return o.print(s, result{
		value: v,
		table: func(w io.Writer) error { return verificationTable(w, v) },
		text: func(t *textWriter) {
			t.line("CASE", v.CaseID, v.Location)
			for _, c := range v.Checks {
				t.line("CHECK", c.Kind, c.Subject, c.Status, c.Detail)
			}
			t.line("RESULT", verificationResult(v))
		},
	})
}

// verificationResult is the word a verification ends with.
func verificationResult(v *custody.Verification) string {
	switch {
	case v.Failed():
		return "failed"
	case v.Pending():
		return "intact-so-far"
	case v.Unsigned():
		return "intact-unsigned"
	}
	return "verified"
}

func verificationTable(w io.Writer, v *custody.Verification) error {
	fmt.Fprintf(w, "Case      %s\nEvidence  %s\n\n", v.CaseID, v.Location)
	t := newTable(w, "CHECK", "SUBJECT", "RESULT", "DETAIL")
	for _, c := range v.Checks {
		if err := t.Append([]string{c.Kind, c.Subject, paint(w, c.Status), c.Detail}); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	switch {
	case v.Failed():
		fmt.Fprintln(w, "\nResult    "+paint(w, "FAILED: the evidence does not match its record (see above)"))
	case v.Pending():
		fmt.Fprintln(w, "\nResult    "+paint(w, "INTACT SO FAR: some snapshots are still pending"))
	case v.Unsigned():
		fmt.Fprintln(w, "\nResult    "+paint(w, "INTACT, UNSIGNED: every check passed, but some runs are not signed (see above): who wrote them rests on the store's protection"))
	default:
		fmt.Fprintln(w, "\nResult    "+paint(w, "VERIFIED"))
	}
	return nil
}

// readPublicKey reads and parses --public-key (PEM or DER) before any AWS
// call; nil when none is given.
func readPublicKey(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, exitf(exitUsage, "--public-key: %v", err)
	}
	der, err := evidence.PublicKeyDER(b)
	if err != nil {
		return nil, exitf(exitUsage, "--public-key %s: %v", path, err)
	}
	return der, nil
}
