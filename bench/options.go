package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// options is the driver's configuration, from its flags.
type options struct {
	systems     []string
	concurrency []int
	duration    time.Duration
	warmup      time.Duration
	rounds      int
	payload     int
	format      string
	command     string // the command line, for the report
}

// Short mode, for CI: one short round.
const (
	shortDuration = 300 * time.Millisecond
	shortRounds   = 1
)

// errUsage marks a bad command line; the usage has been printed.
var errUsage = errors.New("usage")

// parseOptions parses the driver's flags. Its errors are flag.ErrHelp or
// errUsage, after printing to stderr.
func parseOptions(args []string, stderr io.Writer) (*options, error) {
	o := &options{
		systems:     registeredNames(),
		concurrency: []int{1, 64},
		command:     commandLine(args),
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: bench [flags]\n\nCompares RPC systems, client and server in separate processes, on a loopback echo.\n\nFlags:")
		fs.PrintDefaults()
	}
	fs.Var((*nameList)(&o.systems), "systems", "comma-separated `list` of systems to compare")
	fs.Var((*intList)(&o.concurrency), "concurrency", "comma-separated `list` of numbers of concurrent callers")
	fs.DurationVar(&o.duration, "duration", 3*time.Second, "timed window of each measurement")
	fs.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "untimed calls before each measurement")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds, each measuring every system; the report shows medians")
	fs.IntVar(&o.payload, "payload", 16, "payload size in `bytes`")
	fs.StringVar(&o.format, "o", "markdown", "output `format`: markdown or json")
	short := fs.Bool("short", false, fmt.Sprintf("short mode for CI: -duration %v -rounds %d unless given", shortDuration, shortRounds))
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *short {
		applyShort(fs, o)
	}
	if err := o.validate(fs.NArg()); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		fs.Usage()
		return nil, errUsage
	}
	return o, nil
}

// applyShort sets short mode's values for the flags not given.
func applyShort(fs *flag.FlagSet, o *options) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["duration"] {
		o.duration = shortDuration
	}
	if !set["rounds"] {
		o.rounds = shortRounds
	}
}

func (o *options) validate(nargs int) error {
	switch {
	case nargs > 0:
		return errors.New("unexpected arguments")
	case len(o.systems) == 0:
		return errors.New("-systems: no system registered")
	case o.duration <= 0:
		return errors.New("-duration must be positive")
	case o.warmup < 0:
		return errors.New("-warmup must not be negative")
	case o.rounds < 1:
		return errors.New("-rounds must be at least 1")
	case o.payload < 0:
		return errors.New("-payload must not be negative")
	case o.format != "markdown" && o.format != "json":
		return fmt.Errorf("-o %q: want markdown or json", o.format)
	}
	return nil
}

// parseExitCode is the exit code for an error from parsing flags.
func parseExitCode(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

// commandLine renders the command line, shell-quoted where needed.
func commandLine(args []string) string {
	words := []string{"bench"}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`|&;<>()*?[]{}~#!") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		words = append(words, a)
	}
	return strings.Join(words, " ")
}

// nameList is the -systems flag: registered system names, no repeats.
type nameList []string

func (l *nameList) String() string { return strings.Join(*l, ",") }

func (l *nameList) Set(s string) error {
	var names []string
	for n := range strings.SplitSeq(s, ",") {
		n = strings.TrimSpace(n)
		if _, err := lookupSystem(n); err != nil {
			return err
		}
		if slices.Contains(names, n) {
			return fmt.Errorf("system %q listed twice", n)
		}
		names = append(names, n)
	}
	*l = names
	return nil
}

// intList is the -concurrency flag: positive integers.
type intList []int

func (l *intList) String() string {
	s := make([]string, len(*l))
	for i, n := range *l {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(s string) error {
	var ns []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("%q is not a positive integer", f)
		}
		ns = append(ns, n)
	}
	*l = ns
	return nil
}
