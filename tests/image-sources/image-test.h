/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared helpers of the image-source tests: load a built driver module with
 * berth's real loader, run commands (skopeo, the fixture script), and fetch
 * content through a driver while checking every byte count and sha256
 * against its descriptor.
 *
 * Environment (set by tests/image-sources/meson.build): BERTH_PLUGIN_PATH,
 * DEMO_IMAGE (the demo layout built by config/demo), IMAGE_FIXTURES (the
 * fixture script) and PYTHON.
 */
#ifndef BERTH_IMAGE_TEST_H
#define BERTH_IMAGE_TEST_H

#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include <berth/sdk.h>

#include "plugins.h"

/* A loaded driver and a scratch directory, removed by itest_teardown(). */
struct itest {
    berth_registry_t *reg;
    const berth_image_ops_t *ops;
    void *priv;
    char scratch[PATH_MAX];
    const char *demo; /* the demo layout */
    char demo_manifest[80], demo_config[80], demo_layer[80], demo_diff_id[80];
};

/* Load image-<name> into t and make the scratch dir. Skips (77) when DEMO_IMAGE is missing. */
void itest_setup(struct itest *t, const char *name);
void itest_teardown(struct itest *t);

/* Run a shell command line (printf format); returns its exit status, -1 when it could not run. */
int itest_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Run and capture stdout as a new string; NULL when the command failed. */
char *itest_sh_output(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Path under the scratch dir. */
const char *itest_path(struct itest *t, const char *name, char *buf, size_t len);
/* Make a fixture with the fixture script: args after the script name, space-separated. */
void itest_fixture(const char *args_fmt, ...) __attribute__((format(printf, 1, 2)));

/* Open a session at @location (flags 0 or BERTH_IMAGE_OPEN_WRITE); asserts success. */
void *itest_open(struct itest *t, const char *location, uint32_t flags);
/* open() expected to fail with @code; returns the message for checks. */
const char *itest_open_fails(struct itest *t, const char *location, int code);

/*
 * Fetch @desc whole, asserting size and sha256 match it; returns the bytes
 * (NUL-terminated, caller frees) when @ret_len is not NULL.
 */
char *itest_fetch_verified(struct itest *t, void *session, const berth_descriptor_t *desc,
                           size_t *ret_len);
/*
 * Resolve @ref, then fetch and verify the manifest, config and every layer
 * (for an index, its first manifest). Writes the config digest and the first
 * layer's digest when the pointers are not NULL.
 */
void itest_verify_image(struct itest *t, void *session, const char *ref,
                        berth_descriptor_t *ret_target, char *ret_config, char *ret_layer);
/* resolve expected to fail with @code and a message mentioning @needle (may be NULL). */
void itest_resolve_fails(struct itest *t, void *session, const char *ref, int code,
                         const char *needle);

/* Count list() entries, and check @name is among them when not NULL. */
size_t itest_list(struct itest *t, void *session, const char *name, const berth_descriptor_t *want);

/* Copy the demo image into a write session (children first) and name it @ref. */
void itest_copy_demo(struct itest *t, void *wsession, const char *ref);

#endif /* BERTH_IMAGE_TEST_H */
