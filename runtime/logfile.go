package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// Log capture.
//
// A child writes its stdout and stderr straight into its log file: the
// file is opened O_APPEND and passed as fds 1 and 2. No pipe sits between
// the child and the file, so a line of any length never stalls or kills
// the child, and a child left running across a daemon restart (adoption)
// never gets SIGPIPE when the daemon goes away.
//
// The price is that the daemon cannot cut the stream at line boundaries.
// Rotation is therefore done by size check from the supervisor:
//   - before a start, a file over LogMaxBytes is renamed away
//     (name.log -> name.log.1 -> ... -> name.log.<LogBackups>);
//   - while a child runs, the supervisor checks the size periodically and,
//     over the limit, copies the file to name.log.1 and truncates it
//     (copytruncate). Thanks to O_APPEND the child's next write lands at the
//     new end. Lines written between the copy and the truncate are lost,
//     and the file may exceed the limit by what is written between checks.

// openLog opens path for appending, creating it and its directory.
func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if errors.Is(err, fs.ErrNotExist) {
		// The logs folder went away (a cleaner, a hand): make it again
		// rather than fail every start from now on.
		if err = os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
			f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	return f, nil
}

// shiftBackups renames path.(k) to path.(k+1) for k = backups-1 .. 1,
// dropping path.<backups>, so that path.1 is free.
func shiftBackups(path string, backups int) {
	_ = os.Remove(path + "." + strconv.Itoa(backups))
	for k := backups - 1; k >= 1; k-- {
		_ = os.Rename(path+"."+strconv.Itoa(k), path+"."+strconv.Itoa(k+1))
	}
}

// rotateIdle renames path to path.1 when it is over max bytes. Call it only
// while no process writes to path.
func rotateIdle(path string, max int64, backups int) error {
	fi, err := os.Stat(path)
	if err != nil || fi.Size() <= max {
		return nil
	}
	if backups <= 0 {
		return os.Truncate(path, 0)
	}
	shiftBackups(path, backups)
	if err := os.Rename(path, path+".1"); err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	return nil
}

// rotateLive copies path to path.1 and truncates it when it is over max
// bytes; the writer keeps its O_APPEND fd.
func rotateLive(path string, max int64, backups int) (bool, error) {
	fi, err := os.Stat(path)
	if err != nil || fi.Size() <= max {
		return false, nil
	}
	if backups > 0 {
		shiftBackups(path, backups)
		if err := copyFile(path, path+".1"); err != nil {
			return false, fmt.Errorf("rotate log: %w", err)
		}
	}
	if err := os.Truncate(path, 0); err != nil {
		return false, fmt.Errorf("rotate log: %w", err)
	}
	return true, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	return errors.Join(err, out.Close())
}

// tailChunk is how much tailFile reads at a time, from the end backwards.
const tailChunk = 64 << 10

// tailFile returns the last n lines of path that start at or after byte
// from (n <= 0: all of them). It reads the file from its end backwards, so
// its cost depends on the size of the answer, not of the file. A missing
// file has no lines. A last line without a newline counts as a line.
func tailFile(path string, n int, from int64) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tail log: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("tail log: %w", err)
	}
	size := fi.Size()
	if from > size { // truncated by rotation since
		from = 0
	}
	if n <= 0 {
		buf := make([]byte, size-from)
		_, err := f.ReadAt(buf, from)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("tail log: %w", err)
		}
		return buf, nil
	}
	var chunks [][]byte // read backwards: last chunk first
	newlines := 0
	pos := size
	skipLast := true // a trailing newline ends the last line, it does not start one
	for pos > from {
		sz := int64(tailChunk)
		if pos-from < sz {
			sz = pos - from
		}
		pos -= sz
		buf := make([]byte, sz)
		if _, err := f.ReadAt(buf, pos); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("tail log: %w", err)
		}
		found := false
		for i := len(buf) - 1; i >= 0; i-- {
			if buf[i] != '\n' {
				skipLast = false
				continue
			}
			if skipLast {
				skipLast = false
				continue
			}
			newlines++
			if newlines == n {
				chunks = append(chunks, buf[i+1:])
				found = true
				break
			}
		}
		if found {
			break
		}
		chunks = append(chunks, buf)
	}
	var out bytes.Buffer
	for i := len(chunks) - 1; i >= 0; i-- {
		out.Write(chunks[i])
	}
	return out.Bytes(), nil
}

// lastLines is a short excerpt of the end of a log for an error message:
// the last n lines from byte from, at most max bytes.
func lastLines(path string, n int, from int64, max int) string {
	b, err := tailFile(path, n, from)
	if err != nil || len(b) == 0 {
		return ""
	}
	b = bytes.TrimRight(b, "\n")
	if len(b) > max {
		b = append([]byte("..."), b[len(b)-max:]...)
	}
	return string(b)
}
