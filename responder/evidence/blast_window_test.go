package evidence_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/responder-ir/responder/responder/evidence"
)

const windowAccount = "111122223333"

// taker takes a slot as one run would: TakeBlastSlot, or a fleet's ledger.
type taker func(ctx context.Context, store evidence.Store, want evidence.BlastSlot, limit int) (evidence.BlastSlot, bool, error)

// takers are the two paths, the ledger once fresh for every take (a fleet
// run each) and once shared (one fleet run whose cases start at different
// times).
func takers() map[string]func() taker {
	return map[string]func() taker{
		"TakeBlastSlot": func() taker { return evidence.TakeBlastSlot },
		"fresh ledger": func() taker {
			return func(ctx context.Context, store evidence.Store, want evidence.BlastSlot, limit int) (evidence.BlastSlot, bool, error) {
				return (&evidence.BlastLedger{Store: store}).Take(ctx, want, limit)
			}
		},
		"shared ledger": func() taker {
			var (
				mu      sync.Mutex
				ledgers = map[evidence.Store]*evidence.BlastLedger{}
			)
			return func(ctx context.Context, store evidence.Store, want evidence.BlastSlot, limit int) (evidence.BlastSlot, bool, error) {
				mu.Lock()
				l := ledgers[store]
				if l == nil {
					l = &evidence.BlastLedger{Store: store}
					ledgers[store] = l
				}
				mu.Unlock()
				return l.Take(ctx, want, limit)
			}
		},
	}
}

func windowSlot(caseID string, at time.Time) evidence.BlastSlot {
	return evidence.BlastSlot{AccountID: windowAccount, CaseID: caseID, InstanceID: "i-0123456789abcdef0", Holder: "alice", Taken: at}
}

// The limit counts over the last 60 minutes, not the clock hour: slots
// taken at 09:59 hold until 10:59.
func TestBlastWindowAcrossHour(t *testing.T) {
	ctx := context.Background()
	const limit = 3
	at := func(hh, mm, ss int) time.Time { return time.Date(2026, 11, 23, hh, mm, ss, 0, time.UTC) }
	for name, newTaker := range takers() {
		t.Run(name, func(t *testing.T) {
			take := newTaker()
			store := &evidence.Folder{Root: t.TempDir()}
			for i := range limit {
				if _, _, err := take(ctx, store, windowSlot(fmt.Sprintf("case-0959-%d", i), at(9, 59, i)), limit); err != nil {
					t.Fatal(err)
				}
			}
			for _, tc := range []struct {
				caseID string
				at     time.Time
			}{{"case-1001", at(10, 1, 0)}, {"case-1058", at(10, 58, 59)}} {
				_, _, err := take(ctx, store, windowSlot(tc.caseID, tc.at), limit)
				var br *evidence.BlastRadiusError
				if !errors.As(err, &br) {
					t.Fatalf("%s at %s: %v, want the blast radius refusal", tc.caseID, tc.at.Format(time.TimeOnly), err)
				}
				if br.Limit != limit || strings.Join(br.Cases, ",") != "case-0959-0,case-0959-1,case-0959-2" || !br.NextFree.Equal(at(10, 59, 0)) {
					t.Errorf("%s: refusal %+v; want the limit, the three cases of 09:59 and 10:59:00 (the oldest slot ages out)", tc.caseID, br)
				}
			}
			// The case of 09:59 again at 10:01 holds its slot of the hour before.
			if s, reused, err := take(ctx, store, windowSlot("case-0959-1", at(10, 1, 0)), limit); err != nil || !reused || s.Hour != "20261123T09Z" || s.Slot != 2 {
				t.Errorf("a case of 09:59 again: %+v, reused %v, %v; want its slot 2 of 09:00", s, reused, err)
			}
			// At 10:59:30 the 09:59 slots have aged out.
			for i, want := range []string{"", "", "", "refused"} {
				s, _, err := take(ctx, store, windowSlot(fmt.Sprintf("case-105930-%d", i), at(10, 59, 30)), limit)
				var br *evidence.BlastRadiusError
				switch {
				case want == "" && (err != nil || s.Hour != "20261123T10Z" || s.Slot != i+1):
					t.Errorf("take %d at 10:59:30: %+v, %v; want slot %d of 10:00", i, s, err, i+1)
				case want == "refused" && !errors.As(err, &br):
					t.Errorf("take %d at 10:59:30: %+v, %v; want the refusal", i, s, err)
				case want == "refused" && !br.NextFree.Equal(at(11, 59, 30)):
					t.Errorf("refusal at 10:59:30 frees at %s; want 11:59:30, not the next hour", br.NextFree)
				}
			}
			assertWindows(t, store, limit)
		})
	}
}

// Slots of the hour before count only while they are in the window; a
// slot of the hour before being written counts as recent.
func TestBlastWindowPartial(t *testing.T) {
	ctx := context.Background()
	const limit = 3
	for name, newTaker := range takers() {
		t.Run(name, func(t *testing.T) {
			take := newTaker()
			dir := t.TempDir()
			store := &evidence.Folder{Root: dir}
			if _, _, err := take(ctx, store, windowSlot("case-0920", time.Date(2026, 11, 23, 9, 20, 0, 0, time.UTC)), limit); err != nil {
				t.Fatal(err)
			}
			// Slot 2 of 09:00 is being written: an object that holds no record yet.
			p := filepath.Join(dir, evidence.LocksFolder, "blast-radius", windowAccount, "20261123T09Z", "slot-002.json")
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			// At 10:30 09:20 has aged out; the slot being written has not.
			at := time.Date(2026, 11, 23, 10, 30, 0, 0, time.UTC)
			for i, want := range []int{1, 2, 0} {
				s, _, err := take(ctx, store, windowSlot(fmt.Sprintf("case-1030-%d", i), at), limit)
				var br *evidence.BlastRadiusError
				switch {
				case want > 0 && (err != nil || s.Slot != want):
					t.Errorf("take %d: %+v, %v; want slot %d", i, s, err, want)
				case want == 0 && !errors.As(err, &br):
					t.Errorf("take %d: %+v, %v; want the refusal", i, s, err)
				case want == 0 && !br.NextFree.Equal(time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC)):
					t.Errorf("refusal frees at %s; want 11:00, the latest the slot being written can age out", br.NextFree)
				}
			}
		})
	}
}

// Runs racing within each hour, at times spread over three hours, through
// both paths at once: no 60-minute window ever holds more than the limit.
func TestBlastWindowConcurrent(t *testing.T) {
	ctx := context.Background()
	const limit, perHour = 5, 40
	store := &evidence.Folder{Root: t.TempDir()}
	ledger := &evidence.BlastLedger{Store: store}
	rng := rand.New(rand.NewPCG(13, 13))
	took := 0
	// The runs of an hour race each other; a run of the next hour starts
	// after them, as runs a second apart in time would.
	for h := 8; h <= 10; h++ {
		var (
			wg sync.WaitGroup
			mu sync.Mutex
		)
		for i := range perHour {
			at := time.Date(2026, 11, 23, h, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(time.Hour))))
			wg.Go(func() {
				want := windowSlot(fmt.Sprintf("case-%02d-%02d", h, i), at)
				var err error
				if i%2 == 0 {
					_, _, err = evidence.TakeBlastSlot(ctx, store, want, limit)
				} else {
					_, _, err = ledger.Take(ctx, want, limit)
				}
				var br *evidence.BlastRadiusError
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					took++
				case !errors.As(err, &br):
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	if n := assertWindows(t, store, limit); n != took || n < limit*2 {
		t.Errorf("%d slot objects, %d takes answered with a slot; want them equal and at least %d", n, took, limit*2)
	}
}

// assertWindows checks every 60-minute window over the slots' taken_at
// holds at most limit slots, and returns the number of slots.
func assertWindows(t *testing.T, store *evidence.Folder, limit int) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(store.Root, evidence.LocksFolder, "blast-radius", windowAccount, "*", "slot-*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var taken []time.Time
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var s evidence.BlastSlot
		if json.Unmarshal(b, &s) != nil || s.Taken.IsZero() {
			continue // being written (a test's stand-in)
		}
		taken = append(taken, s.Taken)
	}
	sort.Slice(taken, func(i, j int) bool { return taken[i].Before(taken[j]) })
	// The fullest window starts at a slot's time.
	for i, from := range taken {
		n := 0
		for _, at := range taken[i:] {
			if at.Before(from.Add(time.Hour)) {
				n++
			}
		}
		if n > limit {
			t.Errorf("the 60 minutes from %s hold %d slots, above the limit %d", from.Format(time.TimeOnly), n, limit)
		}
	}
	return len(taken)
}
