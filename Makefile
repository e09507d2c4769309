# Ember entry points. `make train` trains; `make test` installs what is missing, builds and runs every test.
BUILD ?= build
JOBS ?= $(shell nproc)
MAKEFLAGS += --no-print-directory
CMAKE_FLAGS ?=
ifeq ($(CI),true)
CMAKE_FLAGS += -DEMBER_WERROR=ON
endif

.PHONY: deps configure build test train bench bench-train bench-memory fixtures mutate clean

# Packages an entry point needs beyond the build (target-specific, so they reach `deps` through the
# prerequisites): `make train` draws its loss curve with gnuplot.
DEPS_EXTRA ?=
train: DEPS_EXTRA += gnuplot-nox
# The libFuzzer targets (make test runs them briefly): clang, its fuzzer/sanitizer runtimes, its OpenMP.
FUZZ_DEPS = clang libclang-rt-dev libomp-dev
test fuzz: DEPS_EXTRA += $(FUZZ_DEPS)

deps:
	@bash scripts/install-deps.sh $(DEPS_EXTRA)

# A new build directory uses Ninja (better parallelism than make on 2 cores); an existing one keeps its generator.
GENERATOR = $(if $(wildcard $(BUILD)/CMakeCache.txt),,-G Ninja)

configure: deps
	@cmake -S . -B $(BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	JOBS=$(JOBS) bash scripts/sanitize.sh
	JOBS=$(JOBS) bash scripts/fuzz.sh --test

# Fuzz each target FUZZ_SECONDS (default 60) and keep new interesting inputs in fuzz/corpus/ (docs/reliability.md).
FUZZ_SECONDS ?= 60
.PHONY: fuzz
fuzz: deps
	JOBS=$(JOBS) bash scripts/fuzz.sh $(FUZZ_SECONDS)

# Without ARGS: the default run (CNN + BN, micro 32 x accum 4) writing its files under out/train/.
train: build
	$(BUILD)/ember-train $(if $(ARGS),$(ARGS),--summary out/train/summary.json --metrics out/train/metrics.csv \
	  --plot out/train/loss.png --save out/train/cnn.safetensors)

bench: build
	$(BUILD)/ember-bench $(ARGS)

# Training benchmarks (docs/benchmarks.md), with Debian's python3 (its python3-torch):
# Ember vs PyTorch samples/s, and peak memory vs accumulation steps.
bench-train bench-memory: DEPS_EXTRA += python3-torch gnuplot-nox
bench-train: build
	/usr/bin/python3 scripts/bench_train.py --ember $(BUILD)/ember-train $(ARGS)
bench-memory: build
	/usr/bin/python3 scripts/bench_memory.py --ember $(BUILD)/ember-train $(ARGS)

# The PyTorch reference fixtures of the accumulation tests (docs/accumulation.md, "Reference fixtures")
# and of the GPT tests (docs/transformer.md), regenerated into tests/fixtures/accumulation/ and
# tests/fixtures/gpt/ with Debian's python3 and its python3-torch.
# ARGS=--check compares a fresh run with the committed files instead (ctest's ember.scripts.fixtures).
fixtures: DEPS_EXTRA += python3-torch
fixtures: deps
	/usr/bin/python3 scripts/make_reference.py $(ARGS)
	/usr/bin/python3 scripts/make_gpt_fixture.py $(ARGS)

# Mutation testing of the CUDA sources against the emulated tests (docs/emulator.md, "Mutation testing"):
# takes long, so not part of `test`. It builds its own copy (default $TMPDIR/ember-mutate), not $(BUILD).
# ARGS e.g. --only acc-drop-atomicor,mm-tile-barrier --markdown out/mutate.md (scripts/mutate.py --help).
mutate: deps
	python3 scripts/mutate.py $(ARGS)

clean:
	rm -rf $(BUILD)
