# kz - Kuzushiji character recognition as Unix filters.
# make [all] | demo | check | bench | bench-engine | data | install | clean | fuzz | valgrind
# SANITIZE=1 builds and tests with AddressSanitizer + UBSan in build-san/.

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
PKG_CONFIG ?= pkg-config
PKGS = libpng zlib netpbm openblas
CFLAGS ?= -O2 -g
# The numeric code is built for this machine's vector units; packagers
# building for other machines set ARCH_FLAGS= (or e.g. -mavx2).
ARCH_FLAGS ?= -march=native
# The hot files: -fno-math-errno lets sqrtf vectorise (nothing reads
# errno after arithmetic).
HOT = conv winograd layers plan work spec opt infer train
KZ_DATA ?= $(shell if [ -d ../shared/data ]; then echo ../shared/data; else echo data; fi)
export KZ_DATA

ifeq ($(SANITIZE),1)
O ?= build-san
SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
else
O ?= build
SAN =
endif

# Deferred (=) so that `make demo` can install the packages first.
PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKGS))
PKG_LIBS = $(shell $(PKG_CONFIG) --libs $(PKGS))
SHAREDIR ?= $(PREFIX)/share/kz
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Ilib $(PKG_CFLAGS) $(CFLAGS) $(SAN) \
	-DKZ_SHAREDIR='"$(SHAREDIR)"'
LIBS = $(PKG_LIBS) -lm -lpthread

PROGS = kz-unpack kz-info kz-label kz-show kz-split kz-train kz-classify kz-eval kz-norm
LIB_SRC = $(wildcard lib/*.c)
HDRS = $(wildcard lib/*.h)
LIB_OBJ = $(LIB_SRC:lib/%.c=$(O)/lib/%.o)
BINS = $(PROGS:%=$(O)/bin/%)
TEST_BINS = $(O)/bin/kz-unit $(O)/bin/kz-regress
MANS = $(wildcard man/*.[157])

all: $(BINS) $(TEST_BINS)

$(O)/lib/%.o: lib/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(if $(filter $(HOT),$*),-O3 -fno-math-errno $(ARCH_FLAGS)) -c -o $@ $<

$(O)/libkz.a: $(LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $(LIB_OBJ)

$(O)/bin/%: cmd/%.c cmd/cmd.h $(HDRS) $(O)/libkz.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(O)/libkz.a $(LIBS) $(LDFLAGS)

$(O)/bin/kz-unit: tests/unit.c $(HDRS) $(O)/libkz.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(O)/libkz.a $(LIBS) $(LDFLAGS)

$(O)/bin/kz-regress: tests/regress.c fuzz/fuzz.c $(HDRS) $(O)/libkz.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(O)/libkz.a $(LIBS) $(LDFLAGS)

# The first of README's two commands: install what is missing, build,
# run the main job on the data.
demo:
	sh tools/deps.sh
	$(MAKE) all
	sh examples/demo.sh $(O)/bin

# The second: every test; the runner ends with "N passed, N failed".
check: all
	sh tests/run.sh $(O)/bin

bench: all
	sh tests/bench.sh $(O)/bin

# The engine against an earlier revision: make bench-engine BASE=REV
bench-engine: all
	sh tests/bench-engine.sh $(O)/bin $(BASE)

lint:
	mandoc -Tlint -Wwarning $(MANS)

# libFuzzer harnesses (clang): one per parser.  make fuzz FUZZ_SECONDS=N
# runs each for N seconds on seeds that fuzz/run.sh makes, FUZZ_JOBS
# harnesses at a time (one core each); crashes land in
# build-fuzz/crashes/NAME/.  FUZZ_TARGETS="model modelx" runs some.
# The fuzz build skips checksums (FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION,
# lib/util.h), so that the fuzzers reach the code behind them.
# FUZZ_ALL is in the order of fuzz/fuzz.c's targets.
FUZZ_ALL = stream npz npy idx tar png pnm classmap model spec modelx
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 1
FUZZ_CC ?= clang
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
fuzz-build:
	sh tools/deps.sh hardening
	@mkdir -p build-fuzz
	@n=0; for t in $(FUZZ_ALL); do n=$$((n + 1)); \
	    case " $(FUZZ_TARGETS) " in *" $$t "*) ;; *) continue;; esac; \
	    echo "fuzz: building $$t"; \
	    $(FUZZ_CC) -std=c11 -D_GNU_SOURCE -Ilib $(PKG_CFLAGS) $(FUZZ_FLAGS) -DTARGET=$$n \
	        -o build-fuzz/fuzz-$$t fuzz/fuzz.c $(LIB_SRC) $(LIBS) || exit 1; done

fuzz: fuzz-build all
	FUZZ_JOBS=$(FUZZ_JOBS) sh fuzz/run.sh $(O)/bin $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The real-data pipelines under valgrind memcheck (tests/valgrind.sh),
# from a build without -march=native: valgrind does not decode AVX-512.
valgrind:
	sh tools/deps.sh hardening
	$(MAKE) O=build-vg ARCH_FLAGS= CFLAGS="-O1 -g" all
	sh tests/valgrind.sh build-vg/bin

# Downloads the official dataset files into $(KZ_DATA) (for machines
# without ../shared/data).
data:
	sh tools/fetch-data.sh "$(KZ_DATA)"

install: $(BINS)
	mkdir -p $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7
	for p in $(PROGS); do install -m 755 $(O)/bin/$$p $(DESTDIR)$(BINDIR)/$$p; done
	for m in $(MANS); do s=$${m##*.}; install -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s/; done
	mkdir -p $(DESTDIR)$(SHAREDIR)
	for f in models/*.kzm models/*.csv; do [ -f "$$f" ] && \
	    install -m 644 "$$f" $(DESTDIR)$(SHAREDIR)/; done; true

clean:
	rm -rf build build-san build-vg build-fuzz out

.PHONY: all demo check bench bench-engine lint data install clean fuzz fuzz-build valgrind
.SECONDARY: $(LIB_OBJ)
