package fakeaws

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/responder-ir/responder/responder/cloud"
)

// The fake instance's S3: an HTTPS endpoint on the loopback interface that
// answers the requests the documents' scripts make with curl through
// presigned URLs (the job's .curlrc sends every connection there, see
// agent_run.go), served by the fake S3 of the account that has the bucket.
// The S3 semantics are the fake's own (GetObject, PutObject, uploadPart:
// Object Lock, Content-MD5, Fail, Deny); this file adds what a presigned
// request adds:
//
//   - a PUT into an Object Lock bucket needs Content-MD5 (or a checksum
//     header), which the SDK always sends and a script must send itself;
//   - path-style (https://host/bucket/key) and virtual-hosted
//     (https://bucket.s3.<region>.amazonaws.com/key) URLs; partNumber and
//     uploadId make a PUT an UploadPart;
//   - the signature's scope: X-Amz-Credential must name the bucket's Region
//     (AuthorizationQueryParametersError), X-Amz-Expires is at most 7 days,
//     and a URL used after X-Amz-Date + X-Amz-Expires, by the serving
//     account's Clock, answers AccessDenied "Request has expired" (the SDK
//     signs with the real time, whatever the fake's Clock says);
//   - a URL signed for another operation (x-id), or with a signed header
//     the request does not carry, answers SignatureDoesNotMatch. The
//     signature itself is not checked.
//
// The agent faults that happen on the wire are injected here (see the Fault
// constants): upload-part-2, short, no-report and lie-hash.
//
// An instance that cannot reach S3 (CanReach) gets an endpoint that closes
// every connection at once: curl reports no HTTP status (000). On AWS the
// security group drops the packets and curl times out; the fake does not
// make the test wait for that.

// endpoint is the S3 endpoint of one job.
type endpoint struct {
	s3s   []*S3 // the instance's account's first, then those of AgentS3
	fault string
	ln    net.Listener
	srv   *http.Server // nil when S3 is unreachable
}

// startEndpoint listens on a loopback port and serves the job's requests,
// or refuses them all when S3 is not reachable.
func startEndpoint(ca *agentCA, s3s []*S3, fault string, reachable bool) (*endpoint, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fakeaws: the instance's S3 endpoint: %w", err)
	}
	e := &endpoint{s3s: s3s, fault: fault, ln: ln}
	if !reachable {
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				conn.Close()
			}
		}()
		return e, nil
	}
	e.srv = &http.Server{Handler: e, ErrorLog: log.New(io.Discard, "", 0), ReadHeaderTimeout: time.Minute}
	go func() { _ = e.srv.Serve(tls.NewListener(ln, ca.serverConfig())) }()
	return e, nil
}

// addr is the endpoint's host:port.
func (e *endpoint) addr() string { return e.ln.Addr().String() }

func (e *endpoint) close() {
	if e.srv != nil {
		_ = e.srv.Close()
	}
	_ = e.ln.Close()
}

// virtualHost matches virtual-hosted S3 hosts: bucket.s3.amazonaws.com,
// bucket.s3.<region>.amazonaws.com, bucket.s3-<region>.amazonaws.com.
var virtualHost = regexp.MustCompile(`^(.+)\.s3([.-][a-z0-9-]+)?\.amazonaws\.com$`)

// splitS3URL returns the bucket and key a request addresses.
func splitS3URL(host, path string) (bucket, key string) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	path = strings.TrimPrefix(path, "/")
	if m := virtualHost.FindStringSubmatch(host); m != nil {
		return m[1], path
	}
	bucket, key, _ = strings.Cut(path, "/")
	return bucket, key
}

// s3Answer is what the endpoint answers one request.
type s3Answer struct {
	status          int
	etag, versionID string
	body            []byte
	code, message   string // the error, when status is not 200
}

func answerError(code, message string) s3Answer {
	return s3Answer{status: httpStatusCode(code), code: code, message: message}
}

// answerErr answers an error of the fake S3.
func answerErr(err error) s3Answer {
	msg := err.Error()
	var api smithy.APIError
	if errors.As(err, &api) {
		msg = api.ErrorMessage()
	}
	return answerError(cloud.ErrorCode(err), msg)
}

// httpStatusCode returns the status S3 answers an error code with.
func httpStatusCode(code string) int {
	if s, ok := httpStatus[code]; ok {
		return s
	}
	switch code {
	case "SignatureDoesNotMatch", "AccessDenied", "InvalidAccessKeyId", "RequestTimeTooSkewed":
		return http.StatusForbidden
	case "MethodNotAllowed":
		return http.StatusMethodNotAllowed
	}
	return http.StatusBadRequest
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a := e.answer(r)
	if a.etag != "" {
		w.Header().Set("ETag", a.etag)
	}
	if a.versionID != "" {
		w.Header().Set("x-amz-version-id", a.versionID)
	}
	if a.status != http.StatusOK {
		a.body, _ = xml.Marshal(struct {
			XMLName xml.Name `xml:"Error"`
			Code    string
			Message string
		}{Code: a.code, Message: a.message})
		w.Header().Set("Content-Type", "application/xml")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(a.body)))
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

// answer serves one presigned request.
func (e *endpoint) answer(r *http.Request) s3Answer {
	bucket, key := splitS3URL(r.Host, r.URL.Path)
	if bucket == "" || key == "" {
		return answerError("InvalidRequest", "A presigned URL names a bucket and a key.")
	}
	q := r.URL.Query()
	var op string
	switch r.Method {
	case http.MethodGet:
		op = "GetObject"
	case http.MethodPut:
		op = "PutObject"
		if q.Has("partNumber") || q.Has("uploadId") {
			op = "UploadPart"
		}
	default:
		return answerError("MethodNotAllowed", "The specified method is not allowed against this resource.")
	}
	srv := e.serverFor(bucket)
	if srv == nil {
		return answerError("NoSuchBucket", "The specified bucket does not exist")
	}
	if code, msg := checkPresigned(srv.c, q, op, r); code != "" {
		return answerError(code, msg)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPartSize+1))
	if err != nil {
		return answerError("IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header.")
	}
	ctx := context.Background() // the instance's request: not in the caller's call log
	contentMD5 := r.Header.Get("Content-MD5")
	switch op {
	case "GetObject":
		out, err := srv.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			return answerErr(err)
		}
		b, _ := io.ReadAll(out.Body)
		return s3Answer{status: http.StatusOK, body: b, etag: aws.ToString(out.ETag), versionID: aws.ToString(out.VersionId)}
	case "PutObject":
		if isReport(body) {
			switch e.fault {
			case FaultNoReport:
				return s3Answer{status: http.StatusOK, etag: md5ETag(body)} // acknowledged, never stored
			case FaultLieHash:
				if lie, err := lieAboutDigests(body); err == nil {
					// The stored report must pass S3's Content-MD5 check.
					body, contentMD5 = lie, md5Base64(lie)
				}
			}
		}
		if contentMD5 == "" && !hasChecksum(r.Header) && srv.objectLock(bucket) {
			// The SDK always sends a checksum; a presigned request must
			// carry one itself.
			return answerError("InvalidRequest", "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters")
		}
		in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body),
			ContentLength: aws.Int64(int64(len(body)))}
		if contentMD5 != "" {
			in.ContentMD5 = aws.String(contentMD5)
		}
		if ct := r.Header.Get("Content-Type"); ct != "" {
			in.ContentType = aws.String(ct)
		}
		out, err := srv.PutObject(ctx, in)
		if err != nil {
			return answerErr(err)
		}
		return s3Answer{status: http.StatusOK, etag: aws.ToString(out.ETag), versionID: aws.ToString(out.VersionId)}
	default: // UploadPart
		n, err := strconv.Atoi(q.Get("partNumber"))
		if err != nil {
			return answerError("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
		}
		switch {
		case e.fault == FaultUploadPart2 && n == 2:
			return answerError("InternalError", "We encountered an internal error. Please try again.")
		case e.fault == FaultShort && len(body) < minPartSize:
			// Only the last part may be under 5 MiB: it is acknowledged
			// as if stored.
			return s3Answer{status: http.StatusOK, etag: md5ETag(body)}
		}
		etag, err := srv.uploadPart(bucket, key, q.Get("uploadId"), int32(n), body, contentMD5)
		if err != nil {
			return answerErr(err)
		}
		return s3Answer{status: http.StatusOK, etag: etag}
	}
}

// serverFor returns the S3 that has the bucket.
func (e *endpoint) serverFor(bucket string) *S3 {
	for _, s := range e.s3s {
		s.c.mu.Lock()
		_, ok := s.c.st.Buckets[bucket]
		s.c.mu.Unlock()
		if ok {
			return s
		}
	}
	return nil
}

// objectLock reports whether a bucket of this S3 has Object Lock.
func (s *S3) objectLock(bucket string) bool {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	b, ok := s.c.st.Buckets[bucket]
	return ok && b.ObjectLock
}

// hasChecksum reports whether a request carries an x-amz-checksum-* header.
func hasChecksum(h http.Header) bool {
	for name := range h {
		if strings.HasPrefix(strings.ToLower(name), "x-amz-checksum-") {
			return true
		}
	}
	return false
}

// checkPresigned checks a presigned request against the serving account and
// returns the error S3 answers, or "".
func checkPresigned(c *Cloud, q map[string][]string, op string, r *http.Request) (code, message string) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	const badQuery = "AuthorizationQueryParametersError"
	auth := []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"}
	present := 0
	for _, k := range auth {
		if get(k) != "" {
			present++
		}
	}
	switch {
	case present == 0:
		return "AccessDenied", "Access Denied" // an anonymous request
	case present < len(auth) || get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
		return badQuery, "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
	}
	// <access key>/<yyyymmdd>/<region>/s3/aws4_request
	scope := strings.Split(get("X-Amz-Credential"), "/")
	if len(scope) != 5 || scope[3] != "s3" || scope[4] != "aws4_request" {
		return badQuery, "Error parsing the X-Amz-Credential parameter."
	}
	c.mu.Lock()
	region := c.Region
	c.mu.Unlock()
	if scope[2] != region {
		return badQuery, fmt.Sprintf("Error parsing the X-Amz-Credential parameter; the region '%s' is wrong; expecting '%s'", scope[2], region)
	}
	expires, err := strconv.Atoi(get("X-Amz-Expires"))
	if err != nil || expires < 1 || expires > 604800 {
		return badQuery, "X-Amz-Expires must be less than a week (in seconds) that is 604800"
	}
	signed, err := time.Parse("20060102T150405Z", get("X-Amz-Date"))
	if err != nil {
		return badQuery, "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\""
	}
	if c.now().After(signed.Add(time.Duration(expires) * time.Second)) {
		return "AccessDenied", "Request has expired"
	}
	if id := get("x-id"); id != "" && id != op {
		return "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided." // signed for another operation
	}
	for _, h := range strings.Split(get("X-Amz-SignedHeaders"), ";") {
		switch h = strings.ToLower(h); {
		case h == "host":
		case h == "content-length" && r.ContentLength >= 0:
		case r.Header.Get(h) == "":
			return "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided." // a signed header the request lacks
		}
	}
	return "", ""
}

// isReport reports whether a PUT body is a report of the Responder-*
// documents: a JSON object whose schema is one of theirs.
func isReport(body []byte) bool {
	var r struct{ Schema string }
	return bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) && json.Unmarshal(body, &r) == nil &&
		strings.HasPrefix(r.Schema, "responder.")
}

// lieAboutDigests replaces, in a report, the digest the engine checks the
// upload against: upload.compressed_sha256 and upload_summary.compressed_sha256
// (memory), archive.sha256 (volatile data).
func lieAboutDigests(report []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(report))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("fakeaws: a report that is not JSON: %w", err)
	}
	for _, path := range [][2]string{{"upload", "compressed_sha256"}, {"upload_summary", "compressed_sha256"}, {"archive", "sha256"}} {
		if obj, ok := m[path[0]].(map[string]any); ok {
			if real, ok := obj[path[1]].(string); ok {
				obj[path[1]] = sha256Hex([]byte("not " + real))
			}
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("fakeaws: encoding a report: %w", err)
	}
	return buf.Bytes(), nil
}

// md5ETag is the ETag S3 gives a body stored by one PUT: its quoted hex MD5.
func md5ETag(b []byte) string {
	sum := md5.Sum(b)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

// md5Base64 is a Content-MD5 header value.
func md5Base64(b []byte) string {
	sum := md5.Sum(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}
