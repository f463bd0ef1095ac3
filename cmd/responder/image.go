package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/image"
)

// imageOptions are the inputs of `responder image`.
type imageOptions struct {
	CaseID      string
	SnapshotID  string
	Compression string
	Concurrency int
	Rate        float64
	Output      outputOptions
	Verbose     bool
	AWS         awsOptions
	Store       storeOptions
}

func imageCommand(s *streams, d deps) *cli.Command {
	o := &imageOptions{}
	flags := []cli.Flag{
		&cli.StringFlag{Name: "case-id", Usage: "the case whose snapshot copies to image", Required: true, Destination: &o.CaseID},
		&cli.StringFlag{Name: "snapshot", Usage: "image only this copy (its ID in the forensics account, or the case snapshot it copies)", Destination: &o.SnapshotID},
		&cli.StringFlag{Name: "compress", Usage: "zstd or none", Value: image.CompressZstd, Destination: &o.Compression},
		&cli.IntFlag{Name: "concurrency", Usage: "GetSnapshotBlock calls in flight", Value: image.DefaultConcurrency, Destination: &o.Concurrency},
		&cli.Float64Flag{Name: "rate", Usage: "GetSnapshotBlock calls a second (the EBS direct APIs' per-snapshot quota)", Value: image.DefaultRate, Destination: &o.Rate},
		outputFlag(&o.Output), queryFlag(&o.Output),
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log to standard error", Destination: &o.Verbose},
	}
	flags = append(flags, awsFlags(&o.AWS)...)
	flags = append(flags, storeFlags(&o.Store)...)
	return &cli.Command{
		Name:  "image",
		Usage: "make raw disk images of the case's snapshot copies, with their SHA-256, without an instance",
		UsageText: "responder image --case-id ID [--snapshot snap-...] [--compress zstd|none]\n" +
			"    --evidence-bucket B [--output table|json]",
		Description: "Each completed snapshot copy the case records (responder preserve) is read through the EBS\n" +
			"direct APIs in the forensics account, with your own credentials: every written block is\n" +
			"checked against the SHA-256 AWS sends with it (a mismatch refuses the image), blocks never\n" +
			"written are zeros. The image streams into the evidence bucket as a multipart upload, under\n" +
			"cases/<case-id>/<instance>/images/<snapshot>.raw (.raw.zst with --compress zstd). The\n" +
			"SHA-256 of the stored object and, compressed, of the raw disk are recorded in the case as\n" +
			"an artifact, in an \"image\" run; an image already recorded is not made again. Needs an S3\n" +
			"evidence bucket.\n\n" +
			"EXIT CODES:\n" +
			"   0  every copy imaged\n" +
			"   1  some image failed (refused block, read or upload error: see the table), or the record was not saved\n" +
			"   2  bad input (nothing was read)\n" +
			"   4  could not start: case not found, no completed copy, no credentials",
		Flags: flags,
		Action: func(c *cli.Context) error {
			if err := o.Store.validate(c); err != nil {
				return err
			}
			return runImage(c, s, d, o)
		},
	}
}

func runImage(c *cli.Context, s *streams, d deps, o *imageOptions) error {
	ctx := c.Context
	if err := validateOutput(o.Output); err != nil {
		return err
	}
	req := image.Request{CaseID: o.CaseID, SnapshotID: o.SnapshotID, Compression: o.Compression,
		Options: image.Options{Concurrency: o.Concurrency, Rate: o.Rate}}
	if err := req.Validate(); err != nil {
		return exitf(exitUsage, "%v", err)
	}
	if o.Store.Bucket == "" {
		return exitf(exitUsage, "responder image needs --evidence-bucket: images stream into S3 as multipart uploads")
	}
	clients, err := loadClients(ctx, d, cloud.Options{Region: o.AWS.Region, Profile: o.AWS.Profile})
	if err != nil {
		return err
	}
	if clients.EBS == nil {
		return exitf(exitCannotStart, "no EBS direct API client")
	}
	im := image.New(clients, o.Store.store(clients))
	im.Log, im.Now = logger(s, o.Verbose), d.now
	res, err := im.Image(ctx, req)
	if err := caseStartError(o.CaseID, err); err != nil {
		return err
	}
	if err := printImage(s, o.Output, res); err != nil {
		return exitf(exitContainmentFailed, "print result: %v", err)
	}
	if res.Err != nil {
		return &exitError{code: 1, err: fmt.Errorf("case %s not fully imaged: %v", o.CaseID, res.Err)}
	}
	return nil
}

// imageOutput is what --output json prints.
type imageOutput struct {
	CaseID    string                `json:"case_id"`
	Run       int                   `json:"run"`
	Status    string                `json:"status"`
	Location  string                `json:"location"`
	Artifacts []evidence.Artifact   `json:"artifacts"`
	Steps     []evidence.StepRecord `json:"steps"`
}

func printImage(s *streams, o outputOptions, res *image.Result) error {
	m := res.Manifest
	return o.print(s, result{
		value: imageOutput{CaseID: m.CaseID, Run: m.LastRun(), Status: res.Status, Location: m.Location, Artifacts: res.Artifacts, Steps: res.Steps},
		table: func(w io.Writer) error { return imageTable(w, res) },
		text: func(t *textWriter) {
			t.line("IMAGE", m.CaseID, fmt.Sprint(m.LastRun()), res.Status, m.Location)
			for _, st := range res.Steps {
				t.line("STEP", st.Name, st.Status, st.Reason, st.Error)
			}
			for _, a := range res.Artifacts {
				t.line("ARTIFACT", a.Path, fmt.Sprint(a.Size), a.SHA256, a.DecodedSHA256, fmt.Sprint(a.DecodedSize))
			}
		},
	})
}

func imageTable(w io.Writer, res *image.Result) error {
	m := res.Manifest
	if len(res.Steps) == 0 {
		fmt.Fprintf(w, "Case      %s: every copy is already imaged (no run recorded)\n", m.CaseID)
		return nil
	}
	fmt.Fprintf(w, "Case      %s (run %d)\n", m.CaseID, m.LastRun())
	fmt.Fprintf(w, "Status    %s\n", res.Status)
	fmt.Fprintf(w, "Evidence  %s\n\n", m.Location)
	t := newTable(w, "STEP", "STATUS", "DETAIL")
	for _, st := range res.Steps {
		detail := st.Reason
		if st.Error != "" {
			detail += ": " + st.Error
		}
		if err := t.Append([]string{st.Name, st.Status, detail}); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	for _, a := range res.Artifacts {
		fmt.Fprintf(w, "\n%s\n  sha256 %s (%d bytes stored)\n", a.Path, a.SHA256, a.Size)
		if a.DecodedSHA256 != "" {
			fmt.Fprintf(w, "  raw disk sha256 %s (%d bytes)\n", a.DecodedSHA256, a.DecodedSize)
		}
	}
	return nil
}
