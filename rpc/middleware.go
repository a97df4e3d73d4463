package rpc

import "context"

// Request is what interceptors see of one call, on either side.
type Request struct {
	// Method is the name of the method called.
	Method string
	// Peer is the remote address: the server on a client, the client on a
	// server.
	Peer string

	header    Header
	rawHeader []byte // server side: the header as received, parsed lazily
}

// Header returns the request's event header. On the server it holds every
// key the client sent, including message_id and v; unknown keys are kept
// as sent. On the client, interceptors add keys with Set; they are sent
// with the request.
func (r *Request) Header() *Header {
	if r.rawHeader != nil {
		r.header = parseHeader(r.rawHeader)
		r.rawHeader = nil
	}
	return &r.header
}

// HeaderValue returns the msgpack encoding of key's value in the request's
// header, or nil. On a server it reads the header as received without
// decoding the rest of it, so an interceptor that needs one key (a
// credential) allocates nothing.
func (r *Request) HeaderValue(key string) []byte {
	if r.rawHeader != nil {
		return headerValue(r.rawHeader, key)
	}
	return r.header.Raw(key)
}

// Interceptor is middleware around a call, on the client or the server.
// It may read and (on the client) change req's header, then call next to
// run the rest of the chain and the call itself, or return an error
// without calling next to refuse the call: on a server the error is sent
// as ERR, on a client it is returned to the caller.
//
// On a server, next runs the handler; for a streaming method it returns
// after the last item is sent. On a client, next sends the request and
// waits for the reply; for a stream it returns when the stream ends.
type Interceptor func(ctx context.Context, req *Request, next func(context.Context) error) error

// chain runs interceptors around final.
func chain(ics []Interceptor, ctx context.Context, req *Request, final func(context.Context) error) error {
	if len(ics) == 0 {
		return final(ctx)
	}
	return ics[0](ctx, req, func(ctx context.Context) error {
		return chain(ics[1:], ctx, req, final)
	})
}

type requestKey struct{}

// RequestFromContext returns the request a server handler is running for,
// so a handler can read the header it was called with.
func RequestFromContext(ctx context.Context) (*Request, bool) {
	r, ok := ctx.Value(requestKey{}).(*Request)
	return r, ok
}
