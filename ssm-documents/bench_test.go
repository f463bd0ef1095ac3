package ssmdocuments

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkStreamUpload measures the streaming upload path of the memory
// document (stream-upload.sh: read, SHA-256 of the raw stream, compress, cut
// into 64 MiB parts with their Content-MD5 (and the SHA-256 of the
// compressed stream in the "+cmphash" runs), PUT each to the loopback HTTPS
// receiver) on a memory-like stand-in, beside the yardsticks on the same
// file in the same run: openssl dgst -sha256 and zstd -1 alone (and
// sha256sum, gzip -1). MB/s is of raw input; "pct-of-bound" is the run's
// MB/s as a percentage of the slower of openssl and zstd measured just
// before it; the "<stage>-cpu-s/GiB" metrics split the CPU by stage
// (reportStages). Not run by plain go test (make bench-capture runs it on
// 1 GiB):
//
//	STREAM_BENCH_MIB=1024 go test ./ssm-documents -run '^$' -bench StreamUpload -benchtime 3x
//
// STREAM_BENCH_MIB sets the input size (default 256 MiB); STREAM_BENCH_SCRIPT
// runs another copy of stream-upload.sh (to compare with an older one).
func BenchmarkStreamUpload(b *testing.B) {
	size := 256 << 20
	if v, err := strconv.Atoi(os.Getenv("STREAM_BENCH_MIB")); err == nil && v > 0 {
		size = v << 20
	}
	script := "scripts/stream-upload.sh"
	if v := os.Getenv("STREAM_BENCH_SCRIPT"); v != "" {
		script = v
	}
	for _, tool := range []string{"curl", "zstd", "gzip", "sha256sum", "openssl"} {
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
	if err := os.WriteFile(list, PartURLList(r.partURLs(size/(5<<20)+1)), 0o600); err != nil {
		b.Fatal(err)
	}

	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("load average before: %s", load)
	}
	rate := map[string]float64{}         // MB/s of each yardstick in this run
	refCPU := map[string]time.Duration{} // and its CPU time per run
	reference := func(name string, args ...string) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(size))
			var cpu time.Duration
			start := time.Now()
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
			rate[name] = float64(size) * float64(b.N) / time.Since(start).Seconds() / 1e6
			refCPU[name] = cpu / time.Duration(b.N)
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
		})
	}
	reference("sha256sum", "sha256sum")
	reference("openssl-sha256", "openssl", "dgst", "-sha256")
	reference("gzip-1", "sh", "-c", "gzip -1 -c >/dev/null")
	reference("zstd-1", "sh", "-c", "zstd -1 -q -c >/dev/null")

	// "pipe" reads the stand-in through cat, as the document reads AVML's
	// output; "file" lets the first stage read the file itself. The runs
	// hash the compressed stream as the engine asks by default, that is not
	// (HashCompressed off: the image is read back where it lands); "+cmphash"
	// hashes it too, as with verify_image: false.
	for _, c := range []struct{ compression, hashtee, source string }{
		{"zstd", "python", "file"}, {"zstd", "python", "pipe"}, {"zstd", "python", "pipe+cmphash"}, {"zstd", "coreutils", "file"},
		{"gzip", "python", "file"}, {"gzip", "coreutils", "file"}, {"none", "python", "file"},
	} {
		compression := c.compression
		source := []string{"--source", src}
		if strings.HasPrefix(c.source, "pipe") {
			source = []string{"--", "cat", src}
		}
		hashCompressed := "SU_HASH_COMPRESSED=0"
		if strings.HasSuffix(c.source, "+cmphash") {
			hashCompressed = "SU_HASH_COMPRESSED=1"
		}
		b.Run("stream-upload-"+compression+"-"+c.hashtee+"-"+c.source, func(b *testing.B) {
			b.SetBytes(int64(size))
			env := append(os.Environ(), append(r.env(), "SU_HASHTEE="+c.hashtee, hashCompressed)...)
			var ratio float64
			var cpu time.Duration
			stages := map[string]time.Duration{}
			start := time.Now()
			for i := 0; i < b.N; i++ {
				stageDir := b.TempDir()
				cmd := exec.Command("bash", append([]string{script, "--part-size", strconv.Itoa(64 << 20),
					"--part-urls", list, "--compression", compression}, source...)...)
				cmd.Env = append(env, "SU_STAGE_CPU="+stageDir)
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
				if err := addStageCPU(stages, stageDir); err != nil {
					b.Fatal(err)
				}
			}
			mbs := float64(size) * float64(b.N) / time.Since(start).Seconds() / 1e6
			bound := min(rate["openssl-sha256"], rate["zstd-1"])
			if bound > 0 && compression == "zstd" {
				b.ReportMetric(100*mbs/bound, "pct-of-bound")
			}
			reportStages(b, stages, cpu, size, refCPU["openssl-sha256"])
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

// stageNames are the stages stream-upload.sh times with SU_STAGE_CPU: the
// source (cat, in "pipe" runs), the raw hashing tee, the compressor, the
// splitter (or the coreutils tee of the compressed stream) and every part's
// upload (curl and its shell) together.
var stageNames = []string{"source", "hashtee", "compress", "split", "upload"}

// addStageCPU adds the CPU time each stage wrote to dir (the output of
// bash's times: two lines of "user system", the shell's and its children's).
func addStageCPU(stages map[string]time.Duration, dir string) error {
	for _, name := range stageNames {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if os.IsNotExist(err) {
			continue
		} else if err != nil {
			return err
		}
		for _, f := range strings.Fields(string(b)) {
			m, s, ok := strings.Cut(strings.TrimSuffix(f, "s"), "m")
			mins, err1 := strconv.ParseFloat(m, 64)
			secs, err2 := strconv.ParseFloat(s, 64)
			if !ok || err1 != nil || err2 != nil {
				return fmt.Errorf("stage %s: cannot read %q", name, f)
			}
			stages[name] += time.Duration((mins*60 + secs) * float64(time.Second))
		}
	}
	return nil
}

// reportStages reports each stage's CPU-s per GiB of raw input, the rest
// (the script's own shell: reading the splitter's lines, starting the
// uploads) and a model, not a measurement: with a core for every busy stage,
// the stages overlap and the slowest sets the pace, taking its CPU time
// ("model-pct-of-openssl": openssl dgst -sha256's CPU time in the same run,
// which is its wall time on an idle core, over the slowest stage's; CPU
// times, so that the figure holds on a loaded machine). The model counts a
// multi-threaded stage's CPU (zstd's I/O thread) as if it ran on one core,
// so it errs slow, and leaves out the source. On a machine with fewer cores
// than busy stages (2 here), the sum bounds the wall time instead.
func reportStages(b *testing.B, stages map[string]time.Duration, total time.Duration, size int, openssl time.Duration) {
	gib := float64(size) / (1 << 30) * float64(b.N)
	var sum, slowest time.Duration
	for _, name := range stageNames {
		d, ok := stages[name]
		if !ok {
			continue
		}
		sum += d
		b.ReportMetric(d.Seconds()/gib, name+"-cpu-s/GiB")
		if name != "source" {
			slowest = max(slowest, d)
		}
	}
	b.ReportMetric((total-sum).Seconds()/gib, "shell-cpu-s/GiB")
	if slowest > 0 && openssl > 0 {
		b.ReportMetric(100*openssl.Seconds()*float64(b.N)/slowest.Seconds(), "model-pct-of-openssl")
	}
}
