package cabudget

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// Memory is a Store in one process's memory: for a single process that
// shares nothing, and for the simulation, which runs the same Bucket
// arithmetic that the SQL store runs in its UPDATE.
type Memory struct {
	mu   sync.Mutex
	rows map[string]*State
}

// NewMemory returns an empty Memory store.
func NewMemory() *Memory { return &Memory{rows: map[string]*State{}} }

// TakeBudgets implements Store.
func (m *Memory) TakeBudgets(_ context.Context, spends []Spend, now time.Time, exempt bool) (*Wait, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.take(spends, now, exempt), nil
}

func (m *Memory) take(spends []Spend, now time.Time, exempt bool) *Wait {
	rows := make([]*State, len(spends))
	var wait *Wait
	for i, s := range spends {
		r := m.rows[s.Key]
		if r == nil {
			r = &State{Key: s.Key, CA: s.CA, Kind: s.Kind, Subject: s.Subject}
			m.rows[s.Key] = r
		}
		r.Limit = s.Limit
		rows[i] = r
		if exempt {
			continue
		}
		if at := Available(s.Limit, r.TAT, now); at.After(now) && (wait == nil || at.After(wait.Until)) {
			wait = &Wait{For: s.Name(), Until: at}
		}
	}
	if wait != nil {
		return wait
	}
	for _, r := range rows {
		if exempt {
			r.Exempt++
			continue
		}
		b := Bucket{Limit: r.Limit, TAT: r.TAT}
		b.Take(now)
		r.TAT = b.TAT
		r.Taken++
	}
	return nil
}

// ListBudgets implements Store.
func (m *Memory) ListBudgets(_ context.Context, kinds ...Kind) ([]State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []State
	for _, r := range m.rows {
		if len(kinds) == 0 || slices.Contains(kinds, r.Kind) {
			out = append(out, *r)
		}
	}
	slices.SortFunc(out, func(a, b State) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Prune forgets budgets that are full at now (a missing row is a full
// bucket) and reports how many remain.
func (m *Memory) Prune(now time.Time) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, r := range m.rows {
		if !r.TAT.After(now) && r.Kind != Orders {
			delete(m.rows, k)
		}
	}
	return len(m.rows)
}
