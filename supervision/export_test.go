package supervision

import "time"

// SetKillWait changes how long supervisors made by later Props calls wait
// for a killed child, and returns a function that restores it.
func SetKillWait(d time.Duration) (restore func()) {
	old := killWait
	killWait = d
	return func() { killWait = old }
}

// SetClock changes the restart-intensity clock of supervisors made by later
// Props calls, and returns a function that restores it.
func SetClock(now func() time.Time) (restore func()) {
	old := clock
	clock = now
	return func() { clock = old }
}
