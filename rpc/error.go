package rpc

import (
	"context"
	"errors"
	"fmt"
)

// RemoteError is an error a peer reported with an ERR event: zerorpc's
// (name, message, traceback) triple. A handler that returns a *RemoteError
// sends exactly those fields; any other error is sent with Name "Error".
type RemoteError struct {
	Name      string // exception class, e.g. "NameError", "TestError"
	Message   string
	Traceback string // the peer's stack trace, if it sent one
}

func (e *RemoteError) Error() string {
	if e.Message == "" {
		return e.Name
	}
	return e.Name + ": " + e.Message
}

// Error names mortar itself sends.
const (
	// NameErrorName is sent for a method the server does not have.
	NameErrorName = "NameError"
	// TypeErrorName is sent for arguments that do not fit the method.
	TypeErrorName = "TypeError"
	// PanicErrorName is sent when a handler panics.
	PanicErrorName = "PanicError"
	// LostRemoteName is sent, and reported, when heartbeats stop.
	LostRemoteName = "LostRemote"
	// TimeoutName is sent when the server-side deadline passes.
	TimeoutName = "TimeoutExpired"
)

var (
	// ErrLostRemote is reported when the peer stops heartbeating a call.
	ErrLostRemote = errors.New("rpc: lost remote (no heartbeat)")
	// ErrClosed is reported for calls on, or interrupted by, a closed client.
	ErrClosed = errors.New("rpc: client closed")
	// ErrConnLost is reported for calls whose connection broke.
	ErrConnLost = errors.New("rpc: connection lost")
	// ErrServerClosed is returned by Serve after Shutdown or Close.
	ErrServerClosed = errors.New("rpc: server closed")
	// ErrProtocol is reported when a peer breaks the protocol.
	ErrProtocol = errors.New("rpc: protocol error")
)

// toRemote turns a handler's error into the triple sent in ERR.
func toRemote(err error) *RemoteError {
	if re, ok := errors.AsType[*RemoteError](err); ok {
		return re
	}
	switch {
	case errors.Is(err, ErrLostRemote):
		return &RemoteError{Name: LostRemoteName, Message: err.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		return &RemoteError{Name: TimeoutName, Message: err.Error()}
	}
	return &RemoteError{Name: "Error", Message: err.Error()}
}

func typeErrorf(format string, args ...any) *RemoteError {
	return &RemoteError{Name: TypeErrorName, Message: fmt.Sprintf(format, args...)}
}
