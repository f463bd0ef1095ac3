package main

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/responder-ir/responder/responder/cloud"
)

// Before any AWS call, a command checks what it can locally, and says in
// one line what is wrong (exit 4): a Region that is not one, a profile that
// does not exist, no credentials at all.

// checkRegion refuses a Region name that is not in the SDK's partition
// metadata, with the closest one that is.
func checkRegion(region string) error {
	if region == "" || cloud.KnownRegion(region) {
		return nil
	}
	if s, ok := closest(region, cloud.Regions()); ok {
		return exitf(exitCannotStart, "unknown region %s: did you mean %s?", region, s)
	}
	return exitf(exitCannotStart, "unknown region %s: not a Region of the AWS SDK's partition metadata (e.g. eu-west-1, us-east-1)", region)
}

// loadClients checks the Region, loads the clients, and retrieves the
// caller's credentials once: each failure is one line, exit 4.
func loadClients(ctx context.Context, d deps, opts cloud.Options) (*cloud.Clients, error) {
	if err := checkRegion(opts.Region); err != nil {
		return nil, err
	}
	if w, ok := retryWatch(ctx); ok {
		opts.Retry = w
	}
	clients, err := d.loadClients(ctx, opts)
	if profile, ok := cloud.MissingProfile(err); ok {
		return nil, unknownProfile(profile, d.withEnv().getenv)
	}
	if err != nil {
		return nil, exitf(exitCannotStart, "%v", err)
	}
	if err := checkRegion(clients.Region); err != nil { // from AWS_REGION or the profile
		return nil, err
	}
	if err := cloud.CheckCredentials(ctx, clients.EvidenceCredentials); err != nil {
		return nil, exitf(exitCannotStart, "%v", err)
	}
	return clients, nil
}

// unknownProfile names the profile that is not in the shared files, and the
// closest one that is.
func unknownProfile(name string, getenv func(string) string) error {
	known := profiles(getenv)
	if s, ok := closest(name, known); ok {
		return exitf(exitCannotStart, "unknown profile %s: did you mean %s?", name, s)
	}
	if len(known) == 0 {
		return exitf(exitCannotStart, "unknown profile %s: no profile in %s or %s (run aws configure --profile %s)",
			name, sharedFile(getenv, "AWS_CONFIG_FILE", "config"), sharedFile(getenv, "AWS_SHARED_CREDENTIALS_FILE", "credentials"), name)
	}
	return exitf(exitCannotStart, "unknown profile %s: the profiles are %s", name, strings.Join(known, ", "))
}

func sharedFile(getenv func(string) string, variable, name string) string {
	if p := getenv(variable); p != "" {
		return p
	}
	return filepath.Join(getenv("HOME"), ".aws", name)
}

// profiles are the profile names of the shared config and credentials
// files: [default], [profile NAME] in config, [NAME] in credentials.
func profiles(getenv func(string) string) []string {
	seen := map[string]bool{}
	for _, f := range []struct{ path, prefix string }{
		{sharedFile(getenv, "AWS_CONFIG_FILE", "config"), "profile "},
		{sharedFile(getenv, "AWS_SHARED_CREDENTIALS_FILE", "credentials"), ""},
	} {
		file, err := os.Open(f.path)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if !strings.HasPrefix(line, "[") || !strings.HasSuffix(line, "]") {
				continue
			}
			name := strings.TrimSpace(strings.Trim(line, "[]"))
			if name == "default" || f.prefix == "" {
				seen[name] = true
			} else if n, ok := strings.CutPrefix(name, f.prefix); ok {
				seen[strings.TrimSpace(n)] = true
			}
		}
		file.Close()
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
