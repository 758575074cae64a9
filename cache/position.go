package cache

// Positions are named numbers kept in the registry file: how far a stream
// of events has been applied (the source time of the staging events, of
// the image updates). ApplyChanges stores a position in the same
// transaction as the changes it applies, so each change takes effect
// exactly once across crashes; SetPosition stores one on its own, for a
// stream whose effects live elsewhere (the image store).

// Position returns the stored position name, 0 if none.
func (e *Engine) Position(name string) (int64, error) { return e.reg.Position(name) }

// SetPosition stores the position name.
func (e *Engine) SetPosition(name string, v int64) error { return e.reg.SetPosition(name, v) }
