package deliver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
	"github.com/wan22-worker/wan22-worker/internal/job"
	"github.com/wan22-worker/wan22-worker/internal/mp4/mp4test"
)

func TestResolveBucket(t *testing.T) {
	tests := []struct {
		url, name, region            string
		endpoint, bucket, wantRegion string
		wantErr                      bool
	}{
		// RunPod's documented form: the bucket as the virtual-host subdomain.
		{"https://mybucket.s3.eu-west-2.amazonaws.com", "", "us-east-1", "https://s3.eu-west-2.amazonaws.com", "mybucket", "eu-west-2", false},
		{"https://mybucket.s3.amazonaws.com", "", "us-east-1", "https://s3.amazonaws.com", "mybucket", "us-east-1", false},
		{"https://mybucket.s3-us-west-1.amazonaws.com/", "", "", "https://s3-us-west-1.amazonaws.com", "mybucket", "us-west-1", false},
		{"https://clips.nyc3.digitaloceanspaces.com", "", "us-east-1", "https://nyc3.digitaloceanspaces.com", "clips", "nyc3", false},
		{"https://videos.s3.us-west-004.backblazeb2.com", "", "us-east-1", "https://s3.us-west-004.backblazeb2.com", "videos", "us-west-004", false},
		// The bucket as the first path segment.
		{"http://127.0.0.1:9000/mybucket", "", "us-east-1", "http://127.0.0.1:9000", "mybucket", "us-east-1", false},
		{"https://minio.example.com/mybucket/", "", "us-east-1", "https://minio.example.com", "mybucket", "us-east-1", false},
		{"https://abc123.r2.cloudflarestorage.com/bucket", "", "auto", "https://abc123.r2.cloudflarestorage.com", "bucket", "auto", false},
		// No bucket in the URL: BUCKET_NAME names it; hosts that merely look like one are left alone.
		{"https://s3.eu-central-1.amazonaws.com", "b1", "us-east-1", "https://s3.eu-central-1.amazonaws.com", "b1", "eu-central-1", false},
		{"https://minio.example.com", "", "us-east-1", "https://minio.example.com", "", "us-east-1", false},
		{"https://abc123.r2.cloudflarestorage.com", "b", "auto", "https://abc123.r2.cloudflarestorage.com", "b", "auto", false},
		// BUCKET_NAME overrides the bucket the URL names.
		{"https://mybucket.s3.eu-west-2.amazonaws.com", "mybucket", "us-east-1", "https://s3.eu-west-2.amazonaws.com", "mybucket", "eu-west-2", false},
		{"https://other.s3.eu-west-2.amazonaws.com", "mine", "us-east-1", "https://other.s3.eu-west-2.amazonaws.com", "mine", "eu-west-2", false},
		{"http://127.0.0.1:9000/mybucket", "mybucket", "", "http://127.0.0.1:9000", "mybucket", "us-east-1", false},
		// An explicit region wins over the URL's.
		{"https://b.s3.eu-west-2.amazonaws.com", "", "eu-west-1", "https://s3.eu-west-2.amazonaws.com", "b", "eu-west-1", false},
		// Errors.
		{"ftp://host/bucket", "", "", "", "", "", true},
		{"host-without-scheme/bucket", "", "", "", "", "", true},
		{"https://host/a/b", "", "", "", "", "", true},
		{"https://user:pw@host/b", "", "", "", "", "", true},
		{"https://host/b?x=1", "", "", "", "", "", true},
	}
	for _, tt := range tests {
		ep, b, r, err := resolveBucket(tt.url, tt.name, tt.region)
		if tt.wantErr {
			if err == nil {
				t.Errorf("resolveBucket(%q): no error, got %q %q", tt.url, ep, b)
			}
			continue
		}
		if err != nil || ep != tt.endpoint || b != tt.bucket || r != tt.wantRegion {
			t.Errorf("resolveBucket(%q, %q, %q) = %q, %q, %q, %v; want %q, %q, %q",
				tt.url, tt.name, tt.region, ep, b, r, err, tt.endpoint, tt.bucket, tt.wantRegion)
		}
	}
}

func TestPublicURL(t *testing.T) {
	tg := newS3Target(S3Options{Endpoint: "http://127.0.0.1:1/b", AccessKey: "a", SecretKey: "s", Prefix: "/out/",
		PublicURL: "https://cdn.example.com/videos/"})
	if tg.err != nil {
		t.Fatal(tg.err)
	}
	key := tg.objectKey("job 1", "clip.mp4")
	if key != "out/job_1/clip.mp4" {
		t.Errorf("key %q", key)
	}
	u, err := tg.url(t.Context(), key)
	if err != nil || u != "https://cdn.example.com/videos/out/job_1/clip.mp4" {
		t.Errorf("url %q, %v", u, err)
	}
	if k := (&s3Target{}).objectKey("j", "v.mp4"); k != "j/v.mp4" {
		t.Errorf("key without prefix %q", k)
	}
}

// TestS3ServerDown: nothing listens on the port. The upload must fail
// UPLOAD_FAILED by itself (bounded retries), well before the job's own
// deadline would turn it into TIMEOUT.
func TestS3ServerDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	d := newDeliverer(t, Options{S3: S3Options{Endpoint: "http://" + addr + "/bucket", AccessKey: "a", SecretKey: "s",
		Timeout: 20 * time.Second}})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	_, err = d.Deliver(ctx, Request{JobID: "j", Filename: "v.mp4", Mode: job.OutputS3, Video: strings.NewReader("data"), Size: 4})
	e := wantCode(t, err, apperr.UploadFailed)
	if !strings.Contains(e.Hint, "reachable") {
		t.Errorf("hint %q", e.Hint)
	}
}

// --- against a real S3-compatible server -------------------------------------

// s3Env is the test server from scripts/s3-test-server.sh.
type s3Env struct {
	endpoint, access, secret, region string
	bucket                           string
}

func needS3(t testing.TB) s3Env {
	t.Helper()
	e := s3Env{
		endpoint: os.Getenv("WAN22_TEST_S3_ENDPOINT"),
		access:   os.Getenv("WAN22_TEST_S3_ACCESS_KEY"),
		secret:   os.Getenv("WAN22_TEST_S3_SECRET_KEY"),
		region:   os.Getenv("WAN22_TEST_S3_REGION"),
	}
	if e.endpoint == "" {
		t.Skip("WAN22_TEST_S3_ENDPOINT not set: start the test server with eval \"$(scripts/s3-test-server.sh start)\"")
	}
	if e.region == "" {
		e.region = "us-east-1"
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	e.bucket = "wan22-test-" + hex.EncodeToString(rnd[:])
	c := e.client()
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(e.bucket)}); err != nil {
		t.Fatalf("create bucket %s at %s: %v", e.bucket, e.endpoint, err)
	}
	t.Cleanup(func() {
		out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(e.bucket)})
		if err == nil {
			for _, o := range out.Contents {
				_, _ = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(e.bucket), Key: o.Key})
			}
		}
		_, _ = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(e.bucket)})
	})
	return e
}

func (e s3Env) client() *s3.Client {
	tg := newS3Target(e.options())
	return tg.client
}

// options names the bucket the RunPod way: as the URL's first path segment.
func (e s3Env) options() S3Options {
	return S3Options{Endpoint: e.endpoint + "/" + e.bucket, AccessKey: e.access, SecretKey: e.secret,
		Region: e.region, PathStyle: true, Prefix: "wan22", URLExpiry: time.Hour}
}

func httpGet(t *testing.T, url string) ([]byte, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	return body, resp.Header
}

func TestS3Upload(t *testing.T) {
	env := needS3(t)
	v := makeVideo(t, mp4test.Spec{Width: 160, Height: 96, Frames: 17, FPS: "16", FastStart: true})
	tmp := t.TempDir()
	d := newDeliverer(t, Options{InlineMaxBytes: 1 << 30, TempDir: tmp, S3: env.options()})
	for _, mode := range []job.Output{job.OutputAuto, job.OutputS3} {
		t.Run(string(mode), func(t *testing.T) {
			got, err := d.Deliver(t.Context(), Request{JobID: "job-" + string(mode), Filename: "wan2_2_00001.mp4", Mode: mode,
				Video: bytes.NewReader(v.data), Size: int64(len(v.data)), LastFrame: true})
			if err != nil {
				t.Fatal(err)
			}
			assertEmptyDir(t, tmp)
			if got.Mode != job.OutputS3 || len(got.Video) != 0 || got.Key != "wan22/job-"+string(mode)+"/wan2_2_00001.mp4" {
				t.Errorf("mode %q key %q inline %d bytes", got.Mode, got.Key, len(got.Video))
			}
			if !strings.Contains(got.URL, "X-Amz-Signature=") || !strings.Contains(got.URL, "X-Amz-Expires=3600") {
				t.Errorf("not a presigned URL with a 1h expiry: %s", got.URL)
			}
			body, hdr := httpGet(t, got.URL)
			if !bytes.Equal(body, v.data) {
				t.Error("fetched video differs from the delivered one")
			}
			if ct := hdr.Get("Content-Type"); ct != "video/mp4" {
				t.Errorf("Content-Type %q", ct)
			}
			if got.Info.Frames != 17 || got.SHA256 != sha(v.data) {
				t.Errorf("info %+v sha %s", got.Info, got.SHA256)
			}
			head, err := env.client().HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(env.bucket), Key: aws.String(got.Key)})
			if err != nil {
				t.Fatal(err)
			}
			if head.Metadata["sha256"] != sha(v.data) {
				t.Errorf("sha256 metadata %q, want %s", head.Metadata["sha256"], sha(v.data))
			}
			frame, fhdr := httpGet(t, got.LastFrameURL)
			if _, err := png.Decode(bytes.NewReader(frame)); err != nil {
				t.Errorf("last frame: %v", err)
			}
			if ct := fhdr.Get("Content-Type"); ct != "image/png" {
				t.Errorf("last frame Content-Type %q", ct)
			}
		})
	}
}

// TestS3Multipart uploads 12 MiB in 5 MiB parts: three parts, read from the
// spool file, and the object is byte-identical.
func TestS3Multipart(t *testing.T) {
	env := needS3(t)
	data := make([]byte, 12<<20)
	_, _ = rand.Read(data)
	o := env.options()
	o.PartSize = 5 << 20
	d := newDeliverer(t, Options{S3: o})
	got, err := d.Deliver(t.Context(), Request{JobID: "big", Filename: "big.mp4", Mode: job.OutputS3, Video: bytes.NewReader(data), Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	if got.ProbeErr == nil {
		t.Error("random bytes probed as an MP4")
	}
	body, hdr := httpGet(t, got.URL)
	if !bytes.Equal(body, data) {
		t.Fatal("fetched object differs")
	}
	// A multipart object's ETag is "<md5 of part md5s>-<part count>".
	if etag := strings.Trim(hdr.Get("ETag"), `"`); !strings.HasSuffix(etag, "-3") {
		t.Errorf("ETag %q: not a three-part upload", etag)
	}
	parts, err := env.client().ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(env.bucket)})
	if err == nil && len(parts.Uploads) != 0 {
		t.Errorf("%d multipart uploads left open", len(parts.Uploads))
	}
}

func TestS3Idempotent(t *testing.T) {
	env := needS3(t)
	d := newDeliverer(t, Options{S3: env.options()})
	var urls []string
	for _, content := range []string{"first version of the video", "second"} {
		got, err := d.Deliver(t.Context(), Request{JobID: "same-job", Filename: "v.mp4", Mode: job.OutputS3,
			Video: strings.NewReader(content), Size: int64(len(content))})
		if err != nil {
			t.Fatal(err)
		}
		urls = append(urls, got.Key)
		if body, _ := httpGet(t, got.URL); string(body) != content {
			t.Errorf("fetched %q, want %q", body, content)
		}
	}
	if urls[0] != urls[1] {
		t.Errorf("keys differ across re-deliveries: %q", urls)
	}
	out, err := env.client().ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(env.bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Contents) != 1 {
		t.Errorf("%d objects in the bucket, want 1", len(out.Contents))
	}
}

func TestS3Failures(t *testing.T) {
	env := needS3(t)
	tests := []struct {
		name   string
		mutate func(*S3Options)
		hint   string
	}{
		{"wrong secret", func(o *S3Options) { o.SecretKey = "wrong-secret" }, "BUCKET_SECRET_ACCESS_KEY"},
		{"unknown access key", func(o *S3Options) { o.AccessKey = "nobody" }, "BUCKET_ACCESS_KEY_ID"},
		{"missing bucket", func(o *S3Options) { o.Endpoint = env.endpoint + "/no-such-bucket-wan22" }, "create the bucket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := env.options()
			tt.mutate(&o)
			tmp := t.TempDir()
			d := newDeliverer(t, Options{TempDir: tmp, S3: o})
			_, err := d.Deliver(t.Context(), Request{JobID: "j", Filename: "v.mp4", Mode: job.OutputS3, Video: strings.NewReader("data"), Size: 4})
			e := wantCode(t, err, apperr.UploadFailed)
			if !strings.Contains(e.Hint, tt.hint) {
				t.Errorf("hint %q does not mention %q (message %q)", e.Hint, tt.hint, e.Message)
			}
			if strings.Contains(e.Message, o.SecretKey) {
				t.Error("the message shows the secret key")
			}
			assertEmptyDir(t, tmp)
			if err := d.Check(t.Context()); apperr.CodeOf(err) != apperr.UploadFailed {
				t.Errorf("Check: %v", err)
			}
		})
	}
	d := newDeliverer(t, Options{S3: env.options()})
	if err := d.Check(t.Context()); err != nil {
		t.Errorf("Check of the good bucket: %v", err)
	}
}
