package main

import (
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// newLogger writes JSON when w is not a terminal and human-readable
// console lines when it is (format "auto"), or what format forces. JSON
// lines are written in batches (batchWriter): call flush before exiting.
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
		w, flush = bw, func() { _ = bw.Flush() }
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), flush
}
