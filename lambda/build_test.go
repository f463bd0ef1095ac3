package main

import (
	"archive/zip"
	"bytes"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// MaxArtifactBytes is the size goal of the zipped function.
const MaxArtifactBytes = 15 << 20

// TestBuildScript runs lambda/build.sh and checks the artifact as Lambda's
// provided.al2023 runtime on arm64 needs it: a zip holding one executable
// "bootstrap", a static linux/arm64 ELF, under the size goal.
func TestBuildScript(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles the function: skipped under -short")
	}
	out := filepath.Join(t.TempDir(), "responder-lambda.zip")
	cmd := exec.Command("bash", "build.sh", out)
	if log, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build.sh: %v\n%s", err, log)
	} else {
		t.Logf("%s", bytes.TrimSpace(log))
	}
	info, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size() > MaxArtifactBytes {
		t.Errorf("artifact is %d bytes, over the %d-byte goal", info.Size(), MaxArtifactBytes)
	}
	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	if len(zr.File) != 1 || zr.File[0].Name != "bootstrap" {
		t.Fatalf("zip holds %d files, first %q; want only bootstrap", len(zr.File), zr.File[0].Name)
	}
	f := zr.File[0]
	if mode := f.Mode(); mode.Perm()&0o111 == 0 || !mode.IsRegular() {
		t.Errorf("bootstrap mode %v, want an executable file", mode)
	}
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	exe, err := elf.NewFile(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("bootstrap is not an ELF executable: %v", err)
	}
	if exe.Machine != elf.EM_AARCH64 || exe.OSABI != elf.ELFOSABI_NONE && exe.OSABI != elf.ELFOSABI_LINUX {
		t.Errorf("bootstrap is for %v/%v, want linux arm64", exe.OSABI, exe.Machine)
	}
	for _, p := range exe.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("bootstrap is dynamically linked (CGO_ENABLED=0 expected)")
		}
	}
}
