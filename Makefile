# Ember entry points. `make train` trains; `make test` installs what is missing, builds and runs every test.
BUILD ?= build
JOBS ?= $(shell nproc)
MAKEFLAGS += --no-print-directory
CMAKE_FLAGS ?=
ifeq ($(CI),true)
CMAKE_FLAGS += -DEMBER_WERROR=ON
endif

.PHONY: deps configure build test train bench clean

# Packages an entry point needs beyond the build (target-specific, so they reach `deps` through the
# prerequisites): `make train` draws its loss curve with gnuplot.
DEPS_EXTRA ?=
train: DEPS_EXTRA += gnuplot-nox

deps:
	@bash scripts/install-deps.sh $(DEPS_EXTRA)

configure: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Without ARGS: the default run (CNN + BN, micro 32 x accum 4) writing its files under out/train/.
train: build
	$(BUILD)/ember-train $(if $(ARGS),$(ARGS),--summary out/train/summary.json --metrics out/train/metrics.csv \
	  --plot out/train/loss.png --save out/train/cnn.safetensors)

bench: build
	$(BUILD)/ember-bench $(ARGS)

clean:
	rm -rf $(BUILD)
