package report

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/responder-ir/responder/responder/evidence"
)

// Indicator statuses.
const (
	// IndicatorsFound: the volatile data was read; the lists say what it holds.
	IndicatorsFound = "read"
	// IndicatorsNotCollected: the case holds no volatile data.
	IndicatorsNotCollected = "not-collected"
	// IndicatorsUnreadable: the archive could not be read or does not match
	// its recorded SHA-256; nothing is drawn from it.
	IndicatorsUnreadable = "unreadable"
)

// Indicators are the things of interest drawn from the collected volatile
// data: listening sockets, outbound connections, local accounts that can
// log in, and cron entries, each with the artifact (and the file in it)
// it came from.
type Indicators struct {
	Status    string            `json:"status"`
	Detail    string            `json:"detail"`
	Source    *Source           `json:"source,omitempty"`
	Listening []SocketIndicator `json:"listening"`
	Outbound  []SocketIndicator `json:"outbound"`
	Users     []UserIndicator   `json:"users"`
	Cron      []CronIndicator   `json:"cron"`
	// Notes say which parts of the collection were missing or unreadable.
	Notes []string `json:"notes"`
}

// SocketIndicator is a listening socket or an outbound connection.
type SocketIndicator struct {
	Protocol  string   `json:"protocol"`
	Local     string   `json:"local"`
	Remote    string   `json:"remote,omitempty"`
	State     string   `json:"state"`
	Processes []string `json:"processes"`
	Loopback  bool     `json:"loopback,omitempty"`
	Source    Source   `json:"source"`
}

// UserIndicator is a local account that can log in.
type UserIndicator struct {
	Name     string `json:"name"`
	UID      int    `json:"uid"`
	Home     string `json:"home"`
	Shell    string `json:"shell"`
	Password string `json:"password"`
	// Why says what makes it stand out, if anything (UID 0 besides root,
	// an empty password).
	Why    string `json:"why,omitempty"`
	Source Source `json:"source"`
}

// CronIndicator is one entry of a crontab.
type CronIndicator struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Text string `json:"text"`
	// RemoteCode says how the entry fetches and runs remote code, if it does.
	RemoteCode string `json:"remote_code,omitempty"`
	Source     Source `json:"source"`
}

// maxArchive bounds the volatile archive the report reads, and
// maxMember each file taken from it.
const (
	maxArchive = 512 << 20
	maxMember  = 64 << 20
)

func noIndicators(status, detail string) Indicators {
	return Indicators{Status: status, Detail: detail, Listening: []SocketIndicator{}, Outbound: []SocketIndicator{},
		Users: []UserIndicator{}, Cron: []CronIndicator{}, Notes: []string{}}
}

// volatileArchive is the newest Linux volatile data archive of the case.
func volatileArchive(m *evidence.Manifest) (evidence.Artifact, bool, bool) {
	windows := false
	for i := len(m.Artifacts) - 1; i >= 0; i-- {
		a := m.Artifacts[i]
		if a.Step != "volatile-data" {
			continue
		}
		if strings.HasSuffix(a.Path, ".tar.gz") {
			return a, true, false
		}
		if strings.HasSuffix(a.Path, ".zip") {
			windows = true
		}
	}
	return evidence.Artifact{}, false, windows
}

// IndicatorsFromArchive draws the indicators from a Linux volatile data
// archive (Responder-LinuxVolatileData: a tar.gz of collection/...).
func IndicatorsFromArchive(body []byte, src Source) Indicators {
	in := noIndicators(IndicatorsFound, "")
	in.Source = &src
	files, err := untarCollection(body)
	if err != nil {
		in.Status, in.Detail = IndicatorsUnreadable, fmt.Sprintf("the archive %s cannot be read: %v", src.Path, err)
		return in
	}
	member := func(name string) Source { s := src; s.Member = name; return s }
	if b, ok := files["collection/sockets.json"]; ok {
		if err := in.addSockets(b, member("collection/sockets.json")); err != nil {
			in.Notes = append(in.Notes, "collection/sockets.json: "+err.Error())
		}
	} else {
		in.Notes = append(in.Notes, "no sockets were collected (collection/sockets.json is not in the archive)")
	}
	if b, ok := files["collection/users.json"]; ok {
		if err := in.addUsers(b, member("collection/users.json")); err != nil {
			in.Notes = append(in.Notes, "collection/users.json: "+err.Error())
		}
	} else {
		in.Notes = append(in.Notes, "no accounts were collected (collection/users.json is not in the archive)")
	}
	in.addCron(files, member)
	in.Notes = append(in.Notes, passwdChanged(files["collection/files.json"])...)
	in.Detail = fmt.Sprintf("%d listening socket(s), %d outbound connection(s), %d account(s) that can log in, %d cron entr(ies)",
		len(in.Listening), len(in.Outbound), len(in.Users), len(in.Cron))
	return in
}

// untarCollection reads the regular files of a tar.gz archive.
func untarCollection(body []byte) (map[string][]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, maxMember))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", h.Name, err)
		}
		files[path.Clean(strings.TrimPrefix(h.Name, "./"))] = b
	}
}

// socket is an entry of collection/sockets.json.
type socket struct {
	Protocol      string   `json:"protocol"`
	Family        int      `json:"family"`
	LocalAddress  string   `json:"local_address"`
	LocalPort     int      `json:"local_port"`
	RemoteAddress string   `json:"remote_address"`
	RemotePort    int      `json:"remote_port"`
	State         string   `json:"state"`
	PIDs          []int    `json:"pids"`
	Processes     []string `json:"processes"`
}

func endpoint(addr string, port int) string {
	if ip := net.ParseIP(addr); ip != nil {
		addr = ip.String()
	}
	return net.JoinHostPort(addr, strconv.Itoa(port))
}

func isLocal(addr string) bool {
	ip := net.ParseIP(addr)
	return ip == nil || ip.IsLoopback() || ip.IsUnspecified()
}

func (in *Indicators) addSockets(b []byte, src Source) error {
	var socks []socket
	if err := json.Unmarshal(b, &socks); err != nil {
		return err
	}
	listening := map[string]bool{}
	for _, s := range socks {
		if (s.Protocol == "tcp" && s.State == "LISTEN") || (s.Protocol == "udp" && s.State == "UNCONN" && s.LocalPort != 0) {
			listening[fmt.Sprintf("%s/%d", s.Protocol, s.LocalPort)] = true
			in.Listening = append(in.Listening, SocketIndicator{Protocol: s.Protocol, Local: endpoint(s.LocalAddress, s.LocalPort),
				State: s.State, Processes: owners(s), Loopback: net.ParseIP(s.LocalAddress) != nil && net.ParseIP(s.LocalAddress).IsLoopback(), Source: src})
		}
	}
	for _, s := range socks {
		outbound := s.Protocol == "tcp" && (s.State == "ESTABLISHED" || s.State == "SYN_SENT")
		if !outbound || isLocal(s.RemoteAddress) || listening[fmt.Sprintf("tcp/%d", s.LocalPort)] {
			continue
		}
		in.Outbound = append(in.Outbound, SocketIndicator{Protocol: s.Protocol, Local: endpoint(s.LocalAddress, s.LocalPort),
			Remote: endpoint(s.RemoteAddress, s.RemotePort), State: s.State, Processes: owners(s), Source: src})
	}
	return nil
}

// owners says the processes that own a socket: "sshd (pid 812)".
func owners(s socket) []string {
	out := []string{}
	for i, pid := range s.PIDs {
		name := "?"
		if i < len(s.Processes) {
			name = s.Processes[i]
		}
		out = append(out, fmt.Sprintf("%s (pid %d)", name, pid))
	}
	return out
}

// account is an entry of collection/users.json.
type account struct {
	Name     string `json:"name"`
	UID      int    `json:"uid"`
	Home     string `json:"home"`
	Shell    string `json:"shell"`
	Password string `json:"password"`
}

// canLogIn: a shell that is not a refusal.
func canLogIn(shell string) bool {
	switch path.Base(shell) {
	case "", "nologin", "false", "sync", "halt", "shutdown":
		return false
	}
	return true
}

func (in *Indicators) addUsers(b []byte, src Source) error {
	var accts []account
	if err := json.Unmarshal(b, &accts); err != nil {
		return err
	}
	for _, a := range accts {
		if !canLogIn(a.Shell) || (a.UID != 0 && a.UID < 1000) || a.UID == 65534 {
			continue
		}
		u := UserIndicator{Name: a.Name, UID: a.UID, Home: a.Home, Shell: a.Shell, Password: a.Password, Source: src}
		var why []string
		if a.UID == 0 && a.Name != "root" {
			why = append(why, "UID 0 (root's powers) under another name")
		}
		if a.Password == "empty" {
			why = append(why, "empty password")
		}
		u.Why = strings.Join(why, "; ")
		in.Users = append(in.Users, u)
	}
	return nil
}

// cronFile reports whether a collected file is a crontab.
func cronFile(name string) bool {
	p, ok := strings.CutPrefix(name, "collection/files/")
	if !ok {
		return false
	}
	return p == "etc/crontab" || p == "etc/anacrontab" || strings.HasPrefix(p, "etc/cron.d/") || strings.HasPrefix(p, "var/spool/cron/")
}

func (in *Indicators) addCron(files map[string][]byte, member func(string) Source) {
	var names []string
	for name := range files {
		if cronFile(name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		for i, l := range strings.Split(string(files[name]), "\n") {
			text := strings.TrimSpace(l)
			if text == "" || strings.HasPrefix(text, "#") || envAssignment(text) {
				continue
			}
			c := CronIndicator{File: "/" + strings.TrimPrefix(name, "collection/files/"), Line: i + 1, Text: text, Source: member(name)}
			if rc := RemoteCodeLines(text); len(rc) > 0 {
				c.RemoteCode = rc[0].Why
			}
			in.Cron = append(in.Cron, c)
		}
	}
}

// envAssignment: a crontab line that sets a variable (SHELL=/bin/sh).
func envAssignment(line string) bool {
	i := strings.IndexByte(line, '=')
	if i <= 0 {
		return false
	}
	name := strings.TrimSpace(line[:i])
	return !strings.ContainsAny(name, " \t*/")
}

// passwdChanged says when /etc/passwd was last modified, from the files
// manifest: the collection does not say when an account was created.
func passwdChanged(b []byte) []string {
	var files []struct {
		Path  string `json:"path"`
		MTime int64  `json:"mtime_epoch"`
	}
	if b == nil || json.Unmarshal(b, &files) != nil {
		return nil
	}
	for _, f := range files {
		if f.Path == "/etc/passwd" {
			return []string{fmt.Sprintf("the collection does not say when an account was created; /etc/passwd was last modified %s",
				ts(time.Unix(f.MTime, 0)))}
		}
	}
	return nil
}
