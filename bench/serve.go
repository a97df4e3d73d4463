package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"syscall"
	"time"
)

// serveMain is the internal subcommand "bench serve -system NAME", which
// the driver runs once per measurement. It listens on 127.0.0.1:0, prints
// "listening ADDR", then reads commands from stdin: "mark" prints
// "cpu USER_NS SYS_NS", this process's CPU time so far. When stdin reaches
// EOF (the driver closes it) or ctx ends (SIGTERM, SIGINT), it stops
// serving, prints a last cpu line, and exits.
func serveMain(ctx context.Context, args []string, stdin *os.File, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("system", "", "the `system` to serve (required)")
	if err := fs.Parse(args); err != nil {
		return parseExitCode(err)
	}
	if *name == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "bench serve: -system is required and takes no arguments")
		fs.Usage()
		return 2
	}
	sys, err := lookupSystem(*name)
	if err != nil {
		fmt.Fprintf(stderr, "bench serve: %v\n", err)
		return 2
	}
	if err := serve(ctx, sys, stdin, stdout); err != nil {
		fmt.Fprintf(stderr, "bench serve %s: %v\n", sys.name, err)
		return 1
	}
	return 0
}

// serve runs sys on a loopback listener until stdin ends or ctx is done.
func serve(ctx context.Context, sys system, stdin *os.File, stdout io.Writer) error {
	in, restore, err := interruptible(stdin)
	if err != nil {
		return err
	}
	defer restore()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	stop, err := sys.serve(l)
	if err != nil {
		l.Close()
		return fmt.Errorf("serve: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "listening %s\n", l.Addr())
	if err == nil {
		err = commands(ctx, in, stdout)
	}
	if serr := stop(); serr != nil {
		err = errors.Join(err, fmt.Errorf("stop: %w", serr))
	}
	return errors.Join(err, printCPU(stdout))
}

// commands answers the driver's commands on in until EOF, or until ctx is
// done.
func commands(ctx context.Context, in *os.File, stdout io.Writer) error {
	unblocked := make(chan struct{})
	stopUnblock := context.AfterFunc(ctx, func() {
		in.SetReadDeadline(time.Now())
		close(unblocked)
	})
	defer func() {
		if !stopUnblock() {
			<-unblocked
		}
	}()
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		switch cmd := sc.Text(); cmd {
		case "mark":
			if err := printCPU(stdout); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unknown command %q", cmd)
		}
	}
	if err := sc.Err(); err != nil && (ctx.Err() == nil || !errors.Is(err, os.ErrDeadlineExceeded)) {
		return fmt.Errorf("read stdin: %w", err)
	}
	return nil
}

// interruptible returns a second *os.File on stdin's descriptor, in
// non-blocking mode so that the runtime poller serves it and a read
// deadline interrupts a read in progress (os.Stdin blocks in read(2),
// which nothing can interrupt). restore puts the descriptor back in
// blocking mode.
func interruptible(stdin *os.File) (in *os.File, restore func(), err error) {
	fd := int(stdin.Fd())
	if err := syscall.SetNonblock(fd, true); err != nil {
		return nil, nil, fmt.Errorf("stdin: set non-blocking: %w", err)
	}
	in = os.NewFile(uintptr(fd), stdin.Name())
	restore = func() {
		syscall.SetNonblock(fd, false)
		runtime.KeepAlive(in) // in's finalizer would close fd
	}
	return in, restore, nil
}

func printCPU(stdout io.Writer) error {
	c, err := selfCPU()
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(stdout, cpuLine(c)); err != nil {
		return fmt.Errorf("write cpu line: %w", err)
	}
	return nil
}
