package mortar

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Code is a stable, machine-readable error code. The set only grows: a code
// once published keeps its meaning. Codes cross every surface unchanged: the
// NATS API (the Mortar-Error header), the admin HTTP API (the JSON body) and
// RPC headers.
type Code string

// The error code catalog. docs/api.md lists the HTTP status of each.
const (
	CodeInternal           Code = "internal"            // a bug or an unexpected failure; details are in the node's log
	CodeInvalidArgument    Code = "invalid_argument"    // the request is malformed or a field is invalid
	CodeNotFound           Code = "not_found"           // the named object does not exist
	CodeAlreadyExists      Code = "already_exists"      // create of an object that exists
	CodeConflict           Code = "conflict"            // a compare-and-set lost: the object changed since it was read
	CodeTooLarge           Code = "too_large"           // a value or request exceeds a size limit
	CodeUnavailable        Code = "unavailable"         // the engine cannot serve now (no quorum, starting up); retry
	CodeDeadlineExceeded   Code = "deadline_exceeded"   // the caller's deadline passed first
	CodeFailedPrecondition Code = "failed_precondition" // the system is not in a state that allows the operation
	CodeResourceExhausted  Code = "resource_exhausted"  // a limit or quota is reached
	CodeUnauthenticated    Code = "unauthenticated"     // no or bad credentials
	CodePermissionDenied   Code = "permission_denied"   // the caller may not do this
)

// HTTPStatus maps a code to the status the admin HTTP API answers with.
func (c Code) HTTPStatus() int {
	switch c {
	case CodeInvalidArgument:
		return http.StatusBadRequest
	case CodeNotFound:
		return http.StatusNotFound
	case CodeAlreadyExists, CodeConflict:
		return http.StatusConflict
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	case CodeDeadlineExceeded:
		return http.StatusGatewayTimeout
	case CodeFailedPrecondition:
		return http.StatusPreconditionFailed
	case CodeResourceExhausted:
		return http.StatusTooManyRequests
	case CodeUnauthenticated:
		return http.StatusUnauthorized
	case CodePermissionDenied:
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// Error is the one error type that crosses process boundaries: a code and a
// public message. Detail that must not leave the node goes to its log.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "mortar: " + string(e.Code)
	}
	return "mortar: " + string(e.Code) + ": " + e.Message
}

// Is reports whether target is an *Error with the same code and either the
// same message or none, so that a package's sentinel such as
//
//	var ErrConflict = &mortar.Error{Code: mortar.CodeConflict}
//
// matches every conflict with errors.Is.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && (t.Message == "" || t.Message == e.Message)
}

// ErrorCode returns the code of the first *Error in err's chain. Context
// errors map to CodeDeadlineExceeded; nil maps to ""; anything else is
// CodeInternal.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return CodeDeadlineExceeded
	}
	return CodeInternal
}

// ErrorMessage returns the public message of the first *Error in err's
// chain, or "internal error" for anything else.
func ErrorMessage(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Message
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err.Error()
	}
	return "internal error"
}
