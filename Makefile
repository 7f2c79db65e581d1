# kz - Kuzushiji character recognition as Unix filters.
# make [all] | demo | check | bench | bench-engine | data | install | uninstall | deb | clean | fuzz | valgrind
# SANITIZE=1 builds and tests with AddressSanitizer + UBSan in build-san/.

# The version, here only: the programs' --version, the man pages'
# footers, model files' META and the Debian package (debian/changelog,
# which make check compares with this).
VERSION = 1.0.0
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
PKG_CONFIG ?= pkg-config
PKGS = libpng libjpeg zlib libdeflate netpbm openblas
CFLAGS ?= -O2 -g
# The numeric code is built for this machine's vector units; packagers
# building for other machines set ARCH_FLAGS= (or e.g. -mavx2).
ARCH_FLAGS ?= -march=native
# Without them, the hot loops are built for three x86-64 levels and the
# CPU's own is chosen at run time (KZ_HOT, lib/util.h).
MULTIARCH = $(if $(strip $(ARCH_FLAGS)),,-DKZ_MULTIARCH)
# The hot files: -fno-math-errno lets sqrtf vectorise (nothing reads
# errno after arithmetic).
HOT = conv winograd wino4 wino4_lanes gemm bf16 layers plan work spec opt infer train
KZ_DATA ?= $(shell if [ -d ../shared/data ]; then echo ../shared/data; else echo data; fi)
export KZ_DATA

ifeq ($(SANITIZE),1)
O ?= build-san
SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
else ifeq ($(MPI),1)
# Data-parallel kz-train under mpirun (Debian's OpenMPI: tools/deps.sh
# mpi), built apart: the default build needs no MPI.
O ?= build-mpi
CC = mpicc
SAN =
CPPFLAGS += -DKZ_MPI
else
O ?= build
SAN =
endif

# Deferred (=) so that `make demo` can install the packages first.
PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKGS))
PKG_LIBS = $(shell $(PKG_CONFIG) --libs $(PKGS))
SHAREDIR ?= $(PREFIX)/share/kz
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Ilib $(PKG_CFLAGS) $(CPPFLAGS) $(CFLAGS) $(SAN) \
	-DKZ_SHAREDIR='"$(SHAREDIR)"' -DKZ_VERSION='"$(VERSION)"'
LIBS = $(PKG_LIBS) -lm -lpthread

PROGS = kz-unpack kz-info kz-label kz-show kz-split kz-train kz-classify kz-eval kz-norm kz-model kz-similar
LIB_SRC = $(wildcard lib/*.c)
HDRS = $(wildcard lib/*.h)
LIB_OBJ = $(LIB_SRC:lib/%.c=$(O)/lib/%.o)
BINS = $(PROGS:%=$(O)/bin/%)
TEST_BINS = $(O)/bin/kz-unit $(O)/bin/kz-regress
MANS = $(wildcard man/*.[157])

all: $(BINS) $(TEST_BINS)

# What the build was configured with: rewritten, and so everything
# rebuilt, whenever it changes (make install PREFIX=... after a make:
# the share directory compiled in must be the one installed to).
$(O)/config: FORCE
	@mkdir -p $(@D)
	@printf '%s\n' '$(VERSION)' '$(SHAREDIR)' '$(CC)' '$(CPPFLAGS)' '$(CFLAGS)' \
	    '$(ARCH_FLAGS)' '$(LDFLAGS)' '$(SAN)' | cmp -s - $@ || \
	    printf '%s\n' '$(VERSION)' '$(SHAREDIR)' '$(CC)' '$(CPPFLAGS)' '$(CFLAGS)' \
	    '$(ARCH_FLAGS)' '$(LDFLAGS)' '$(SAN)' >$@

$(O)/lib/%.o: lib/%.c $(HDRS) $(O)/config
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(if $(filter $(HOT),$*),-O3 -fno-math-errno $(ARCH_FLAGS) $(MULTIARCH)) -c -o $@ $<

$(O)/libkz.a: $(LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $(LIB_OBJ)

$(O)/bin/%: cmd/%.c cmd/cmd.h $(HDRS) $(O)/libkz.a $(O)/config
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(O)/libkz.a $(LIBS) $(LDFLAGS)

$(O)/bin/kz-unit: tests/unit.c $(HDRS) $(O)/libkz.a $(O)/config
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(O)/libkz.a $(LIBS) $(LDFLAGS)

$(O)/bin/kz-regress: tests/regress.c fuzz/fuzz.c $(HDRS) $(O)/libkz.a $(O)/config
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(O)/libkz.a $(LIBS) $(LDFLAGS)

# The first of README's two commands: install what is missing, build,
# run the main job on the data.
demo:
	sh tools/deps.sh
	$(MAKE) all
	sh examples/demo.sh $(O)/bin

# The second: every test; the runner ends with "N passed, N failed".
# CHECK_TESTS: the test files to run (tests/t-NAME.sh ...); all by default.
check: all
	sh tests/run.sh $(O)/bin $(CHECK_TESTS)

bench: all
	sh tests/bench.sh $(O)/bin

# The Debian package's programs (built for any x86-64) against this
# build's (-march=native), side by side.
bench-deb: all deb
	sh tests/bench-pair.sh native $(O)/bin package build-deb/root/usr/bin

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
FUZZ_ALL = stream npz npy idx tar png pnm classmap model spec modelx jpeg book glyphs
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

# The shipped models, and the class map of each (NAME_classmap.csv
# beside NAME.kzm); nothing else of models/.
SHIPPED = $(wildcard models/*.kzm) $(filter $(patsubst %.kzm,%_classmap.csv,$(wildcard models/*.kzm)),$(wildcard models/*.csv))

# Man pages get the version in their footers; bash completion is one
# file, linked under each program's name (bash-completion loads a
# command's completion by its name).
install: $(BINS)
	mkdir -p $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(SHAREDIR) $(DESTDIR)$(BASHCOMPDIR)
	for p in $(PROGS); do install -m 755 $(O)/bin/$$p $(DESTDIR)$(BINDIR)/$$p; done
	for m in $(MANS); do s=$${m##*.}; \
	    sed 's/^\.Os kz$$/.Os kz $(VERSION)/' $$m >$(DESTDIR)$(MANDIR)/man$$s/$${m##*/} && \
	    chmod 644 $(DESTDIR)$(MANDIR)/man$$s/$${m##*/} || exit 1; done
	for f in $(SHIPPED); do install -m 644 $$f $(DESTDIR)$(SHAREDIR)/; done
	install -m 644 completion/kz.bash $(DESTDIR)$(BASHCOMPDIR)/kz
	for p in $(PROGS); do ln -sf kz $(DESTDIR)$(BASHCOMPDIR)/$$p; done

# Removes what install put there, and the share directory once empty.
uninstall:
	for p in $(PROGS); do rm -f $(DESTDIR)$(BINDIR)/$$p $(DESTDIR)$(BASHCOMPDIR)/$$p; done
	for m in $(MANS); do s=$${m##*.}; rm -f $(DESTDIR)$(MANDIR)/man$$s/$${m##*/}; done
	for f in $(SHIPPED); do rm -f $(DESTDIR)$(SHAREDIR)/$${f##*/}; done
	rm -f $(DESTDIR)$(BASHCOMPDIR)/kz
	-rmdir $(DESTDIR)$(SHAREDIR) 2>/dev/null

# The Debian package, built from the files git knows, checked by
# lintian and smoke tested (tools/deb.sh): build-deb/kz_VERSION_amd64.deb
deb:
	sh tools/deb.sh

clean:
	rm -rf build build-san build-vg build-fuzz build-deb out

.PHONY: all demo check bench bench-deb bench-engine lint data install uninstall deb clean fuzz fuzz-build valgrind FORCE
.SECONDARY: $(LIB_OBJ)
