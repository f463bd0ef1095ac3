package custody

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/responder-ir/responder/responder/evidence"
)

// The checks in this file compare what the store holds with the record: a
// record can be consistent with itself (every hash matching its seal) and
// still not be the case's whole story, when an older record was put back
// (rollback), objects were added beside it, or write-once objects were
// written again (in a versioned bucket, every version stays visible).

// custodyFile matches the custody records (hold, unhold) of a case: written
// once, never listed in the manifest (they are made after its runs).
var custodyFile = regexp.MustCompile(`^` + regexp.QuoteMeta(evidence.CustodyFolder) + `[A-Za-z0-9][A-Za-z0-9._-]*\.json$`)

// verifyRevision checks that manifest.json is the newest record the case
// folder holds: a history copy (or seal) of a later run means manifest.json
// was put back to an older version, or the save of that run stopped before
// manifest.json (the next respond run completes it).
func verifyRevision(m *evidence.Manifest, files []string) Check {
	c := Check{Kind: "revision", Subject: evidence.ManifestName}
	newest := 0
	for _, f := range files {
		if n, ok := evidence.HistoryRun(f); ok && n > newest {
			newest = n
		}
	}
	last := m.LastRun()
	if newest > last {
		c.Status = CheckMismatch
		c.Detail = fmt.Sprintf("history holds run %d, manifest.json ends at run %d: manifest.json was put back to an older record, "+
			"or the save of run %d stopped before manifest.json (respond again with this case ID to complete it)", newest, last, newest)
		return c
	}
	c.Status, c.Detail = CheckOK, fmt.Sprintf("run %d is the newest run in history", last)
	return c
}

// expectedFiles are the paths a case folder holds by its record.
func expectedFiles(m *evidence.Manifest) map[string]bool {
	want := map[string]bool{evidence.ManifestName: true}
	for _, r := range m.Runs {
		want[evidence.HistoryName(r.Number)] = true
		want[evidence.SealName(r.Number)] = true
		if s := r.Signature; s != nil {
			want[evidence.SignatureName(r.Number)] = true
			want[evidence.PublicKeyName(s.PublicKeySHA256, "der")] = true
			want[evidence.PublicKeyName(s.PublicKeySHA256, "pem")] = true
		}
	}
	for _, a := range m.Artifacts {
		want[a.Path] = true
	}
	return want
}

// verifyListing flags every object of the case folder that the record does
// not account for. Expected besides the record's artifacts: manifest.json,
// the history copies and seals of its runs (those of later runs are the
// revision check's), and the custody records under custody/.
func verifyListing(m *evidence.Manifest, files []string) []Check {
	want := expectedFiles(m)
	var checks []Check
	for _, f := range files {
		if want[f] || custodyFile.MatchString(f) {
			continue
		}
		if n, ok := evidence.HistoryRun(f); ok && n > m.LastRun() {
			continue // reported by verifyRevision
		}
		checks = append(checks, Check{Kind: "unrecorded", Subject: f, Status: CheckMismatch,
			Detail: "in the case folder but not in the record: added after the record was written, or left by a run that did not record its end"})
	}
	if len(checks) == 0 {
		checks = append(checks, Check{Kind: "unrecorded", Subject: "(case folder)", Status: CheckOK,
			Detail: fmt.Sprintf("all %d objects are in the record", len(files))})
	}
	return checks
}

// versionStore is a store that keeps versions.
type versionStore interface {
	evidence.Store
	evidence.Versioned
}

// verifyVersions checks the version history of every object of the case
// (a versioned bucket): an object the toolkit writes once has exactly one
// version and no delete marker; every version of manifest.json is a record
// some run sealed.
func verifyVersions(ctx context.Context, store versionStore, m *evidence.Manifest, seals map[string]bool) []Check {
	versions, err := store.Versions(ctx, m.CaseID)
	if err != nil {
		return []Check{{Kind: "versions", Subject: "(case folder)", Status: CheckError, Detail: err.Error()}}
	}
	byPath := map[string][]evidence.ObjectVersion{}
	for _, v := range versions {
		byPath[v.Path] = append(byPath[v.Path], v)
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var checks []Check
	unversioned := false
	for _, p := range paths {
		vs := byPath[p]
		if slices.ContainsFunc(vs, func(v evidence.ObjectVersion) bool { return v.VersionID == "null" }) {
			unversioned = true
		}
		if p == evidence.ManifestName {
			checks = append(checks, verifyManifestVersions(ctx, store, m.CaseID, vs, seals)...)
			continue
		}
		if c, bad := writtenOnce(p, vs); bad {
			checks = append(checks, c)
		}
	}
	if unversioned {
		checks = append(checks, Check{Kind: "versions", Subject: "(case folder)", Status: CheckWarning,
			Detail: "some objects were written while the bucket kept no versions: an overwrite of those cannot be seen"})
	}
	if len(checks) == 0 {
		checks = append(checks, Check{Kind: "versions", Subject: "(case folder)", Status: CheckOK,
			Detail: "every object but manifest.json was written once and never deleted"})
	}
	return checks
}

// writtenOnce reports an object with more than one version, or deleted.
func writtenOnce(p string, vs []evidence.ObjectVersion) (Check, bool) {
	c := Check{Kind: "versions", Subject: p, Status: CheckMismatch}
	var ids []string
	deleted := false
	for _, v := range vs {
		ids = append(ids, v.VersionID)
		deleted = deleted || (v.DeleteMarker && v.Latest)
	}
	switch {
	case deleted:
		c.Detail = fmt.Sprintf("deleted: a delete marker is its current version (versions %s)", strings.Join(ids, ", "))
	case len(vs) > 1:
		c.Detail = fmt.Sprintf("written %d times (versions %s): evidence is written once", len(vs), strings.Join(ids, ", "))
	default:
		return c, false
	}
	return c, true
}

// verifyManifestVersions checks that every version of manifest.json is the
// record of a run, as sealed: a version that matches no seal was written by
// something other than a run's save.
func verifyManifestVersions(ctx context.Context, store versionStore, caseID string, vs []evidence.ObjectVersion, seals map[string]bool) []Check {
	var checks []Check
	for _, v := range vs {
		c := Check{Kind: "versions", Subject: evidence.ManifestName + " (version " + v.VersionID + ")"}
		if v.DeleteMarker {
			c.Status, c.Detail = CheckMismatch, "a delete marker: manifest.json was deleted"
			checks = append(checks, c)
			continue
		}
		sum, err := hashVersion(ctx, store, caseID, evidence.ManifestName, v.VersionID)
		switch {
		case err != nil:
			c.Status, c.Detail = CheckError, err.Error()
		case !seals[sum]:
			c.Status, c.Detail = CheckMismatch, "sha256 "+sum+" is the seal of no run: this version was not written by a run's save"
		default:
			continue
		}
		checks = append(checks, c)
	}
	return checks
}

func hashVersion(ctx context.Context, store versionStore, caseID, p, versionID string) (string, error) {
	body, err := store.OpenVersion(ctx, caseID, p, versionID)
	if err != nil {
		return "", err
	}
	defer body.Close()
	sum, _, err := evidence.HashReader(body)
	if err != nil {
		return "", fmt.Errorf("read %s version %s: %w", p, versionID, err)
	}
	return sum, nil
}
