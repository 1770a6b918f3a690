package store

import "errors"

// Sentinel errors that every driver maps its native errors onto.
var (
	// ErrNotFound: no row with that key.
	ErrNotFound = errors.New("not found")
	// ErrDuplicate: a row with that unique key exists.
	ErrDuplicate = errors.New("already exists")
	// ErrLeaseLost: the delivery was claimed again since this attempt
	// started, so the attempt's outcome did not move it.
	ErrLeaseLost = errors.New("delivery lease lost")
	// ErrTaskTerminal: the task already reached a terminal status.
	ErrTaskTerminal = errors.New("task is already terminal")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
)
