package stagingclient

import (
	"context"
	"fmt"
)

// Positions is where a follower of the event log keeps how far it has
// applied it: a stored position per stream, and a lease per stream so that
// only one follower applies it at a time (during a config reload the old
// and the new config overlap; the new one waits until the old has let go,
// so no event is applied twice). The delivery edge's cache engine is one.
type Positions interface {
	Lease(ctx context.Context, name string) (release func(), err error)
	Position(name string) (int64, error)
}

// PositionError is Follow's error when the stored position cannot be
// read; nothing was polled.
type PositionError struct {
	Name string
	Err  error
}

func (e *PositionError) Error() string {
	return fmt.Sprintf("stagingclient: reading the stored position %q: %v", e.Name, e.Err)
}

func (e *PositionError) Unwrap() error { return e.Err }

// Follow applies the event stream name with p until ctx ends: it takes the
// stream's lease, reads the stored position, calls started with it (before
// the first poll; started may be nil) and runs p from there. apply stores
// the position together with each batch's effect, so the next Follow goes
// on where this one stopped.
//
// It returns ctx's error when ctx ends (while it waits for the lease or
// while it polls; started was not called in the first case), a
// *PositionError when the position cannot be read, and ErrPollerRunning
// when p already runs.
func Follow(ctx context.Context, pos Positions, name string, p *Poller, started func(from int64), apply ApplyFunc) error {
	release, err := pos.Lease(ctx, name)
	if err != nil {
		return err
	}
	defer release()
	from, err := pos.Position(name)
	if err != nil {
		return &PositionError{Name: name, Err: err}
	}
	if started != nil {
		started(from)
	}
	return p.Run(ctx, from, apply)
}
