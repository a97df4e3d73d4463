package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// stopGrace bounds how long a server process may take to exit once its
// stdin is closed before it is killed.
const stopGrace = 10 * time.Second

// serverProc is a running "bench serve" process. Whatever happens, the
// owner calls kill (which is a no-op after a successful stop), so that no
// process is left behind.
type serverProc struct {
	name   string
	addr   string
	token  string // a mortar node's local admin credential (see readToken)
	cmd    *exec.Cmd
	cancel context.CancelFunc // kills the process
	stdin  io.WriteCloser
	stdout *bufio.Reader
	waited bool
}

// startServer starts "bench serve -system name" from this executable and
// waits for its address. The process is killed if ctx ends or after
// timeout.
func startServer(ctx context.Context, name string, timeout time.Duration, stderr io.Writer) (*serverProc, error) {
	return startSelf(ctx, name, timeout, stderr, "serve", "-system", name)
}

// startSelf runs this executable with args as a server process named
// name, and waits for its "listening ADDR" line.
func startSelf(ctx context.Context, name string, timeout time.Duration, stderr io.Writer, args ...string) (*serverProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("start %s server: %w", name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stderr = stderr
	p := &serverProc{name: name, cmd: cmd, cancel: cancel}
	if err := p.start(); err != nil {
		cancel()
		return nil, fmt.Errorf("start %s server: %w", name, err)
	}
	line, err := p.readLine()
	addr, ok := strings.CutPrefix(line, "listening ")
	if err == nil && !ok {
		err = fmt.Errorf("got %q, want \"listening ADDR\"", line)
	}
	if err != nil {
		p.kill()
		return nil, fmt.Errorf("start %s server: %w", name, err)
	}
	p.addr = addr
	return p, nil
}

func (p *serverProc) start() error {
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	p.stdin, p.stdout = stdin, bufio.NewReader(stdout)
	return p.cmd.Start()
}

// readLine reads one line of the server's stdout.
func (p *serverProc) readLine() (string, error) {
	line, err := p.stdout.ReadString('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return "", fmt.Errorf("read server output: %w", err)
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// mark asks the server for its CPU time so far.
func (p *serverProc) mark() (cpuTimes, error) {
	if _, err := io.WriteString(p.stdin, "mark\n"); err != nil {
		return cpuTimes{}, fmt.Errorf("%s server: mark: %w", p.name, err)
	}
	return p.readCPU()
}

func (p *serverProc) readCPU() (cpuTimes, error) {
	line, err := p.readLine()
	if err != nil {
		return cpuTimes{}, fmt.Errorf("%s server: %w", p.name, err)
	}
	c, err := parseCPULine(line)
	if err != nil {
		return cpuTimes{}, fmt.Errorf("%s server: %w", p.name, err)
	}
	return c, nil
}

// stop closes the server's stdin, reads its last cpu line and waits for it
// to exit, killing it after stopGrace.
func (p *serverProc) stop() error {
	timer := time.AfterFunc(stopGrace, p.cancel)
	defer timer.Stop()
	err := p.stdin.Close()
	if err == nil {
		_, err = p.readCPU()
	}
	return errors.Join(err, p.wait())
}

// kill kills the server unless it has been waited for already, and waits.
func (p *serverProc) kill() {
	if !p.waited {
		p.cancel()
		p.wait() // reports only that it was killed
	}
}

func (p *serverProc) wait() error {
	p.waited = true
	defer p.cancel()
	if err := p.cmd.Wait(); err != nil {
		return fmt.Errorf("%s server: %w", p.name, err)
	}
	return nil
}
