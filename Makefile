# Warren: the two commands a new user needs are `make run` and `make test`.
# Both install missing Debian packages first (scripts/install-deps.sh; needs root or sudo).

JOBS ?= $(shell nproc)
DATA_DIR ?= ./data
WARREN_ARGS ?=

.PHONY: run test build debug asan tsan fuzz-smoke fuzz format format-check deps clean bench

deps:
	@scripts/install-deps.sh

build: deps
	@cmake --preset release >/dev/null
	@cmake --build build/release -j $(JOBS)

# Release build, broker in the foreground on the default ports, data in ./data.
run: build
	@mkdir -p $(DATA_DIR)
	exec ./build/release/src/app/warrend --data-dir $(DATA_DIR) $(WARREN_ARGS)

# Every test: unit + integration (release), the same under ASan+UBSan, a TSan smoke and a fuzz
# smoke when clang is present, and the clang-format check. Ends with one summary line:
# "Total: N passed, N failed".
test: deps
	@scripts/test.sh

debug: deps
	@cmake --preset debug >/dev/null
	@cmake --build build/debug -j $(JOBS)

asan: deps
	@cmake --preset asan-ubsan >/dev/null
	@cmake --build build/asan-ubsan -j $(JOBS)

# ThreadSanitizer over the storage sync thread and the suites that drive it (scripts/tsan.sh).
tsan: deps
	@scripts/tsan.sh

# A longer fuzzing campaign: FUZZ_SECONDS per target (default 600).
fuzz: deps
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-600} scripts/fuzz.sh

# Side-by-side benchmark against RabbitMQ (installed if missing): bench/README.md.
# RUNS, DURATION and scenario numbers (BENCH_SCENARIOS="1 2") pass through.
bench: build
	@bench/side_by_side.sh $(BENCH_SCENARIOS)

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

format-check:
	@scripts/format-check.sh

clean:
	rm -rf build
