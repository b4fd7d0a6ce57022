/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The driver ABI, frozen: every SDK struct's member offsets and sizes as of
 * ABI 1.0, stated in units of a pointer so the same assertions hold on every
 * LP64 and ILP32 target. A change that moves a member fails the build here;
 * growing a struct at its end only needs a new assertion for the new member.
 * The runtime tests check the BERTH_OPS_HAS / BERTH_HAS_MEMBER guards that
 * let an older driver's shorter table work with a newer core.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <berth/sdk.h>

#define P                      sizeof(void *)
#define OFF(type, m, expected) _Static_assert(offsetof(type, m) == (expected), #type "." #m)
#define SIZE(type, expected)   _Static_assert(sizeof(type) == (expected), "sizeof " #type)

/* ABI version fixed for 1.x */
_Static_assert(BERTH_ABI_MAJOR == 1, "ABI major");
_Static_assert(BERTH_KIND_ISOLATION == 1 && BERTH_KIND_STORAGE == 2 && BERTH_KIND_NETWORK == 3 &&
                   BERTH_KIND_IMAGE == 4,
               "kind numbers are ABI");
_Static_assert(BERTH_DECLINED == 1, "BERTH_DECLINED");

/* types.h */
OFF(berth_err_t, code, 0);
OFF(berth_err_t, msg, 4);
SIZE(berth_err_t, 4 + BERTH_ERR_MSG_MAX);
_Static_assert(sizeof(berth_handle_t) == 8, "handles are 64-bit");
OFF(berth_blob_t, struct_size, 0);
OFF(berth_blob_t, data, 8);
OFF(berth_blob_t, len, 8 + P);
OFF(berth_blob_t, release, 8 + 2 * P);
OFF(berth_stream_t, size, 8);
OFF(berth_stream_t, read, 16);
OFF(berth_stream_t, close, 16 + P);
OFF(berth_stream_t, priv, 16 + 2 * P);
OFF(berth_mount_t, type, 8);
OFF(berth_mount_t, source, 8 + P);
OFF(berth_mount_t, target, 8 + 2 * P);
OFF(berth_mount_t, options, 8 + 3 * P);
OFF(berth_mount_t, n_options, 8 + 4 * P);
SIZE(berth_mount_t, 16 + 4 * P);
OFF(berth_mount_list_t, n_mounts, 4);
OFF(berth_mount_list_t, mounts, 8);
OFF(berth_mount_list_t, release, 8 + P);
OFF(berth_mount_list_t, priv, 8 + 2 * P);

/* plugin.h */
OFF(berth_plugin_desc_t, abi_major, 0);
OFF(berth_plugin_desc_t, abi_minor, 4);
OFF(berth_plugin_desc_t, struct_size, 8);
OFF(berth_plugin_desc_t, kind, 12);
OFF(berth_plugin_desc_t, name, 16);
OFF(berth_plugin_desc_t, version, 16 + P);
OFF(berth_plugin_desc_t, license, 16 + 2 * P);
OFF(berth_plugin_desc_t, description, 16 + 3 * P);
OFF(berth_plugin_desc_t, capabilities, 16 + 4 * P);
OFF(berth_plugin_desc_t, init, 24 + 4 * P);
OFF(berth_plugin_desc_t, fini, 24 + 5 * P);
OFF(berth_plugin_desc_t, ops, 24 + 6 * P);
SIZE(berth_plugin_desc_t, 24 + 7 * P);
OFF(berth_host_api_t, struct_size, 0);
OFF(berth_host_api_t, abi_major, 4);
OFF(berth_host_api_t, abi_minor, 8);
OFF(berth_host_api_t, log, 16);
OFF(berth_host_api_t, alloc, 16 + P);
OFF(berth_host_api_t, realloc, 16 + 2 * P);
OFF(berth_host_api_t, free, 16 + 3 * P);
OFF(berth_host_api_t, path, 16 + 4 * P);
OFF(berth_host_api_t, config, 16 + 5 * P);
OFF(berth_host_api_t, emit_event, 16 + 6 * P);
SIZE(berth_host_api_t, 16 + 7 * P);
_Static_assert(BERTH_PATH_ROOT == 1 && BERTH_PATH_RUNROOT == 2 && BERTH_PATH_STATE == 3 &&
                   BERTH_PATH_RUNSTATE == 4 && BERTH_PATH_PLUGIN == 5,
               "path ids are ABI");

/* isolation.h: the table, slot by slot */
OFF(berth_isolation_ops_t, struct_size, 0);
OFF(berth_isolation_ops_t, probe, 8);
OFF(berth_isolation_ops_t, sandbox_create, 8 + P);
OFF(berth_isolation_ops_t, sandbox_open, 8 + 2 * P);
OFF(berth_isolation_ops_t, sandbox_network, 8 + 3 * P);
OFF(berth_isolation_ops_t, sandbox_destroy, 8 + 4 * P);
OFF(berth_isolation_ops_t, sandbox_release, 8 + 5 * P);
OFF(berth_isolation_ops_t, container_create, 8 + 6 * P);
OFF(berth_isolation_ops_t, container_open, 8 + 7 * P);
OFF(berth_isolation_ops_t, container_start, 8 + 8 * P);
OFF(berth_isolation_ops_t, container_pause, 8 + 9 * P);
OFF(berth_isolation_ops_t, container_resume, 8 + 10 * P);
OFF(berth_isolation_ops_t, container_stats, 8 + 11 * P);
OFF(berth_isolation_ops_t, container_delete, 8 + 12 * P);
OFF(berth_isolation_ops_t, container_release, 8 + 13 * P);
OFF(berth_isolation_ops_t, container_init_process, 8 + 14 * P);
OFF(berth_isolation_ops_t, process_exec, 8 + 15 * P);
OFF(berth_isolation_ops_t, process_signal, 8 + 16 * P);
OFF(berth_isolation_ops_t, process_wait, 8 + 17 * P);
OFF(berth_isolation_ops_t, process_wait_handle, 8 + 18 * P);
OFF(berth_isolation_ops_t, process_resize, 8 + 19 * P);
OFF(berth_isolation_ops_t, process_release, 8 + 20 * P);
OFF(berth_isolation_ops_t, info, 8 + 21 * P); /* ABI 1.2 */
_Static_assert(BERTH_ISOLATION_OPS_SIZE_1_2 == 8 + 22 * P, "isolation 1.2 size");
_Static_assert(BERTH_ISOLATION_OPS_SIZE_1_0 == 8 + 21 * P, "isolation 1.0 size");
OFF(berth_sandbox_spec_t, id, 8);
OFF(berth_sandbox_spec_t, state_dir, 8 + P);
OFF(berth_sandbox_spec_t, config_json, 8 + 2 * P);
OFF(berth_net_attach_t, path, 8);
OFF(berth_net_attach_t, netns, 264);
SIZE(berth_net_attach_t, 520);
OFF(berth_stdio_t, in, 8);
OFF(berth_stdio_t, out, 16);
OFF(berth_stdio_t, err, 24);
OFF(berth_stdio_t, tty_master, 32);
OFF(berth_stdio_t, tty_cols, 40);
OFF(berth_stdio_t, tty_rows, 42);
SIZE(berth_stdio_t, 48);
OFF(berth_container_spec_t, id, 8);
OFF(berth_container_spec_t, state_dir, 8 + P);
OFF(berth_container_spec_t, oci_spec_json, 8 + 2 * P);
OFF(berth_container_spec_t, rootfs, 8 + 3 * P);
OFF(berth_container_spec_t, stdio, 8 + 4 * P);
OFF(berth_process_spec_t, id, 8);
OFF(berth_process_spec_t, process_json, 8 + P);
OFF(berth_process_spec_t, stdio, 8 + 2 * P);
OFF(berth_exit_status_t, exit_code, 8);
OFF(berth_exit_status_t, signal, 12);
OFF(berth_exit_status_t, finished_ns, 16);
OFF(berth_exit_status_t, error, 24); /* ABI 1.2 */
SIZE(berth_exit_status_t, 24 + BERTH_ERR_MSG_MAX);

/* storage.h */
OFF(berth_storage_ops_t, probe, 8);
OFF(berth_storage_ops_t, prepare, 8 + P);
OFF(berth_storage_ops_t, mounts, 8 + 2 * P);
OFF(berth_storage_ops_t, commit, 8 + 3 * P);
OFF(berth_storage_ops_t, remove, 8 + 4 * P);
OFF(berth_storage_ops_t, stat, 8 + 5 * P);
OFF(berth_storage_ops_t, walk, 8 + 6 * P);
OFF(berth_storage_ops_t, diff_dir, 8 + 7 * P);
_Static_assert(BERTH_STORAGE_OPS_SIZE_1_0 == 8 + 8 * P, "storage 1.0 size");
OFF(berth_snapshot_info_t, kind, 4);
OFF(berth_snapshot_info_t, parent, 8);
OFF(berth_snapshot_info_t, size_bytes, 264);
OFF(berth_snapshot_info_t, inodes, 272);
OFF(berth_snapshot_info_t, created_ns, 280);
SIZE(berth_snapshot_info_t, 288);
OFF(berth_snapshot_opts_t, size_limit_bytes, 8);
OFF(berth_snapshot_opts_t, labels_json, 16);

/* network.h */
OFF(berth_network_ops_t, probe, 8);
OFF(berth_network_ops_t, network_create, 8 + P);
OFF(berth_network_ops_t, network_delete, 8 + 2 * P);
OFF(berth_network_ops_t, endpoint_attach, 8 + 3 * P);
OFF(berth_network_ops_t, endpoint_detach, 8 + 4 * P);
OFF(berth_network_ops_t, endpoint_check, 8 + 5 * P);
_Static_assert(BERTH_NETWORK_OPS_SIZE_1_0 == 8 + 6 * P, "network 1.0 size");
OFF(berth_network_spec_t, id, 8);
OFF(berth_network_spec_t, name, 8 + P);
OFF(berth_network_spec_t, config_json, 8 + 2 * P);
OFF(berth_endpoint_spec_t, network, 8);
OFF(berth_endpoint_spec_t, container_id, 8 + P);
OFF(berth_endpoint_spec_t, ifname, 8 + 2 * P);
OFF(berth_endpoint_spec_t, attach, 8 + 3 * P);
OFF(berth_endpoint_spec_t, request_json, 8 + 4 * P);

/* image.h */
OFF(berth_image_ops_t, probe, 8);
OFF(berth_image_ops_t, match, 8 + P);
OFF(berth_image_ops_t, open, 8 + 2 * P);
OFF(berth_image_ops_t, close, 8 + 3 * P);
OFF(berth_image_ops_t, resolve, 8 + 4 * P);
OFF(berth_image_ops_t, fetch, 8 + 5 * P);
OFF(berth_image_ops_t, list, 8 + 6 * P);
_Static_assert(BERTH_IMAGE_OPS_SIZE_1_0 == 8 + 7 * P, "image 1.0 size");
OFF(berth_image_ops_t, put_blob, 8 + 7 * P); /* ABI 1.1 */
OFF(berth_image_ops_t, put_ref, 8 + 8 * P);
OFF(berth_image_ops_t, commit, 8 + 9 * P);
_Static_assert(BERTH_IMAGE_OPS_SIZE_1_1 == 8 + 10 * P, "image 1.1 size");
OFF(berth_descriptor_t, media_type, 8);
OFF(berth_descriptor_t, digest, 136);
OFF(berth_descriptor_t, size, 216);
SIZE(berth_descriptor_t, 224);
OFF(berth_image_location_t, location, 8);
OFF(berth_image_location_t, options_json, 8 + P);

static int dummy_probe(void *priv, uint32_t flags, uint64_t *ret_caps, berth_err_t *err)
{
    return 0;
}

/* A table from an "older" driver: its struct_size stops before probe. */
static void test_abi_ops_has_respects_struct_size(void **state)
{
    berth_storage_ops_t ops = { BERTH_OPS_INIT(berth_storage_ops_t), .probe = dummy_probe };

    assert_true(BERTH_OPS_HAS(&ops, berth_storage_ops_t, probe));
    assert_false(BERTH_OPS_HAS(&ops, berth_storage_ops_t, prepare)); /* NULL slot */
    ops.struct_size = offsetof(berth_storage_ops_t, probe);
    assert_false(BERTH_OPS_HAS(&ops, berth_storage_ops_t, probe)); /* outside the table */
    ops.struct_size = offsetof(berth_storage_ops_t, probe) + sizeof(ops.probe);
    assert_true(BERTH_OPS_HAS(&ops, berth_storage_ops_t, probe));
    assert_false(BERTH_OPS_HAS((berth_storage_ops_t *)NULL, berth_storage_ops_t, probe));
}

static void test_abi_err_helpers(void **state)
{
    berth_err_t err = { 0 };
    char longtext[2 * BERTH_ERR_MSG_MAX];

    assert_int_equal(berth_err_set(&err, -5, "mount %s: %s", "/x", "I/O error"), -5);
    assert_int_equal(err.code, -5);
    assert_string_equal(err.msg, "mount /x: I/O error");
    assert_int_equal(berth_err_prefix(&err, -5, "overlay"), -5);
    assert_string_equal(err.msg, "overlay: mount /x: I/O error");
    assert_int_equal(berth_err_set(NULL, -22, "ignored"), -22);
    /* Overlong messages are cut, never overflow. */
    memset(longtext, 'a', sizeof(longtext) - 1);
    longtext[sizeof(longtext) - 1] = '\0';
    berth_err_set(&err, -7, "%s", longtext);
    assert_int_equal(strlen(err.msg), BERTH_ERR_MSG_MAX - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_abi_ops_has_respects_struct_size),
        cmocka_unit_test(test_abi_err_helpers),
    };
    return cmocka_run_group_tests_name("sdk-layout", tests, NULL, NULL);
}
