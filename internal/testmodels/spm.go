package testmodels

import (
	"encoding/binary"
	"math"
)

// The text encoder's tokenizer travels inside its file as the spiece_model
// tensor: the bytes of a sentencepiece ModelProto. spmModel builds a tiny one
// by hand (a BPE model over printable ASCII plus a few merges) with the ids
// ComfyUI's UMT5 tokenizer expects: pad 0 and eos 1 (its special tokens
// {"end": 1, "pad": 0}), unk 2, no bos. Encoding "" then yields [1].
//
// Field numbers are those of sentencepiece_model.proto.

// spm piece types (ModelProto.SentencePiece.Type).
const (
	spmNormal  = 1
	spmUnknown = 2
	spmControl = 3
)

type spmPiece struct {
	piece string
	score float32
	typ   int
}

// spmPieces returns the vocabulary in id order.
func spmPieces() []spmPiece {
	ps := []spmPiece{{"<pad>", 0, spmControl}, {"</s>", 0, spmControl}, {"<unk>", 0, spmUnknown}}
	// Merges first (BPE applies the best-scoring merge first), each built
	// from two pieces of the vocabulary.
	merges := []string{"▁t", "he", "▁a", "in", "er", "an", "on", "at", "en", "▁the", "▁c", "▁s", "▁w", "or", "ing", "▁o"}
	for i, m := range merges {
		ps = append(ps, spmPiece{m, -float32(i), spmNormal})
	}
	chars := []string{"▁"}
	for c := byte(0x21); c <= 0x7E; c++ {
		chars = append(chars, string(c))
	}
	for i, c := range chars {
		ps = append(ps, spmPiece{c, -float32(len(merges) + i), spmNormal})
	}
	return ps
}

// spmVocabSize is the number of ids the tokenizer can produce.
func spmVocabSize() int { return len(spmPieces()) }

// spmModel returns the serialized ModelProto.
func spmModel() []byte {
	var m []byte
	for _, p := range spmPieces() {
		var sp []byte
		sp = pbBytes(sp, 1, []byte(p.piece))
		sp = pbFixed32(sp, 2, math.Float32bits(p.score))
		sp = pbVarint(sp, 3, uint64(p.typ))
		m = pbBytes(m, 1, sp)
	}
	var ts []byte           // TrainerSpec
	ts = pbVarint(ts, 3, 2) // model_type BPE
	ts = pbVarint(ts, 4, uint64(spmVocabSize()))
	ts = pbVarint(ts, 40, 2)          // unk_id
	ts = pbVarint(ts, 41, ^uint64(0)) // bos_id -1 (none): an int32 is sign-extended to 64 bits
	ts = pbVarint(ts, 42, 1)          // eos_id
	ts = pbVarint(ts, 43, 0)          // pad_id
	ts = pbBytes(ts, 45, []byte("<unk>"))
	ts = pbBytes(ts, 47, []byte("</s>"))
	ts = pbBytes(ts, 48, []byte("<pad>"))
	m = pbBytes(m, 2, ts)
	var ns []byte // NormalizerSpec: identity (no character map)
	ns = pbBytes(ns, 1, []byte("identity"))
	ns = pbVarint(ns, 3, 1) // add_dummy_prefix
	ns = pbVarint(ns, 4, 1) // remove_extra_whitespaces
	ns = pbVarint(ns, 5, 1) // escape_whitespaces
	return pbBytes(m, 3, ns)
}

// Protocol buffer wire format: tag = field<<3 | wire type.

func pbVarint(b []byte, field int, v uint64) []byte {
	b = binary.AppendUvarint(b, uint64(field)<<3|0)
	return binary.AppendUvarint(b, v)
}

func pbFixed32(b []byte, field int, v uint32) []byte {
	b = binary.AppendUvarint(b, uint64(field)<<3|5)
	return binary.LittleEndian.AppendUint32(b, v)
}

func pbBytes(b []byte, field int, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(field)<<3|2)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}
