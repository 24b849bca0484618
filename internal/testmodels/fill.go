package testmodels

import (
	"hash/fnv"
	"math"
	"math/rand/v2"

	"github.com/wan22-worker/wan22-worker/internal/safetensors"
)

// rng returns a generator seeded from a fixture seed and a tensor name, so
// that every tensor's values depend only on the two: adding or removing a
// tensor never changes another one.
func rng(seed uint64, name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

// normals returns n values drawn from N(0, std²).
func normals(seed uint64, name string, n int64, std float64) []float32 {
	r := rng(seed, name)
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(r.NormFloat64() * std)
	}
	return out
}

// fillNormal returns a Fill function writing N(0, std²) values of type dt.
func fillNormal(seed uint64, name string, dt safetensors.DType, std float64) func([]byte) {
	return func(dst []byte) {
		r := rng(seed, name)
		size := dt.Size()
		for i := 0; i+size <= len(dst); i += size {
			safetensors.PutFloat(dt, dst[i:i+size], float32(r.NormFloat64()*std))
		}
	}
}

// constant returns n copies of v encoded as dt.
func constant(dt safetensors.DType, n int64, v float32) []byte {
	size := int64(dt.Size())
	out := make([]byte, n*size)
	for i := int64(0); i < n; i++ {
		safetensors.PutFloat(dt, out[i*size:], v)
	}
	return out
}

// scalar is a 0-dimensional F32 tensor.
func scalar(name string, v float32) safetensors.Tensor {
	return safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: []int64{},
		Data: safetensors.EncodeFloats(safetensors.F32, []float32{v})}
}

// quantizeFP8 stores vals as float8_e4m3fn scaled so that the largest
// magnitude maps to 448, as Comfy-Org's *_fp8_scaled files do: the returned
// scale is what the loader multiplies the weight by.
func quantizeFP8(vals []float32) (data []byte, scale float32) {
	var m float64
	for _, v := range vals {
		m = math.Max(m, math.Abs(float64(v)))
	}
	scale = 1
	if m > 0 {
		scale = float32(m / 448)
	}
	data = make([]byte, len(vals))
	for i, v := range vals {
		safetensors.PutFloat(safetensors.F8E4M3, data[i:], v/scale)
	}
	return data, scale
}
