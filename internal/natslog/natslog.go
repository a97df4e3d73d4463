// Package natslog adapts log/slog to the printf-style Logger interface of
// the embedded nats-server.
package natslog

import (
	"context"
	"fmt"
	"log/slog"
)

// Logger implements nats-server's server.Logger on a *slog.Logger.
// Notices log at Info, except the chatty startup banner lines, which log
// at Debug so that the node's own summary is what an operator sees.
type Logger struct{ l *slog.Logger }

// New returns a Logger writing to l with component=nats.
func New(l *slog.Logger) *Logger { return &Logger{l: l.With("component", "nats")} }

func (l *Logger) log(level slog.Level, format string, v []any) {
	if !l.l.Enabled(context.Background(), level) {
		return
	}
	l.l.Log(context.Background(), level, fmt.Sprintf(format, v...))
}

// Noticef logs at Debug: nats-server's notices are its startup banner and
// routine cluster events; the node reports what matters itself.
func (l *Logger) Noticef(format string, v ...any) { l.log(slog.LevelDebug, format, v) }

// Warnf logs at Warn.
func (l *Logger) Warnf(format string, v ...any) { l.log(slog.LevelWarn, format, v) }

// Fatalf logs at Error; the embedded server never exits the process
// (NoSigs), so a fatal condition surfaces as a startup error instead.
func (l *Logger) Fatalf(format string, v ...any) { l.log(slog.LevelError, format, v) }

// Errorf logs at Error.
func (l *Logger) Errorf(format string, v ...any) { l.log(slog.LevelError, format, v) }

// Debugf logs at Debug.
func (l *Logger) Debugf(format string, v ...any) { l.log(slog.LevelDebug, format, v) }

// Tracef logs at Debug-4.
func (l *Logger) Tracef(format string, v ...any) { l.log(slog.LevelDebug-4, format, v) }
