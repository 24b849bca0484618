// Package textdist measures how far apart two short strings are, for the
// "did you mean" hints of typed errors (an unknown job key, a model file
// that is not on the server).
package textdist

// Distance is the optimal string alignment distance of a and b, in bytes:
// insertions, deletions, substitutions and transpositions of neighbours cost
// 1 each. Inputs longer than maxLen bytes are cut first, so that the work
// stays bounded whatever the input (maxLen <= 0 means no cut).
func Distance(a, b string, maxLen int) int {
	if maxLen > 0 {
		if len(a) > maxLen {
			a = a[:maxLen]
		}
		if len(b) > maxLen {
			b = b[:maxLen]
		}
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
