package worker

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestResultJSON(t *testing.T) {
	for _, r := range []*Result{
		{Filename: "a.mp4", PromptID: "p", FilesCount: 1, MimeType: "video/mp4", Width: 832, Seed: 1 << 60},
		{Video: strings.Repeat("QUJD", 1000) + "RA==", Filename: "b.mp4", PromptID: "p", FilesCount: 1,
			LastFrame: "iVBORw0KGgo=", Timings: Timings{Total: 12}},
	} {
		got, err := r.JSON()
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var g, w map[string]any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, got)
		}
		if err := json.Unmarshal(want, &w); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("JSON() = %s\nwant the same fields as %s", got, want)
		}
		if r.Video != "" && cap(got) != len(got) {
			t.Errorf("allocated %d for %d bytes", cap(got), len(got))
		}
	}
}
