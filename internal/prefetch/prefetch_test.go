package prefetch

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func TestWarm(t *testing.T) {
	dir := t.TempDir()
	dense := filepath.Join(dir, "dense")
	data := make([]byte, 3*blockSize+12345)
	for i := range data {
		data[i] = byte(i)
	}
	if err := os.WriteFile(dense, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// A sparse file: 6.7 GB apparent like the e2e tier's text encoder, two small data regions.
	sparse := filepath.Join(dir, "sparse")
	f, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 3 << 30} {
		if _, err := f.WriteAt(make([]byte, 100_000), off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(6_700_000_000); err != nil {
		t.Fatal(err)
	}
	f.Close()

	st := Warm(t.Context(), []string{dense, sparse}, 2)
	if st.Err != nil || st.Files != 2 {
		t.Fatalf("Warm: %+v", st)
	}
	// The dense file whole; of the sparse one only its data regions (block-rounded), not 6.7 GB.
	if extra := st.Bytes - int64(len(data)); extra < 200_000 || extra > 1<<20 {
		t.Errorf("read %d bytes: the sparse file's share is %d, want its ~200 kB of data", st.Bytes, extra)
	}

	st = Warm(t.Context(), []string{filepath.Join(dir, "absent"), dense}, 1)
	if st.Err == nil || st.Files != 1 || st.Bytes != int64(len(data)) {
		t.Errorf("a missing file: %+v", st)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if st := Warm(ctx, []string{dense}, 1); st.Err == nil {
		t.Errorf("cancelled: %+v", st)
	}
}

func TestBudget(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for i, n := range []int{100, 300, 50, 200} {
		p := filepath.Join(dir, strconv.Itoa(i))
		if err := os.WriteFile(p, make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	got := Budget(append(files, filepath.Join(dir, "absent")), 450)
	if len(got) != 3 || got[0] != files[0] || got[1] != files[1] || got[2] != files[2] {
		t.Errorf("Budget = %v", got)
	}
	if len(Budget(files, 0)) != 4 {
		t.Error("no limit dropped files")
	}
	if MemAvailable() <= 0 {
		t.Error("MemAvailable unknown on Linux")
	}
}

// evict drops a file's pages from the page cache (posix_fadvise DONTNEED after fsync), so that the next
// read comes from the disk.
func evict(t *testing.T, name string) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	const fadvDontNeed = 4
	if _, _, e := syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, fadvDontNeed, 0, 0); e != 0 {
		t.Fatal(e)
	}
}

func timeRead(t *testing.T, name string) time.Duration {
	t.Helper()
	t0 := time.Now()
	if st := Warm(t.Context(), []string{name}, 1); st.Err != nil {
		t.Fatal(st.Err)
	}
	return time.Since(t0)
}

// TestMeasureOverlap is the measurement behind the prefetch default (docs/deployment.md, "Cold start"); it
// runs only when WAN22_PREFETCH_MEASURE names a folder on the disk to measure (a fresh file of
// WAN22_PREFETCH_MB megabytes, default 2048, is written there) and WAN22_PREFETCH_PYTHON a Python with
// ComfyUI's packages (its imports stand for ComfyUI's start). It prints: the cold read, the import alone,
// and the import with the prefetch running beside it, followed at once by the read (which then finds the
// file in the page cache, or joins what is left of the prefetch).
func TestMeasureOverlap(t *testing.T) {
	dir, py := os.Getenv("WAN22_PREFETCH_MEASURE"), os.Getenv("WAN22_PREFETCH_PYTHON")
	if dir == "" || py == "" {
		t.Skip("set WAN22_PREFETCH_MEASURE=<folder> and WAN22_PREFETCH_PYTHON=<python> to measure")
	}
	mb := 2048
	if v := os.Getenv("WAN22_PREFETCH_MB"); v != "" {
		mb, _ = strconv.Atoi(v)
	}
	name := filepath.Join(dir, "wan22-prefetch-measure.bin")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(name) })
	buf := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	for range mb {
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	importCmd := func() time.Duration {
		t0 := time.Now()
		out, err := exec.Command(py, "-c", "import torch, torchvision, transformers, safetensors, scipy, av, aiohttp, yaml, PIL, kornia, spandrel").CombinedOutput()
		if err != nil {
			t.Fatalf("import: %v\n%s", err, out)
		}
		return time.Since(t0)
	}
	importCmd() // once, so that Python's own files are cached in every variant

	for round := 1; round <= 2; round++ {
		evict(t, name)
		cold := timeRead(t, name)
		evict(t, name)
		imp := importCmd()
		evict(t, name)
		done := make(chan Stats, 1)
		go func() { done <- Warm(t.Context(), []string{name}, 2) }()
		impBeside := importCmd()
		after := timeRead(t, name) // the loader starts when the import ends, beside what is left of the prefetch
		st := <-done
		rate := float64(mb) / cold.Seconds()
		t.Logf("round %d, %d MB fresh file: cold read %.2f s (%.0f MB/s); import alone %.2f s; "+
			"without prefetch: import + cold read = %.2f s; with prefetch beside the import: import %.2f s, prefetch %.2f s, read after %.2f s, total %.2f s",
			round, mb, cold.Seconds(), rate, imp.Seconds(), (imp + cold).Seconds(), impBeside.Seconds(), st.Took.Seconds(), after.Seconds(),
			(impBeside + after).Seconds())
	}
}
