package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func wait(t *testing.T, m *Manager, id string) Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := m.Wait(ctx, id)
	if err != nil {
		t.Fatalf("job %s did not end: %v", id, err)
	}
	return s
}

func TestJobEnds(t *testing.T) {
	fail := errors.New("disk on fire")
	tests := []struct {
		name      string
		fn        Func
		cancel    bool
		wantState string
		wantErr   string
	}{
		{"done", func(_ context.Context, p *Progress) error {
			p.SetTotal(3)
			p.Add(3)
			p.SetResult(map[string]int{"files": 3})
			return nil
		}, false, StateDone, ""},
		{"failed", func(context.Context, *Progress) error { return fail }, false, StateFailed, "disk on fire"},
		{"panic", func(context.Context, *Progress) error { panic("bug") }, false, StateFailed, "job panicked: bug"},
		{"cancelled", func(ctx context.Context, _ *Progress) error {
			<-ctx.Done()
			return ctx.Err()
		}, true, StateCancelled, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(Config{})
			defer m.Shutdown()
			s, err := m.Start(Spec{Kind: "test"}, tt.fn)
			if err != nil {
				t.Fatal(err)
			}
			// A quick job may have finished already when Start returns.
			if (s.State != StateRunning && s.State != tt.wantState) || s.ID == "" || s.Kind != "test" {
				t.Fatalf("started: %+v", s)
			}
			if tt.cancel {
				if c, ok := m.Cancel(s.ID); !ok || c.ID != s.ID {
					t.Fatalf("cancel: %+v %v", c, ok)
				}
			}
			got := wait(t, m, s.ID)
			if got.State != tt.wantState || got.Error != tt.wantErr || got.Finished == nil {
				t.Fatalf("got %+v, want state %s error %q", got, tt.wantState, tt.wantErr)
			}
			if tt.wantState == StateDone && (got.Done != 3 || got.Total != 3 || got.Result == nil || got.Rate <= 0) {
				t.Fatalf("progress not kept: %+v", got)
			}
		})
	}
}

func TestJobBounds(t *testing.T) {
	var mu sync.Mutex
	limits := map[string]int{}
	m := New(Config{MaxRunning: 2, MaxErrors: 3, KeepFinished: 2, OnLimit: func(l string) {
		mu.Lock()
		limits[l]++
		mu.Unlock()
	}})
	defer m.Shutdown()
	block := make(chan struct{})
	blocking := func(ctx context.Context, p *Progress) error {
		for i := range 10 {
			p.Error(fmt.Errorf("error %d %s", i, strings.Repeat("x", 2*maxMessage)))
		}
		select {
		case <-block:
		case <-ctx.Done():
		}
		return nil
	}
	a, err := m.Start(Spec{Kind: "warm"}, blocking)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Start(Spec{Kind: "check", Exclusive: true}, blocking)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Start(Spec{Kind: "warm"}, blocking); !errors.Is(err, ErrTooMany) {
		t.Fatalf("third job: %v, want ErrTooMany", err)
	}
	close(block)
	s := wait(t, m, a.ID)
	wait(t, m, b.ID) // still running, it would be listed too
	if len(s.Errors) != 3 || s.ErrorCount != 10 || len(s.Errors[0]) > maxMessage+len("…") {
		t.Fatalf("errors not bounded: %d kept, %d counted", len(s.Errors), s.ErrorCount)
	}
	// Finished jobs beyond KeepFinished are forgotten, oldest first.
	var ids []string
	for range 3 {
		s, err := m.Start(Spec{Kind: "purge"}, func(context.Context, *Progress) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		wait(t, m, s.ID)
		ids = append(ids, s.ID)
	}
	if _, ok := m.Get(ids[2]); !ok {
		t.Fatal("the newest finished job was forgotten")
	}
	if n := len(m.List()); n != 2 {
		t.Fatalf("%d jobs kept, want 2", n)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, l := range []string{LimitRunning, LimitErrors, LimitFinished, LimitMessage} {
		if limits[l] == 0 {
			t.Errorf("limit %s not reported", l)
		}
	}
	if limits[LimitErrors] != 2 { // once per job that hit it
		t.Errorf("error limit reported %d times, want once per job", limits[LimitErrors])
	}
}

func TestExclusiveJobsConflict(t *testing.T) {
	m := New(Config{})
	defer m.Shutdown()
	stop := make(chan struct{})
	a, err := m.Start(Spec{Kind: "rebuild", Exclusive: true}, func(ctx context.Context, _ *Progress) error {
		<-stop
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Start(Spec{Kind: "check", Exclusive: true}, func(context.Context, *Progress) error { return nil })
	var conflict *ConflictError
	if !errors.As(err, &conflict) || conflict.Running.ID != a.ID {
		t.Fatalf("got %v, want a conflict with %s", err, a.ID)
	}
	if _, err := m.Start(Spec{Kind: "warm"}, func(context.Context, *Progress) error { return nil }); err != nil {
		t.Fatalf("a job that is not exclusive must run beside it: %v", err)
	}
	close(stop)
	wait(t, m, a.ID)
	s, err := m.Start(Spec{Kind: "check", Exclusive: true}, func(context.Context, *Progress) error { return nil })
	if err != nil {
		t.Fatalf("after the exclusive job ended: %v", err)
	}
	wait(t, m, s.ID)
}

func TestFinishedJobsExpire(t *testing.T) {
	m := New(Config{KeepFor: time.Minute})
	defer m.Shutdown()
	now := time.Now()
	m.now = func() time.Time { return now }
	s, err := m.Start(Spec{Kind: "warm"}, func(context.Context, *Progress) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	wait(t, m, s.ID)
	if _, ok := m.Get(s.ID); !ok {
		t.Fatal("a finished job must be kept for a while")
	}
	now = now.Add(2 * time.Minute)
	if _, ok := m.Get(s.ID); ok {
		t.Fatal("a job finished longer ago than KeepFor must be forgotten")
	}
}

func TestPhaseRestartsCount(t *testing.T) {
	m := New(Config{})
	defer m.Shutdown()
	s, err := m.Start(Spec{Kind: "rebuild"}, func(_ context.Context, p *Progress) error {
		p.SetPhase("move")
		p.SetTotal(10)
		p.Add(10)
		p.SetPhase("registry")
		p.Add(2)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := wait(t, m, s.ID)
	if got.Phase != "registry" || got.Done != 2 || got.Total != 0 {
		t.Fatalf("got %+v", got)
	}
}
