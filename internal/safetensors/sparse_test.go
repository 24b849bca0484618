//go:build linux || darwin

package safetensors

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A file whose big tensors are zeros is written with holes: its apparent size
// is the full size, its allocated blocks are a small part of it, and the
// holes read as zeros.
func TestWriteFileSparse(t *testing.T) {
	const big = 256 << 20 // 256 MiB of zeros
	head := EncodeFloats(F16, []float32{1, 2, 3})
	tensors := []Tensor{
		{Name: "big", DType: F8E4M3, Shape: []int64{big}},
		{Name: "embed", DType: F16, Shape: []int64{1 << 20, 16}, Data: head},
		{Name: "norm", DType: F16, Shape: []int64{4}, Data: EncodeFloats(F16, []float32{1, 1, 1, 1})},
		// Dense data that happens to hold aligned zero blocks.
		{Name: "mixed", DType: U8, Shape: []int64{5 * 4096}, Fill: func(b []byte) { b[0], b[len(b)-1] = 1, 1 }},
	}
	path := filepath.Join(t.TempDir(), "sparse.safetensors")
	if err := WriteFile(path, tensors, nil); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	for i := range tensors {
		want += tensors[i].ByteSize()
	}
	if st.Size() < want {
		t.Fatalf("size %d < data size %d", st.Size(), want)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		t.Skip("no block count on this platform")
	}
	allocated := int64(sys.Blocks) * 512
	if allocated > st.Size()/100 {
		t.Errorf("allocated %d bytes for a %d-byte file: not sparse", allocated, st.Size())
	}
	t.Logf("apparent %d bytes, allocated %d", st.Size(), allocated)

	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := f.Tensor("embed")
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range got {
		if i < len(head) && b != head[i] || i >= len(head) && b != 0 {
			t.Fatalf("embed[%d] = %d", i, b)
		}
	}
	mixed, err := f.Tensor("mixed")
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range mixed {
		if w := byte(0); (i == 0 || i == len(mixed)-1) && b != 1 || i > 0 && i < len(mixed)-1 && b != w {
			t.Fatalf("mixed[%d] = %d", i, b)
		}
	}
}
