package main

import (
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// newLogger writes JSON when w is not a terminal and human-readable
// console lines when it is (format "auto"), or what format forces. JSON
// lines are written in batches (batchWriter): call flush before exiting;
// lines logged after it are written at once.
func newLogger(w io.Writer, level, format string) (log zerolog.Logger, flush func()) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	console := format == "console"
	if format == "auto" {
		if f, ok := w.(*os.File); ok {
			console = isatty.IsTerminal(f.Fd())
		}
	}
	flush = func() {}
	if console {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	} else {
		bw := newBatchWriter(w, batchDelay, batchSize)
		w, flush = bw, func() { _ = bw.Close() }
	}
	return zerolog.New(w).Level(lvl).Hook(timestampHook{}), flush
}

// timestampHook adds the time as zerolog's Timestamp does (field "time",
// zerolog.TimeFieldFormat), formatting it once per second rather than for
// every line: the access log writes one line per proxied request.
type timestampHook struct{}

func (timestampHook) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str(zerolog.TimestampFieldName, formattedNow())
}

type formattedSecond struct {
	unix int64
	text string
}

var lastSecond atomic.Pointer[formattedSecond]

// formattedNow returns the current time in zerolog.TimeFieldFormat,
// which has whole seconds (RFC 3339 by default).
func formattedNow() string {
	now := zerolog.TimestampFunc()
	sec := now.Unix()
	if f := lastSecond.Load(); f != nil && f.unix == sec {
		return f.text
	}
	f := &formattedSecond{unix: sec, text: now.Format(zerolog.TimeFieldFormat)}
	lastSecond.Store(f)
	return f.text
}
