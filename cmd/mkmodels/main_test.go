package main

import "testing"

// TestHelpExitsZero: -h prints the usage and succeeds; a missing --dir does not.
func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}} {
		if err := run(t.Context(), args); err != nil {
			t.Errorf("run(%v) = %v, want success", args, err)
		}
	}
	if err := run(t.Context(), nil); err == nil {
		t.Error("run without --dir succeeded")
	}
}
