package step

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/responder-ir/responder/responder/cloud"
)

type consoleOutputAPI interface {
	GetConsoleOutput(context.Context, *ec2.GetConsoleOutputInput, ...func(*ec2.Options)) (*ec2.GetConsoleOutputOutput, error)
}

// ConsoleOutput stores the instance's serial console output (at most 64 KB).
// It asks for the latest output (Nitro instances) and falls back to the
// buffered output where Latest is not supported.
type ConsoleOutput struct{}

func (ConsoleOutput) Name() string    { return "console-output" }
func (ConsoleOutput) Phase() Phase    { return Acquire }
func (ConsoleOutput) Needs() []string { return nil }

func (s ConsoleOutput) Run(ctx context.Context, env *Env) Result {
	var api consoleOutputAPI = env.Clients.EC2
	id := env.Target.InstanceID()
	latest := true
	var out *ec2.GetConsoleOutputOutput
	// Throttling and server errors are retried until the step's deadline.
	err := retryTransient(ctx, func() (err error) {
		out, err = api.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: &id, Latest: &latest})
		return err
	})
	if cloud.IsErrorCode(err, "UnsupportedOperation", "InvalidParameterValue", "InvalidParameterCombination") {
		latest = false
		err = retryTransient(ctx, func() (err error) {
			out, err = api.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: &id})
			return err
		})
	}
	if err != nil {
		return Failed(fmt.Errorf("get console output of %s: %w", id, err), nil)
	}
	text, err := base64.StdEncoding.DecodeString(aws.ToString(out.Output))
	if err != nil {
		return Failed(fmt.Errorf("decode console output of %s: %w", id, err), nil)
	}
	a, err := env.SaveArtifact(ctx, s.Name(), "console-output.txt", text, "text/plain; charset=utf-8", "ec2:GetConsoleOutput")
	after := map[string]any{"bytes": len(text), "latest": latest}
	if out.Timestamp != nil {
		after["console_timestamp"] = out.Timestamp.UTC()
	}
	switch {
	case errors.Is(err, ErrAlreadyCollected):
		return Skipped("console output already collected in this case ("+a.Path+")", nil)
	case err != nil:
		return Failed(err, nil)
	case env.Target.DryRun:
		return OK(fmt.Sprintf("dry run: would store %s (%d bytes)", a.Path, len(text)), nil, after)
	case len(text) == 0:
		return OK("stored "+a.Path+" (the instance has posted no console output yet)", nil, after)
	}
	return OK(fmt.Sprintf("stored %s (%d bytes)", a.Path, len(text)), nil, after)
}

type screenshotAPI interface {
	GetConsoleScreenshot(context.Context, *ec2.GetConsoleScreenshotInput, ...func(*ec2.Options)) (*ec2.GetConsoleScreenshotOutput, error)
}

// ConsoleScreenshot stores a JPEG screenshot of the instance console. Some
// instance types (many Graviton, bare metal, GPU with GRID drivers) and some
// Regions do not support it: that is a recorded skip, not a failure.
type ConsoleScreenshot struct{}

func (ConsoleScreenshot) Name() string    { return "console-screenshot" }
func (ConsoleScreenshot) Phase() Phase    { return Acquire }
func (ConsoleScreenshot) Needs() []string { return nil }

func (s ConsoleScreenshot) Run(ctx context.Context, env *Env) Result {
	var api screenshotAPI = env.Clients.EC2
	id := env.Target.InstanceID()
	if state := env.Target.Instance.State; state != nil && state.Name != "running" {
		return Skipped(fmt.Sprintf("instance is %s: a screenshot needs a running instance", state.Name), nil)
	}
	// Few attempts of the SDK per call, each waiting for its token, but
	// throttling and server errors retried until the step's deadline: the
	// screenshot of this moment cannot be taken later. Errors no retry can
	// fix (unsupported, unknown instance, access denied) end it at once.
	var out *ec2.GetConsoleScreenshotOutput
	err := retryTransient(ctx, func() (err error) {
		out, err = api.GetConsoleScreenshot(ctx, &ec2.GetConsoleScreenshotInput{InstanceId: &id}, func(o *ec2.Options) { o.RetryMaxAttempts = 3 })
		return err
	})
	switch {
	case cloud.IsErrorCode(err, "UnsupportedOperation", "InvalidInstanceType", "NotImplemented", "InvalidAction"):
		return Skipped("console screenshot is not supported for this instance or endpoint ("+cloud.ErrorCode(err)+")", nil)
	case cloud.IsErrorCode(err, "IncorrectInstanceState", "IncorrectState"):
		return Skipped("instance state does not allow a screenshot ("+cloud.ErrorCode(err)+")", nil)
	case err != nil:
		return Failed(fmt.Errorf("get console screenshot of %s: %w", id, err), nil)
	}
	img, err := base64.StdEncoding.DecodeString(aws.ToString(out.ImageData))
	if err != nil {
		return Failed(fmt.Errorf("decode console screenshot of %s: %w", id, err), nil)
	}
	a, err := env.SaveArtifact(ctx, s.Name(), "console-screenshot.jpg", img, "image/jpeg", "ec2:GetConsoleScreenshot")
	switch {
	case errors.Is(err, ErrAlreadyCollected):
		return Skipped("console screenshot already collected in this case ("+a.Path+")", nil)
	case err != nil:
		return Failed(err, nil)
	case env.Target.DryRun:
		return OK("dry run: would store "+a.Path, nil, map[string]any{"bytes": len(img)})
	}
	return OK(fmt.Sprintf("stored %s (%d bytes)", a.Path, len(img)), nil, map[string]any{"bytes": len(img)})
}

// Describe: the after summarises the stored output, not a state.
func (ConsoleOutput) Describe() Description {
	return Description{
		NoState: true,
		OnFailure: "No serial console output of that moment: boot and kernel messages, and anything printed " +
			"to the console, are not preserved. A later capture holds only what the console buffer still has.",
		OnSkip: "No serial console output was stored for this case.",
	}
}

// Describe: the after summarises the stored image, not a state.
func (ConsoleScreenshot) Describe() Description {
	return Description{
		NoState: true,
		OnFailure: "No picture of the console at that moment (a login prompt, a ransom note, a kernel " +
			"panic). It cannot be taken afterwards for that point in time.",
		OnSkip: "No console screenshot exists for this case: the instance type, the Region or the " +
			"instance state does not allow one (see the reason). This is a limit of the platform, not an error; " +
			"no picture of the console at that moment is available.",
	}
}
