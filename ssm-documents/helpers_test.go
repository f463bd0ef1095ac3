package ssmdocuments

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/responder-ir/responder/internal/testenv"
)

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// runResult is the outcome of running a script or a document.
type runResult struct {
	stdout, stderr []byte
	exit           int
}

// run executes name with args, the test's environment plus env, and a time
// limit, returning its output and exit status.
func run(t testing.TB, env []string, name string, args ...string) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := runResult{stdout: out.Bytes(), stderr: errb.Bytes()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.exit = ee.ExitCode()
	default:
		t.Fatalf("run %s: %v", name, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("run %s: timed out; stderr:\n%s", name, errb.String())
	}
	return res
}

var paramRef = regexp.MustCompile(`\{\{ *([A-Za-z0-9]+) *\}\}`)

// runDocument does what the engine and the SSM agent do with a Linux
// document: for one with sealed parameters, runs the sealing-key document
// first and seals them to its key; checks the parameters against their
// allowedPattern (SendCommand does), substitutes them into runCommand,
// writes the script and runs it with /bin/sh.
func runDocument(t testing.TB, name string, params map[string]string, env []string) runResult {
	t.Helper()
	doc, ok := Lookup(name)
	if !ok {
		t.Fatalf("no document %s", name)
	}
	var key *SealingKey
	if doc.HasSealed() {
		k := makeSealingKey(t, env)
		key = &k
	}
	values, err := doc.SendCommandParameters(params, key)
	if err != nil {
		t.Fatalf("parameters: %v", err)
	}
	return runValues(t, doc, values, env)
}

// makeSealingKey runs Responder-LinuxSealingKey and reads the key it made.
func makeSealingKey(t testing.TB, env []string) SealingKey {
	t.Helper()
	id, err := NewSealingKeyID()
	if err != nil {
		t.Fatal(err)
	}
	res := runDocument(t, LinuxSealingKey, map[string]string{ParamSealingKeyID: id}, env)
	key, err := ParseSealingKey(res.stdout, id)
	if err != nil || res.exit != 0 {
		t.Fatalf("sealing key (exit %d): %v\nstdout: %s\nstderr: %s", res.exit, err, res.stdout, res.stderr)
	}
	return key
}

// runValues runs a Linux document with the SendCommand parameters given.
func runValues(t testing.TB, doc Document, values map[string][]string, env []string) runResult {
	t.Helper()
	content, err := doc.Content()
	if err != nil {
		t.Fatal(err)
	}
	var parsed docJSON
	if err := json.Unmarshal(content, &parsed); err != nil {
		t.Fatal(err)
	}
	script := strings.Join(parsed.MainSteps[0].Inputs.RunCommand, "\n") + "\n"
	script = paramRef.ReplaceAllStringFunc(script, func(m string) string {
		return values[paramRef.FindStringSubmatch(m)[1]][0]
	})
	path := filepath.Join(t.TempDir(), "_script.sh")
	if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	return run(t, env, "sh", path)
}

// standIn is a LiME-format memory image of known content and the
// /proc/iomem that goes with it.
type standIn struct {
	image, iomem string // file paths
	data         []byte
	// skipped is the System RAM range the image leaves out.
	skippedStart, skippedEnd uint64
}

// newStandIn writes a LiME image of two System RAM ranges (about 15 MiB of
// pages that are zero, random or text, like memory) and an iomem that also
// lists a third range the image does not hold.
func newStandIn(t testing.TB, dir string) standIn {
	t.Helper()
	ranges := [][2]uint64{{0x1000, 0x9fbff}, {0x100000, 0xefffff}}
	rng := rand.New(rand.NewSource(1))
	var img bytes.Buffer
	for _, r := range ranges {
		hdr := make([]byte, 32)
		binary.LittleEndian.PutUint32(hdr[0:], 0x4C694D45)
		binary.LittleEndian.PutUint32(hdr[4:], 1)
		binary.LittleEndian.PutUint64(hdr[8:], r[0])
		binary.LittleEndian.PutUint64(hdr[16:], r[1])
		img.Write(hdr)
		img.Write(memoryLike(rng, int(r[1]-r[0]+1)))
	}
	iomem := "00000000-00000fff : Reserved\n" +
		"00001000-0009fbff : System RAM\n" +
		"000a0000-000fffff : Reserved\n" +
		"00100000-00efffff : System RAM\n" +
		"  00200000-002fffff : Kernel code\n" +
		"00f00000-00ffffff : Reserved\n" +
		"01000000-013fffff : System RAM\n" +
		"fec00000-fec003ff : IOAPIC 0\n"
	s := standIn{
		image: filepath.Join(dir, "memory.lime"), iomem: filepath.Join(dir, "iomem"),
		data: img.Bytes(), skippedStart: 0x1000000, skippedEnd: 0x13fffff,
	}
	if err := os.WriteFile(s.image, s.data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.iomem, []byte(iomem), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// memoryLike returns n bytes of 4 KiB pages: 40% zero, 30% random, 30% text.
func memoryLike(rng *rand.Rand, n int) []byte {
	text := bytes.Repeat([]byte("GET /index.html HTTP/1.1\r\nHost: example.internal\r\nUser-Agent: curl/8\r\n"), 80)
	out := make([]byte, n)
	for off := 0; off < n; off += 4096 {
		end := min(off+4096, n)
		switch r := rng.Float64(); {
		case r < 0.4:
		case r < 0.7:
			rng.Read(out[off:end])
		default:
			o := rng.Intn(len(text) - 4096)
			copy(out[off:end], text[o:])
		}
	}
	return out
}

// decompress undoes the compression a report names, with the system tools.
func decompress(t *testing.T, compression string, b []byte) []byte {
	t.Helper()
	var cmd *exec.Cmd
	switch compression {
	case "none":
		return b
	case "zstd":
		cmd = exec.Command("zstd", "-d", "-c", "-q")
	case "gzip":
		cmd = exec.Command("gzip", "-d", "-c")
	default:
		t.Fatalf("unknown compression %q", compression)
	}
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s -d: %v", compression, err)
	}
	return out
}

func requireTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		testenv.LookPath(t, "install the Debian package "+tool+" (.ci/run does)", tool)
	}
}
