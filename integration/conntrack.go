package integration

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// StubConnectionTracking gives moto the connection tracking timeouts of
// network interfaces, which it does not implement: a
// ModifyNetworkInterfaceAttribute that carries a
// ConnectionTrackingSpecification is answered by the proxy from a table it
// keeps (other attributes, such as the groups, still go to moto), and each
// interface of a DescribeNetworkInterfaces answer gets the timeouts the table
// holds for it, as EC2's connectionTrackingConfiguration. The ranges are
// EC2's documented ones (TCP established 60-432,000 s, UDP stream 60-180 s,
// UDP 30-60 s); it does not check that the interface exists, nor its
// instance type (moto's DescribeInstanceTypes says which types are Nitro).
func (p *FaultProxy) StubConnectionTracking() *ConnTrackTimeouts {
	ct := &ConnTrackTimeouts{byID: map[string]ConnTrack{}}
	p.Handle("ModifyNetworkInterfaceAttribute", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ct.modify(w, r, p.backend)
	}))
	p.Handle("DescribeNetworkInterfaces", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ct.describe(w, r, p.backend)
	}))
	return ct
}

// ConnTrackTimeouts is the proxy's table of connection tracking timeouts.
type ConnTrackTimeouts struct {
	mu   sync.Mutex
	byID map[string]ConnTrack
}

// ConnTrack is an interface's connection tracking timeouts in seconds; 0 is
// not set.
type ConnTrack struct {
	TCPEstablished, UDPStream, UDP int
}

// Of returns the timeouts set on an interface, and whether any was.
func (c *ConnTrackTimeouts) Of(eni string) (ConnTrack, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.byID[eni]
	return t, ok
}

// timeoutRanges are EC2's documented bounds of each timeout
// (ConnectionTrackingSpecificationRequest).
var timeoutRanges = map[string][2]int{
	"TcpEstablishedTimeout": {60, 432000},
	"UdpStreamTimeout":      {60, 180},
	"UdpTimeout":            {30, 60},
}

func (c *ConnTrackTimeouts) modify(w http.ResponseWriter, r *http.Request, backend http.Handler) {
	body, form, err := readForm(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	const prefix = "ConnectionTrackingSpecification."
	set := map[string]int{}
	for k := range form {
		if name, ok := strings.CutPrefix(k, prefix); ok {
			v, err := strconv.Atoi(form.Get(k))
			bounds, known := timeoutRanges[name]
			if err != nil || !known || v < bounds[0] || v > bounds[1] {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, EC2Error("InvalidParameterValue", fmt.Sprintf("%s: %q is not a valid value", k, form.Get(k))))
				return
			}
			set[name] = v
		}
	}
	if len(set) == 0 {
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		backend.ServeHTTP(w, r)
		return
	}
	if form.Get("DryRun") == "true" {
		w.WriteHeader(http.StatusPreconditionFailed)
		_, _ = io.WriteString(w, EC2Error("DryRunOperation", "Request would have succeeded, but DryRun flag is set."))
		return
	}
	eni := form.Get("NetworkInterfaceId")
	c.mu.Lock()
	t := c.byID[eni]
	for name, v := range set {
		switch name {
		case "TcpEstablishedTimeout":
			t.TCPEstablished = v
		case "UdpStreamTimeout":
			t.UDPStream = v
		case "UdpTimeout":
			t.UDP = v
		}
	}
	c.byID[eni] = t
	c.mu.Unlock()
	writeXML(w, "ModifyNetworkInterfaceAttributeResponse", "<return>true</return>")
}

var interfaceIDElement = regexp.MustCompile(`<networkInterfaceId>(eni-[0-9a-f]+)</networkInterfaceId>`)

// describe forwards the request to moto and adds, after each interface's
// ID, the timeouts the table holds for it.
func (c *ConnTrackTimeouts) describe(w http.ResponseWriter, r *http.Request, backend http.Handler) {
	r.Header.Del("Accept-Encoding")
	rec := httptest.NewRecorder()
	backend.ServeHTTP(rec, r)
	body := rec.Body.String()
	if rec.Code == http.StatusOK {
		c.mu.Lock()
		body = interfaceIDElement.ReplaceAllStringFunc(body, func(m string) string {
			eni := interfaceIDElement.FindStringSubmatch(m)[1]
			t, ok := c.byID[eni]
			if !ok {
				return m
			}
			return m + "<connectionTrackingConfiguration>" + t.xml() + "</connectionTrackingConfiguration>"
		})
		c.mu.Unlock()
	}
	for k, v := range rec.Header() {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(rec.Code)
	_, _ = io.WriteString(w, body)
}

func (t ConnTrack) xml() string {
	var b strings.Builder
	for _, f := range []struct {
		name string
		v    int
	}{{"tcpEstablishedTimeout", t.TCPEstablished}, {"udpStreamTimeout", t.UDPStream}, {"udpTimeout", t.UDP}} {
		if f.v != 0 {
			fmt.Fprintf(&b, "<%s>%d</%s>", f.name, f.v, f.name)
		}
	}
	return b.String()
}

// readForm reads a Query-protocol request's parameters (body and URL) and
// returns the body it read, so the request can still be forwarded.
func readForm(r *http.Request) ([]byte, url.Values, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	form, err := queryForm(r)
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, form, err
}
