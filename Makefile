GO      ?= go
BIN     := bin
PKGS    := ./...

.PHONY: all build test lint fmt-check vet staticcheck unit demo bench fuzz clean

all: build

build:
	$(GO) build -o $(BIN)/llamactl ./cmd/llamactl
	$(GO) build -o $(BIN)/fakellama ./cmd/fakellama

## test: everything CI runs (formatting, vet, staticcheck, race-enabled tests)
test: lint unit

lint: fmt-check vet staticcheck

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

staticcheck:
	$(GO) tool staticcheck $(PKGS)

unit:
	$(GO) test -race -count=1 -timeout 8m $(PKGS)

demo: build
	./scripts/demo.sh

bench: build
	./scripts/bench.sh

## fuzz: every fuzzer in turn (spec decoding, names, help text, JSON and
## multipart model extraction, routing, paths, chunked framing, upstream
## answer heads, log strings)
FUZZTIME ?= 20s
FUZZERS  := spec:FuzzDecode spec:FuzzValidateName spec:FuzzParseHelp \
	httpapi:FuzzModelFromBody httpapi:FuzzRoute httpapi:FuzzScanJSON \
	httpapi:FuzzEscapePath httpapi:FuzzChunkReader httpapi:FuzzFoldEq \
	httpapi:FuzzQuickAnswer \
	internal/jsonlog:FuzzAppendString
fuzz:
	@set -e; for f in $(FUZZERS); do \
		pkg=$${f%%:*}; name=$${f#*:}; \
		echo "== ./$$pkg $$name"; \
		$(GO) test ./$$pkg -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME); \
	done

clean:
	rm -rf $(BIN)
