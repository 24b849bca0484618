package worker

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestResultJSON(t *testing.T) {
	for _, r := range []*Result{
		{Filename: "a.mp4", PromptID: "p", FilesCount: 1, MimeType: "video/mp4", Width: 832, Seed: 1 << 60},
		{Video: Base64(strings.Repeat("QUJD", 1000) + "RA=="), Filename: "b.mp4", PromptID: "p", FilesCount: 1,
			LastFrame: "iVBORw0KGgo=", Timings: Timings{Total: 12}},
	} {
		parts, err := r.JSONParts()
		if err != nil {
			t.Fatal(err)
		}
		got := bytes.Join(parts, nil)
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
		if len(r.Video) > 0 && (len(parts) != 3 || &parts[1][0] != &r.Video[0]) {
			t.Errorf("the video was copied: %d parts", len(parts))
		}
	}
}
