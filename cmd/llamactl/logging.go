package main

import (
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"llamactl/internal/jsonlog"
)

// newLogger writes JSON when w is not a terminal and human-readable
// console lines when it is (format "auto"), or what format forces. JSON
// lines are written in batches (batchWriter): call flush before exiting;
// lines logged after it are written at once. lines is where hand-written
// JSON lines go beside the logger's (httpapi.Config.AccessLog); nil for
// console output.
func newLogger(w io.Writer, level, format string) (log zerolog.Logger, lines io.Writer, flush func()) {
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
		w, lines, flush = bw, bw, func() { _ = bw.Close() }
	}
	return zerolog.New(w).Level(lvl).Hook(timestampHook{}), lines, flush
}

// timestampHook adds the time as zerolog's Timestamp does (field "time",
// zerolog.TimeFieldFormat), formatting it once per second rather than for
// every line: the access log writes one line per proxied request.
type timestampHook struct{}

func (timestampHook) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str(zerolog.TimestampFieldName, jsonlog.Timestamp(zerolog.TimestampFunc()))
}
