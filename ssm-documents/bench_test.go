package ssmdocuments

import (
	"encoding/json"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// BenchmarkStreamUpload measures the streaming upload path of the memory
// document (stream-upload.sh: read, SHA-256 of the raw stream, compress,
// SHA-256 of the compressed stream, cut into 64 MiB parts, PUT each with
// Content-MD5 to the loopback receiver) on a 256 MiB memory-like stand-in,
// beside the physical references on the same file: sha256sum, gzip -1 and
// zstd -1 alone. MB/s is of raw input. Not run by plain go test:
//
//	go test ./ssm-documents -run '^$' -bench StreamUpload -benchtime 3x
func BenchmarkStreamUpload(b *testing.B) {
	const size = 256 << 20
	for _, tool := range []string{"curl", "zstd", "gzip", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("%s not installed", tool)
		}
	}
	dir := b.TempDir()
	src := filepath.Join(dir, "standin.bin")
	if err := os.WriteFile(src, memoryLike(rand.New(rand.NewSource(3)), size), 0o600); err != nil {
		b.Fatal(err)
	}
	r := newReceiver(b)
	r.discard = true
	list := filepath.Join(dir, "part-urls")
	if err := os.WriteFile(list, PartURLList(r.partURLs(16)), 0o600); err != nil {
		b.Fatal(err)
	}

	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("load average before: %s", load)
	}
	reference := func(name string, args ...string) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(size)
			var cpu time.Duration
			for i := 0; i < b.N; i++ {
				cmd := exec.Command(args[0], args[1:]...)
				in, err := os.Open(src)
				if err != nil {
					b.Fatal(err)
				}
				cmd.Stdin = in
				if err := cmd.Run(); err != nil {
					b.Fatalf("%s: %v", name, err)
				}
				in.Close()
				cpu += cpuTime(cmd)
			}
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
		})
	}
	reference("sha256sum", "sha256sum")
	reference("openssl-sha256", "openssl", "dgst", "-sha256")
	reference("gzip-1", "sh", "-c", "gzip -1 -c >/dev/null")
	reference("zstd-1", "sh", "-c", "zstd -1 -q -c >/dev/null")

	// "pipe" reads the stand-in through cat, as the document reads AVML's
	// output; "file" lets the first stage read the file itself.
	for _, c := range []struct{ compression, hashtee, source string }{
		{"zstd", "python", "file"}, {"zstd", "python", "pipe"}, {"zstd", "coreutils", "file"},
		{"gzip", "python", "file"}, {"gzip", "coreutils", "file"}, {"none", "python", "file"},
	} {
		compression := c.compression
		source := []string{"--source", src}
		if c.source == "pipe" {
			source = []string{"--", "cat", src}
		}
		b.Run("stream-upload-"+compression+"-"+c.hashtee+"-"+c.source, func(b *testing.B) {
			b.SetBytes(size)
			env := append(os.Environ(), append(r.env(), "SU_HASHTEE="+c.hashtee)...)
			var ratio float64
			var cpu time.Duration
			for i := 0; i < b.N; i++ {
				cmd := exec.Command("bash", append([]string{"scripts/stream-upload.sh", "--part-size", strconv.Itoa(64 << 20),
					"--part-urls", list, "--compression", compression}, source...)...)
				cmd.Env = env
				out, err := cmd.Output()
				if err != nil {
					b.Fatalf("stream-upload: %v: %s", err, out)
				}
				var rep StreamUpload
				if err := json.Unmarshal(out, &rep); err != nil || rep.Status != StatusSucceeded {
					b.Fatalf("report %v: %s", err, out)
				}
				ratio = float64(rep.CompressedBytes) / float64(rep.RawBytes)
				cpu += cpuTime(cmd)
			}
			b.ReportMetric(ratio, "ratio")
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}

// cpuTime is the user and system time of a finished command and of the
// descendants it waited for (every stage of a shell pipeline), independent
// of how busy the machine was.
func cpuTime(cmd *exec.Cmd) time.Duration {
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}
