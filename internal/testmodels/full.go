package testmodels

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/wan22-worker/wan22-worker/internal/safetensors"
)

// Full-size random weights, for measuring the production graph on a GPU:
// about 35 GB that must be written in a minute or two, so the big tensors are
// filled by table lookup, one random byte per element, in parallel chunks,
// and never held in memory beyond one tensor.

// normalTable returns, for every byte value i, the (i+0.5)/256 quantile of
// N(0, 1) encoded by enc: a uniformly random byte then indexes an
// approximately normal value (std ≈ 0.99, |v| ≤ 2.9).
func normalTable(dt safetensors.DType) *[256][]byte {
	var t [256][]byte
	for i := range t {
		p := (float64(i) + 0.5) / 256
		t[i] = make([]byte, dt.Size())
		safetensors.PutFloat(dt, t[i], float32(math.Sqrt2*math.Erfinv(2*p-1)))
	}
	return &t
}

// fillChunk is the unit of parallel generation; each chunk has its own
// random stream, so the result does not depend on the number of CPUs.
const fillChunk = 4 << 20

// fillTable returns a Fill function that writes table[random byte] for every
// element of a tensor named name.
func fillTable(seed uint64, name string, table *[256][]byte) func([]byte) {
	return func(dst []byte) {
		size := len(table[0])
		h := fnv.New64a()
		h.Write([]byte(name))
		stream := h.Sum64()
		chunks := (len(dst) + fillChunk - 1) / fillChunk
		work := make(chan int)
		var wg sync.WaitGroup
		for range min(runtime.GOMAXPROCS(0), chunks) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for c := range work {
					r := rand.New(rand.NewPCG(seed+uint64(c)<<32, stream))
					part := dst[c*fillChunk : min(len(dst), (c+1)*fillChunk)]
					for i := 0; i+8*size <= len(part); {
						bits := r.Uint64()
						for k := 0; k < 8; k++ {
							copy(part[i:], table[byte(bits>>(8*k))])
							i += size
						}
					}
					// The tail that is not a multiple of 8 elements.
					for i := len(part) / (8 * size) * 8 * size; i+size <= len(part); i += size {
						copy(part[i:], table[byte(r.Uint64())])
					}
				}
			}()
		}
		for c := range chunks {
			work <- c
		}
		close(work)
		wg.Wait()
	}
}

// fp8Linear returns a Linear layer's weight in float8_e4m3fn, N(0, 1) codes,
// and its scale_weight 1/√in, so that the weight ComfyUI computes
// (weight × scale_weight) is N(0, 1/fan_in) and activations keep their scale
// through any number of layers.
func fp8Linear(seed uint64, name string, out, in int64) []safetensors.Tensor {
	return []safetensors.Tensor{
		{Name: name + ".weight", DType: safetensors.F8E4M3, Shape: []int64{out, in}, Fill: fillTable(seed, name+".weight", normalTable(safetensors.F8E4M3))},
		scalar(name+".scale_weight", float32(1/math.Sqrt(float64(in)))),
	}
}
