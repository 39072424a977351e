# Installing the C library as C libraries such as zstd and SQLite install
# themselves:
#
#   <prefix>/include/mapcache.h
#   <prefix>/lib/libmapcache.so.<ABI>    SONAME libmapcache.so.<ABI> (build.rs)
#   <prefix>/lib/libmapcache.so          -> libmapcache.so.<ABI>, for -lmapcache
#   <prefix>/lib/libmapcache.a
#   <prefix>/lib/pkgconfig/mapcache.pc   Libs.private: what libmapcache.a needs
#   <prefix>/lib/libmapcache_cuda.so     the GPU rehash plugin, if `make cuda`
#                                        built it (CUDA_PLUGIN)
#
# `make install PREFIX=/usr/local DESTDIR=...`, `make uninstall` with the same
# variables. The test (tests/packaging/test_install.sh) builds C and Go programs
# against a temporary prefix.
#
# The plugin goes beside libmapcache.so because that is where the library looks
# for it when the config names no gpu plugin path (the directory of the
# libmapcache.so it was loaded from, found with dladdr). It is optional: when
# `make cuda` has not built it, install says so and installs the rest (the
# library then rebuilds on the CPU, and mapcache_gpu_status says "plugin not
# found at ..."). It is never the target/release/libmapcache_cuda.so the
# workspace's tests build without CUDA, which refuses to open for a host.

PREFIX ?= /usr/local
DESTDIR ?=
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
INSTALL ?= install
# The plugin `make cuda` builds (GPU_CHECK_DIR: mk/cuda.mk); recursive, as
# cuda.mk is read after this file.
CUDA_PLUGIN ?= $(or $(GPU_CHECK_DIR),$(ROOT)/target/cuda/gpu-check)/libmapcache_cuda.so
# The package version, from the [package] section of Cargo.toml.
MAPCACHE_VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' $(ROOT)/Cargo.toml | head -n 1)

.PHONY: install uninstall test-install
TEST_TARGETS += test-install

# mapcache.pc. `libname` is a variable so that a static link can name the
# archive: pkg-config --static --define-variable=libname=:libmapcache.a --libs
# mapcache gives -l:libmapcache.a and Libs.private (with both libraries
# installed, -lmapcache alone would pick libmapcache.so).
define MAPCACHE_PC
prefix=$(PREFIX)
exec_prefix=$${prefix}
libdir=$(patsubst $(PREFIX)%,$${prefix}%,$(LIBDIR))
includedir=$(patsubst $(PREFIX)%,$${prefix}%,$(INCLUDEDIR))
libname=mapcache

Name: mapcache
Description: Embedded in-process key/value cache with a stable C ABI
URL: https://github.com/mapcache/mapcache
Version: $(MAPCACHE_VERSION)
Cflags: -I$${includedir}
Libs: -L$${libdir} -l$${libname}
Libs.private: $(C_STATIC_LIBS)
endef
export MAPCACHE_PC

install: lib
	@soname=$$($(call SONAME_OF,$(LIB_DIR)/libmapcache.so)); \
	set -x; \
	$(INSTALL) -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR); \
	$(INSTALL) -m 644 $(ROOT)/include/mapcache.h $(DESTDIR)$(INCLUDEDIR)/mapcache.h; \
	$(INSTALL) -m 755 $(LIB_DIR)/libmapcache.so $(DESTDIR)$(LIBDIR)/$$soname; \
	ln -sfn $$soname $(DESTDIR)$(LIBDIR)/libmapcache.so; \
	$(INSTALL) -m 644 $(LIB_DIR)/libmapcache.a $(DESTDIR)$(LIBDIR)/libmapcache.a; \
	{ set +x; } 2>/dev/null; \
	echo "+ (mapcache.pc) > $(DESTDIR)$(PKGCONFIGDIR)/mapcache.pc"; \
	printf '%s\n' "$$MAPCACHE_PC" > $(DESTDIR)$(PKGCONFIGDIR)/mapcache.pc
	@if [ -f "$(CUDA_PLUGIN)" ]; then \
	  set -x; $(INSTALL) -m 755 $(CUDA_PLUGIN) $(DESTDIR)$(LIBDIR)/libmapcache_cuda.so; \
	else \
	  echo "(GPU plugin libmapcache_cuda.so not built, not installed: \`make cuda\` builds it;"; \
	  echo " without it the library rebuilds its tables on the CPU.)"; \
	fi
	@echo "Installed under $(DESTDIR)$(PREFIX). Build a C program with:"
	@echo "  cc prog.c \$$(pkg-config --cflags --libs mapcache)"
	@echo "(PKG_CONFIG_PATH=$(PKGCONFIGDIR) if pkg-config does not search there; at run"
	@echo "time the loader must find $(LIBDIR): run ldconfig for a system prefix, or use"
	@echo "LD_LIBRARY_PATH or -Wl,-rpath,$(LIBDIR).)"

# Removes what `install` installed: the library file is the one the
# libmapcache.so link names (an installed library of another ABI stays), and
# the GPU plugin if there is one.
uninstall:
	@soname=$$(readlink $(DESTDIR)$(LIBDIR)/libmapcache.so || true); \
	set -x; \
	rm -f $(DESTDIR)$(INCLUDEDIR)/mapcache.h $(DESTDIR)$(LIBDIR)/libmapcache.so \
	  $(DESTDIR)$(LIBDIR)/libmapcache.a $(DESTDIR)$(PKGCONFIGDIR)/mapcache.pc \
	  $(DESTDIR)$(LIBDIR)/libmapcache_cuda.so $${soname:+$(DESTDIR)$(LIBDIR)/$$soname}

test-install: lib
	MAKE="$(MAKE)" bash $(ROOT)/tests/packaging/test_install.sh
