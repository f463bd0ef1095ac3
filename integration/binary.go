package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Package is the responder command's import path.
const Package = "github.com/responder-ir/responder/cmd/responder"

// BuildBinary compiles the responder command into dir and returns its path.
func BuildBinary(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "responder")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, Package)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", Package, err, out)
	}
	return bin, nil
}

// Result is how one run of the binary ended.
type Result struct {
	Args   []string
	Code   int
	Stdout string
	Stderr string
}

func (r Result) String() string {
	return fmt.Sprintf("responder %s\nexit %d\n--- stdout\n%s\n--- stderr\n%s",
		strings.Join(r.Args, " "), r.Code, r.Stdout, r.Stderr)
}

// Env is the environment of a run against an emulator at endpoint: only the
// endpoint, the Region and dummy credentials, so that nothing from the
// caller's AWS configuration (profiles, real credentials) leaks in. home
// holds the (empty) shared config files.
func Env(endpoint, home string) []string {
	env := []string{
		"AWS_ENDPOINT_URL=" + endpoint,
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=testing",
		"AWS_SECRET_ACCESS_KEY=testing",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + filepath.Join(home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials"),
		"HOME=" + home,
	}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "TMPDIR=") {
			env = append(env, kv)
		}
	}
	return env
}

// Run runs the binary with args and env and returns how it ended. An error
// means it could not be run at all (or was killed by ctx).
func Run(ctx context.Context, bin string, env []string, args ...string) (Result, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := Result{Args: args, Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		res.Code = exit.ExitCode()
	default:
		return res, fmt.Errorf("run responder %s: %w\n%s", strings.Join(args, " "), err, res)
	}
	return res, nil
}
