package main

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
)

// gRPC-go unary calls with default options and no TLS, on the
// BenchmarkService that grpc-go's own benchmarks use (generated code that
// ships in the grpc module: no protoc run).
func init() {
	register(system{
		name:  "grpc",
		about: "gRPC-go " + grpc.Version + " unary, default options (no tuning), insecure credentials, grpc_testing.BenchmarkService/UnaryCall",
		serve: serveGRPC,
		dial:  dialGRPC,
	})
}

// echoServer answers UnaryCall with the request's payload.
type echoServer struct {
	testpb.UnimplementedBenchmarkServiceServer
}

func (echoServer) UnaryCall(_ context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{Payload: &testpb.Payload{Body: req.GetPayload().GetBody()}}, nil
}

func serveGRPC(l net.Listener) (func() error, error) {
	srv := grpc.NewServer()
	testpb.RegisterBenchmarkServiceServer(srv, echoServer{})
	// Serve returns nil after Stop, which closes l and every connection
	// and waits for the handlers.
	stop := serveInBackground(
		func() error { return srv.Serve(l) },
		func() error { srv.Stop(); return nil },
		nil,
	)
	return stop, nil
}

type grpcCaller struct {
	conn   *grpc.ClientConn
	client testpb.BenchmarkServiceClient
}

// dialGRPC creates the client connection; gRPC connects lazily, on the
// first call.
func dialGRPC(_ context.Context, addr string) (caller, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("grpc: new client %s: %w", addr, err)
	}
	return grpcCaller{conn, testpb.NewBenchmarkServiceClient(conn)}, nil
}

func (g grpcCaller) Echo(ctx context.Context, payload []byte) ([]byte, error) {
	resp, err := g.client.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: payload}})
	if err != nil {
		return nil, fmt.Errorf("grpc: unary call: %w", err)
	}
	return resp.GetPayload().GetBody(), nil
}

func (g grpcCaller) Close() error { return g.conn.Close() }
