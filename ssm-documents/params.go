package ssmdocuments

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

var sealingKeyIDPattern = regexp.MustCompile(PatternSealingKeyID)

// ErrInvalidParameters is wrapped by every error of SendCommandParameters.
var ErrInvalidParameters = errors.New("invalid document parameters")

// SendCommandParameters checks values against the document's parameters and
// returns them in the shape of SSM SendCommand's Parameters, with defaults
// filled in. Checking here, before the call, gives a clear error instead of
// SSM's InvalidParameters, and the same patterns protect the instance.
//
// The sealed parameters (presigned URLs) are checked the same way, then
// encrypted to key, the sealing key the instance made for this command:
// they leave as SealingKeyId and Sealed, never in clear. key may be nil for
// a document without sealed parameters.
//
// Errors name the parameter, never its value: values include presigned URLs,
// which must not be logged.
func (d Document) SendCommandParameters(values map[string]string, key *SealingKey) (map[string][]string, error) {
	known := make(map[string]bool, len(d.Parameters))
	var problems []string
	out := make(map[string][]string, len(d.Parameters))
	var sealed strings.Builder
	for _, p := range d.Parameters {
		known[p.Name] = true
		v, ok := values[p.Name]
		if !ok || v == "" {
			if p.Required() {
				problems = append(problems, p.Name+": required")
				continue
			}
			v = p.Default
		}
		re, err := regexp.Compile(p.AllowedPattern)
		if err != nil {
			return nil, fmt.Errorf("document %s: parameter %s: pattern: %w", d.Name, p.Name, err)
		}
		switch {
		case !re.MatchString(v):
			problems = append(problems, p.Name+": value does not match allowedPattern "+p.AllowedPattern)
		case p.Sealed:
			sealed.WriteString(p.Var + "=" + v + "\n")
		default:
			out[p.Name] = []string{v}
		}
	}
	for name := range values {
		if !known[name] {
			problems = append(problems, name+": not a parameter of this document")
		}
	}
	if d.HasSealed() {
		switch {
		case key == nil || key.Public == nil:
			problems = append(problems, "no sealing key for the sealed parameters")
		case !sealingKeyIDPattern.MatchString(key.ID):
			problems = append(problems, ParamSealingKeyID+": value does not match allowedPattern "+PatternSealingKeyID)
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, fmt.Errorf("%w: document %s: %s", ErrInvalidParameters, d.Name, strings.Join(problems, "; "))
	}
	if d.HasSealed() {
		ct, err := seal(key.Public, []byte(sealed.String()))
		if err != nil {
			return nil, fmt.Errorf("document %s: %w", d.Name, err)
		}
		out[ParamSealingKeyID], out[ParamSealed] = []string{key.ID}, []string{ct}
	}
	return out, nil
}

// S3 multipart limits (Amazon S3 User Guide, "Multipart upload limits").
const (
	MinPartSizeMiB = 5
	MaxPartSizeMiB = 5120
	MaxParts       = 10000
)

// PlanParts chooses the part size and the number of UploadPart URLs to
// presign for a memory image of an instance with memoryBytes of RAM. It keeps
// preferredMiB when 10,000 parts of that size hold the worst case, and grows
// the part size otherwise. The worst case is an incompressible image: the
// memory, LiME headers, and compressor framing, budgeted at 1% plus 1 MiB.
// The instance fails the upload (naming the part) rather than truncate when
// the stream outgrows the URLs it was given.
func PlanParts(memoryBytes int64, preferredMiB int) (partSizeMiB, parts int, err error) {
	if memoryBytes <= 0 {
		return 0, 0, fmt.Errorf("plan parts: memory size %d: must be positive", memoryBytes)
	}
	if preferredMiB < MinPartSizeMiB || preferredMiB > MaxPartSizeMiB {
		return 0, 0, fmt.Errorf("plan parts: part size %d MiB: must be %d to %d", preferredMiB, MinPartSizeMiB, MaxPartSizeMiB)
	}
	const mib = 1 << 20
	budget := memoryBytes + memoryBytes/100 + mib
	partSizeMiB = preferredMiB
	minMiB := int((budget + MaxParts*mib - 1) / (MaxParts * mib))
	if partSizeMiB < minMiB {
		partSizeMiB = minMiB
	}
	if partSizeMiB > MaxPartSizeMiB {
		return 0, 0, fmt.Errorf("plan parts: %d bytes of memory need parts over %d MiB", memoryBytes, MaxPartSizeMiB)
	}
	size := int64(partSizeMiB) * mib
	parts = int((budget + size - 1) / size)
	return partSizeMiB, parts, nil
}

// PartURLList formats presigned UploadPart URLs, in part order (URL i is part
// i+1), as the text object the documents fetch through PartUrlsUrl.
func PartURLList(urls []string) []byte {
	var b strings.Builder
	for _, u := range urls {
		b.WriteString(u)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}
