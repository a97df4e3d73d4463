package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisAbout says how startRedis runs Redis, for the report.
const redisAbout = "redis-server 7 (Debian redis-server), started fresh on 127.0.0.1 with no config file: " +
	"its default persistence, RDB snapshots (save 3600 1 300 100 60 10000), no AOF (appendonly no)"

// checkRedis reports a missing redis-server.
func checkRedis() error {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return fmt.Errorf("redis-server not found (apt-get install redis-server): %w", err)
	}
	return nil
}

// redisProc is a running redis-server and a client of it.
type redisProc struct {
	*extProc
	addr   string // 127.0.0.1:PORT
	client *redis.Client
}

// startRedis runs redis-server on a free loopback port with its data and
// log in dir/redis, and waits until it answers PING.
func startRedis(ctx context.Context, dir string) (*redisProc, error) {
	if err := checkRedis(); err != nil {
		return nil, err
	}
	rdir := filepath.Join(dir, "redis")
	if err := os.MkdirAll(rdir, 0o755); err != nil {
		return nil, err
	}
	addr := freePort()
	host, port, _ := net.SplitHostPort(addr)
	logPath := filepath.Join(rdir, "redis.log")
	p, err := startExt("redis-server", logPath, exec.Command("redis-server",
		"--bind", host, "--port", port, "--dir", rdir, "--logfile", logPath, "--daemonize", "no"))
	if err != nil {
		return nil, err
	}
	r := &redisProc{extProc: p, addr: addr, client: redis.NewClient(&redis.Options{Addr: addr})}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := r.client.Ping(ctx).Err()
		if err == nil {
			return r, nil
		}
		if p.exited() || time.Now().After(deadline) || ctx.Err() != nil {
			return nil, errors.Join(fmt.Errorf("redis-server not ready: %w", err), r.stop())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *redisProc) stop() error {
	return errors.Join(r.client.Close(), r.extProc.stop())
}

// extProc is a process the benchmark runs from another program
// (redis-server, a Celery worker, a Python script).
type extProc struct {
	name string
	log  string // where its output goes, for errors; may be ""
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited
	err  error         // how it exited, once done is closed
}

// startExt starts cmd as name, in a process group of its own so that
// stop can kill whatever it forked, and with SIGTERM sent to it should
// this process die. Its stderr, and its stdout unless set, go to
// logPath.
func startExt(name, logPath string, cmd *exec.Cmd) (*extProc, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if logPath != "" {
		f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		defer f.Close() // the child has its own copy
		cmd.Stderr = f
		if cmd.Stdout == nil {
			cmd.Stdout = f
		}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &extProc{name: name, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *extProc) pid() int { return p.cmd.Process.Pid }

func (p *extProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends the process SIGTERM, unless it has exited, and waits for
// it to exit; after stopGrace it kills its process group. Either way it
// then kills what is left of the group (children the process left
// behind). It reports a process that had failed already, or had to be
// killed, with the tail of its log.
func (p *extProc) stop() error {
	var err error
	if p.exited() {
		if p.err != nil {
			err = fmt.Errorf("%s exited early: %v%s", p.name, p.err, p.logTail())
		}
	} else {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopGrace):
			syscall.Kill(-p.pid(), syscall.SIGKILL)
			<-p.done
			err = fmt.Errorf("%s did not exit %v after SIGTERM; killed%s", p.name, stopGrace, p.logTail())
		}
	}
	syscall.Kill(-p.pid(), syscall.SIGKILL) // ESRCH when the group is empty
	return err
}

// logTail is the last lines of the process's log, for an error message.
func (p *extProc) logTail() string {
	if p.log == "" {
		return ""
	}
	b, err := os.ReadFile(p.log)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return "; " + p.log + " ends:\n" + strings.Join(lines[max(0, len(lines)-15):], "\n")
}
